"""The CPU condition of a verdict: the framework's CPU path, read from its adapter's environment."""

from conformance.verdicts.certify import certify
from conformance.verdicts.condition import cpu_path
from conformance.verdicts.matrix import _entry


def test_the_cpu_path_says_tensorflows_onednn_state_and_the_cpu_that_decided_it():
    on = {"tensorflow": "2.21.0", "onednn": True, "cpu_isa": "AVX-512 VNNI BF16"}
    assert cpu_path(on) == "TensorFlow 2.21.0: oneDNN on (AVX-512 VNNI BF16 CPU)"
    assert "oneDNN off" in cpu_path({**on, "onednn": False, "cpu_isa": "AVX2"})
    assert cpu_path({"jax": "0.10.2", "XLA_FLAGS": ""}) == "JAX 0.10.2: XLA CPU"
    assert cpu_path({"torch": "2.13.0", "mkldnn": True}) == "torch 2.13.0: oneDNN (mkldnn) available"
    assert cpu_path({"numpy": "2.3"}) == ""  # an implementation that reports no CPU path


def test_the_matrix_row_carries_the_cpu_path():
    cert = certify("im2col", dtypes=["float64"], quick=True, isolate=False)
    cert.environment["implementation"] = {"tensorflow": "2.21.0", "onednn": True, "cpu_isa": "AVX2"}
    assert _entry("im2col", cert)["cpu_path"] == "TensorFlow 2.21.0: oneDNN on (AVX2 CPU)"


def test_the_certificate_summary_and_markdown_say_the_cpu_path_and_nothing_where_there_is_none():
    from conformance.cli import summary
    from conformance.rendering.markdown import certificate_markdown

    cert = certify("im2col", dtypes=["float64"], quick=True, isolate=False)
    assert "cpu path" not in summary(cert)
    assert "CPU path" not in certificate_markdown(cert.to_dict())
    cert.environment["implementation"] = {"tensorflow": "2.21.0", "onednn": True, "cpu_isa": "AVX-512"}
    assert "  cpu path: TensorFlow 2.21.0: oneDNN on (AVX-512 CPU)" in summary(cert).splitlines()
    assert "- CPU path: TensorFlow 2.21.0: oneDNN on (AVX-512 CPU)" in certificate_markdown(cert.to_dict())
