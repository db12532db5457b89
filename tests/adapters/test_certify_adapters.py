"""Certificates for the framework adapters on CPU: every claimed feature passes, and the
only cases limited are the documented framework gaps (docs/adapters.md)."""

from __future__ import annotations

import pytest

#: adapter -> {(operation, dtype): start of the documented limit's reason}.
DOCUMENTED_LIMITS = {
    "torch": {},
    "jax": {},
    # claims float32 and float16 only (its CPU float64/bfloat16 gaps are not claimed); its pooling
    # refuses a pad as large as the kernel, in its own words (the regression corpus meets it)
    "onnxruntime": {("max_pool2d", dtype): "ONNX Runtime pooling: 'Pad should be smaller than kernel'"
                    for dtype in ("float32", "float16")},
    "tensorflow": {
        ("conv2d_backward", dtype): "TensorFlow CPU has no dilated Conv2DBackpropInput"
        for dtype in ("float64", "float16")
    },
}
#: JAX compiles every (geometry, dtype) once: its full certification is about 18 minutes
#: on two cores, and even the quick selection with the regression corpus and the
#: determinism stage took 150 s in all four dtypes. CI runs the quick selection in float64
#: (where its XLA abort shows) and float32; tests/adapters checks it on every feature and
#: dtype against naive as well, and the published matrix certifies it in full.
QUICK = {"jax": ("float64", "float32")}


@pytest.fixture(scope="module", params=list(DOCUMENTED_LIMITS))
def certificate(request):
    """The CPU certificate of one adapter (skipped when its framework is absent)."""
    pytest.importorskip(request.param, reason=f"{request.param} is not installed")
    from conformance.verdicts.certify import certify

    # by name: the framework loads in the certifier's worker process, not in this one
    quick = request.param in QUICK
    return certify(request.param, devices=("cpu",), quick=quick, dtypes=QUICK.get(request.param))


#: adapter -> (library named in the regression corpus's notes, dtypes its bug may show in):
#: the corpus keeps the framework bugs the sweep found, so these fail, and nothing else may.
#: TensorFlow's float32 bug is its oneDNN Conv2D (on by default on AVX-512 CPUs only).
KNOWN_BUGS = {"jax": ("JAX", {"float64", "float32", "float16", "bfloat16"}),
              "tensorflow": ("TensorFlow", {"float32", "bfloat16"})}


def test_adapter_certifies_on_cpu_but_for_its_known_bugs(certificate):
    from conformance.catalogue.corpus import CORPUS

    name = certificate.implementation["name"]
    library, dtypes = KNOWN_BUGS.get(name, ("-", set()))
    known = {c.name for p in CORPUS if p.note.startswith(library) for c in p.cases()}
    unknown = [f for f in certificate.failures if f["case"].removesuffix("-" + f["dtype"]) not in known
               or f["dtype"] not in dtypes]
    failures = "\n".join(f"{f['case']} {f['dtype']} {f['output']}: {f['message']}" for f in unknown[:20])
    assert not unknown, f"{certificate.spec} failed on cpu:\n{failures}"
    assert certificate.state == "complete" and (certificate.passed or certificate.failures)
    if name == "jax":  # XLA's abort on the corpus's float64 gradient is no accident
        assert any(f["dtype"] == "float64" for f in certificate.failures)


def test_only_documented_cases_are_limited(certificate):
    name = certificate.implementation["name"]
    documented = dict(DOCUMENTED_LIMITS[name])
    if name == "tensorflow" and not certificate.environment["implementation"].get("onednn"):
        # without oneDNN (TF_ENABLE_ONEDNN_OPTS=0, or a CPU TensorFlow builds without it)
        # float32 and bfloat16 have no dilated backward either: documented the same way
        documented |= {("conv2d_backward", d): DOCUMENTED_LIMITS[name][("conv2d_backward", "float64")]
                       for d in ("float32", "bfloat16")}
    limited = [r for r in certificate.results if r.status == "limited"]
    for r in limited:
        reason = documented.get((r.op, r.dtype))
        assert reason and r.reason.startswith(reason), f"{r.case} [{r.dtype}] limited: {r.reason}"
    # every documented gap is met by the catalogue, or the list has gone stale
    assert {(r.op, r.dtype) for r in limited} == set(documented)
