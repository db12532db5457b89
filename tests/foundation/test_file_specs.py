"""Specs that name a plug-in file: ``path/to/file.py:Class`` loads here and in a worker."""

import os
import textwrap

import pytest

from implementations import load, registry

PLUGIN = textwrap.dedent(
    """
    import numpy as np
    from helper_next_to_it import NAME
    from implementations import Implementation

    class Doubler(Implementation):
        name = NAME
        dtypes = ("float64",)
        features = frozenset({"conv2d"})

        def conv2d(self, x, w, b, params):
            return np.full(params.y_shape, 2.0)
    """
)


@pytest.fixture
def plugin_file(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "file_plugin.py").write_text(PLUGIN)
    (folder / "helper_next_to_it.py").write_text("NAME = 'doubler_from_file'\n")
    return folder / "file_plugin.py"


def test_a_file_spec_loads_the_class_with_its_folder_first_on_the_path(plugin_file):
    impl = load(f"{plugin_file}:Doubler")
    assert impl.name == "doubler_from_file"
    assert registry.class_spec(type(impl)) == f"{plugin_file}:Doubler"


def test_a_relative_file_spec_resolves_against_the_current_folder(plugin_file, monkeypatch):
    monkeypatch.chdir(plugin_file.parent.parent)
    spec = "plugins/file_plugin.py:Doubler"
    assert registry.absolute_spec(spec) == f"{os.path.abspath('plugins/file_plugin.py')}:Doubler"
    assert registry.absolute_spec("pkg.mod:Class") == "pkg.mod:Class"
    assert load(spec).name == "doubler_from_file"


def test_a_missing_file_is_a_value_error_naming_the_path(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load(f"{tmp_path / 'absent.py'}:Nothing")


def test_a_file_spec_certifies_in_the_worker_from_another_folder(plugin_file, monkeypatch):
    from conformance.catalogue.selection import quick_cases
    from conformance.verdicts.certify import certify

    monkeypatch.chdir(plugin_file.parent)
    conv = [c for c in quick_cases() if c.op == "conv2d"][:1]
    cert = certify("./file_plugin.py:Doubler", cases=conv)
    assert cert.spec == "./file_plugin.py:Doubler"
    assert cert.implementation["name"] == "doubler_from_file"
    assert [r.status for r in cert.results] == ["fail"]
