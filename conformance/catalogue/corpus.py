"""The regression corpus: failures the random sweep found in built-in implementations.

Each problem here broke a real library once (the note names the library, its version and
what broke); it is a catalogue problem from then on, run by every certification (full and
``--quick``), so a verdict on that library no longer depends on whether that run's sweep
happens to draw the problem again. Forward and backward cases run in every dtype, like the
rest of the catalogue; their references are computed at run time (exactly, then rounded:
:mod:`conformance.judging.exact`), never stored, so the golden data do not list them.

Add a problem when the sweep finds a new failure in a built-in: its failing case name reads
back with :func:`~conformance.catalogue.cases.problem_from_name`.
"""

from __future__ import annotations

import dataclasses

from .cases import CATALOGUE, Problem, check_unique, problem_from_name
from .scale import SCALE


def _named(name: str, note: str) -> Problem:
    return dataclasses.replace(problem_from_name(name).problem, note=note)


_TF_NAN = ("TensorFlow 2.21 CPU bfloat16 Conv2DBackpropFilter returns NaN at random when the stride "
           "exceeds the input (290 of 500 calls on one run); variants give each run several chances")

#: The corpus (see the module docstring).
CORPUS: tuple[Problem, ...] = (
    _named("conv2d-n1c1h8w8-k1r4s2-st2-pad1_1x1_2-dil3x1-bias",
           "JAX 0.10.2 (XLA CPU) aborts in its algebraic simplifier on the float64 gradient: a dilated "
           "window exactly filling the padded input, stride 2"),
    _named("conv2d-n1c1h6w4-k1r3s2-st1x2-pad0x1-dil2x1-nobias",
           "JAX 0.10.2 (XLA CPU) aborts in its algebraic simplifier on the float64 gradient: "
           "'Window dimensions do not match RHS shape'"),
    _named("conv2d-n2c1h1w1-k1r1s1-st2-pad_valid-nobias", _TF_NAN),
    _named("conv2d-n2c1h1w1-k1r1s1-st2-pad_valid-nobias-exact", _TF_NAN),
    _named("conv2d-n1c1h1w1-k1r1s1-st3-pad_valid-bias", _TF_NAN),
    _named("conv2d-n2c1h2w2-k1r1s1-st3-pad_valid-bias-exact", _TF_NAN),
    _named("max_pool2d-n1c1h1w1-k1x2-st1-pad0_0x0_2-dil1x2",
           "onnxruntime 1.32.0 CPU pooling refuses a padding side as large as the (undilated) kernel ('Pad "
           "should be smaller than kernel'); found by the sweep in max and average pooling, now a declared "
           "limit"),
    _named("conv2d-n1c1h6w1-k2r2s1-st2-pad0_0x1_2-dil1x3-bias",
           "TensorFlow 2.21 CPU bfloat16 Conv2D segfaults on a dilated axis whose kernel has one tap, "
           "with stride 2 and explicit padding [1, 2] on it (x (1, 6, 1, 1) NHWC, dilations [1, 1, 3, 1])"),
    _named("conv2d-n2c1h2w2-k1r1s2-st1x5-pad_valid-nobias",
           "TensorFlow 2.21 CPU Conv2D through oneDNN (on by default on AVX-512 CPUs) is wrong when the W "
           "stride exceeds the input: the second output row of each sample is 0 or garbage; right with "
           "TF_ENABLE_ONEDNN_OPTS=0 (docs/adapters.md has the repro)"),
)

check_unique(CATALOGUE + SCALE + CORPUS)
