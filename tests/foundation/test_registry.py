"""Finding implementations: built-ins, module:Class specs, entry points, availability."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import implementations
from implementations import Implementation, available, get, load, registry

REPO = Path(__file__).resolve().parents[2]

PLUGIN = textwrap.dedent(
    """
    import numpy as np
    from implementations import Implementation

    class Doubler(Implementation):
        name = "doubler"
        dtypes = ("float64",)
        features = frozenset({"conv2d"})

        def conv2d(self, x, w, b, params):
            return np.full(params.y_shape, 2.0)
    """
)


def run_python(code: str, *paths: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(REPO)])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                          text=True, timeout=120)


def test_builtins_naive_and_im2col_are_always_available():
    assert {"naive", "im2col"} <= set(available())
    assert get("naive").name == "naive" and get("im2col") is get("im2col")


def test_plugin_in_a_file_outside_the_repo_loads_by_module_and_class(tmp_path, monkeypatch):
    (tmp_path / "outside_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    impl = load("outside_plugin:Doubler")
    assert isinstance(impl, Implementation) and impl.name == "doubler"
    from implementations import ConvParams

    p = ConvParams.create((1, 1, 3, 3), (1, 1, 2, 2))
    assert impl.conv2d(None, None, None, p).shape == (1, 1, 2, 2)


def test_plugin_registered_as_an_entry_point_is_found_by_name(tmp_path):
    (tmp_path / "ep_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "ep_plugin-0.1.dist-info"  # what pip writes when it installs a package
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[convcert.implementations]\ndoubler = ep_plugin:Doubler\n")
    result = run_python(
        """
        import implementations
        assert "doubler" in implementations.available(), implementations.available()
        print(implementations.get("doubler").name)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "doubler"


def test_importing_and_listing_never_imports_a_framework():
    result = run_python(
        """
        import sys, implementations
        implementations.available()
        heavy = [m for m in ("torch", "tensorflow", "jax", "triton") if m in sys.modules]
        assert not heavy, heavy
        """
    )
    assert result.returncode == 0, result.stderr


def test_missing_dependency_is_reported_with_its_name(monkeypatch):
    ghost = registry.BuiltIn("ghost_mod:Ghost", ("no_such_module_xyz",))
    monkeypatch.setitem(registry.BUILTINS, "ghost", ghost)
    assert registry.unavailable_reason("ghost") == "no_such_module_xyz is not installed"
    assert "ghost" not in available()
    with pytest.raises(ImportError, match="no_such_module_xyz is not installed"):
        registry.get.__wrapped__("ghost")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nope", r"name='nope': not registered"),
        ("json:", r"spec='json:': must be a registered name or 'package.module:ClassName'"),
        ("json:NoSuchClass", r"module 'json' has no attribute 'NoSuchClass'"),
        ("json:JSONDecoder", r"is not an implementations.Implementation"),
    ],
)
def test_bad_specs_raise_value_error(spec, message):
    with pytest.raises(ValueError, match=message):
        load(spec)


def test_listing_command_shows_claims_and_unavailable_reasons():
    result = subprocess.run(
        [sys.executable, "-m", "implementations", "--json"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["im2col"]["available"] and "conv2d_backward" in rows["im2col"]["features"]
    assert rows["naive"]["dtypes"] == ["float64", "float32", "float16", "bfloat16"]
    for row in rows.values():
        assert row["available"] or row["reason"]


def test_default_numpy_device_conversion_rejects_other_devices():
    with pytest.raises(ValueError, match=r"device='cuda': implementation 'im2col' runs on \('cpu',\)"):
        get("im2col").to_device(np.zeros(3), "cuda")


def test_contract_names_are_importable_from_the_package():
    for name in ("Implementation", "ConvParams", "PoolParams", "Unsupported", "get", "load", "available",
                 "FEATURES"):
        assert hasattr(implementations, name), name
    assert implementations.ENTRY_POINT_GROUP == "convcert.implementations"
