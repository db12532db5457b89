"""The case catalogue, as data.

A :class:`Problem` is one geometry with deterministic inputs (convolution, max pooling or
average pooling); each problem yields a forward :class:`Case` and a backward one. Names
read as problem descriptors, e.g. ``conv2d-n2c4h9w7-k6r3s2-st2-pad_same-dil2-g2-bias``;
the dtype is chosen at run time and appended in reports.

Every problem comes in two input *modes*: ``float`` (random values with full 53-bit
mantissas, see :data:`FLOAT_LIMIT`) and ``exact`` (small integers, see
``tolerance.exact_applies``).

A case *requires* its operation plus every option its geometry uses (stride, dilation,
groups, asymmetric padding, ceil_mode, count_include_pad, pool_dilation); it runs only when the
implementation claims all of them. It is *filed under* those options, or under the
operation when it uses none, so a bug in one option shows as that option's failure.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from implementations.geometry import ConvParams, PoolParams

FAMILIES = ("conv2d", "max_pool2d", "avg_pool2d")
MODES = ("float", "exact")
#: Backward operation of each forward operation.
BACKWARD = {op: f"{op}_backward" for op in FAMILIES}
#: Float-mode values are standard normal draws in float64 with |v| < FLOAT_LIMIT, on no grid:
#: their mantissas use all 53 bits, so float32 cannot hold them (an implementation that stores
#: float64 inputs as float32 misses by about 1e-7 where the bound is about 1e-14), and rounded
#: to float32 they use all 24 bits, which float16, bfloat16 and TF32 must round. Float64
#: arithmetic on them is inexact, so the reference is computed exactly and rounded once
#: (``conformance.judging.exact``): the golden outputs are the same on every platform.
FLOAT_LIMIT = 4.0
#: Float64 copies of each array the certifier may hold for one problem (see ``memory_estimate``).
MEMORY_COPIES = 12
#: Exact-mode values are integers in [-EXACT_RANGE, EXACT_RANGE] (bias twice that).
EXACT_RANGE = 2


def _pad_label(padding: Any) -> str:
    if isinstance(padding, str):
        return f"pad_{padding}"
    if isinstance(padding, int):
        return f"pad{padding}"
    if all(isinstance(p, int) for p in padding):
        return f"pad{padding[0]}x{padding[1]}"
    (t, b), (l, r) = padding
    return f"pad{t}_{b}x{l}_{r}"


def _axes(label: str, value: tuple[int, int], default: tuple[int, int] | None) -> list[str]:
    if value == default:
        return []
    return [f"{label}{value[0]}" if value[0] == value[1] else f"{label}{value[0]}x{value[1]}"]


@dataclass(frozen=True)
class Problem:
    """One geometry and its deterministic inputs.

    ``family`` is ``conv2d``, ``max_pool2d`` or ``avg_pool2d``; convolutions give
    ``w_shape``, poolings ``kernel``. ``note`` says what the problem is there to catch.
    """

    family: str
    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int] | None = None
    kernel: Any = None
    stride: Any = None
    padding: Any = "valid"
    dilation: Any = 1
    groups: int = 1
    bias: bool = True
    ceil_mode: bool = False
    count_include_pad: bool = False
    mode: str = "float"
    note: str = field(default="", compare=False)

    # -- geometry --------------------------------------------------------------------
    @cached_property
    def params(self) -> ConvParams | PoolParams:
        """The resolved geometry (raises ValueError for an invalid problem)."""
        if self.family == "conv2d":
            if self.w_shape is None:
                raise ValueError("w_shape=None: a conv2d problem needs the weight shape")
            return ConvParams.create(
                self.x_shape, self.w_shape, stride=1 if self.stride is None else self.stride,
                padding=self.padding, dilation=self.dilation, groups=self.groups,
            )
        return PoolParams.create(
            self.x_shape, self.kernel, stride=self.stride, padding=self.padding,
            dilation=self.dilation, ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
        )

    @cached_property
    def descriptor(self) -> str:
        """Readable, unique name of the problem (without the operation and dtype)."""
        p = self.params  # validates first: a bad problem raises the geometry's ValueError
        n, c, h, w = p.x_shape
        parts = [f"n{n}c{c}h{h}w{w}"]
        if isinstance(p, ConvParams):
            k, _, r, s = p.w_shape
            parts.append(f"k{k}r{r}s{s}")
            parts += _axes("st", p.stride, (1, 1))
            parts.append(_pad_label(self.padding))
            parts += _axes("dil", p.dilation, (1, 1))
            if self.groups > 1:
                parts.append(f"g{self.groups}")
            parts.append("bias" if self.bias else "nobias")
        else:
            parts += _axes("k", p.kernel, None)
            parts += _axes("st", p.stride, p.kernel)
            parts.append(_pad_label(self.padding))
            parts += _axes("dil", p.dilation, (1, 1))
            if self.ceil_mode:
                parts.append("ceil")
            if self.count_include_pad:
                parts.append("incl")
        if self.mode == "exact":
            parts.append("exact")
        return "-".join(parts)

    @cached_property
    def options(self) -> frozenset[str]:
        """Contract options (FEATURES beyond the operations) that this geometry uses."""
        p = self.params
        used = set()
        if not p.is_symmetric:
            used.add("asymmetric_padding")
        if isinstance(p, ConvParams):
            if p.stride != (1, 1):
                used.add("stride")
            if p.dilation != (1, 1):
                used.add("dilation")
            if p.groups > 1:
                used.add("groups")
        else:
            if p.stride != p.kernel:
                used.add("stride")
            if p.ceil_mode:
                used.add("ceil_mode")
            if p.dilation != (1, 1):
                used.add("pool_dilation")
            if self.family == "avg_pool2d" and p.count_include_pad and any(map(any, p.padding)):
                used.add("count_include_pad")
        return frozenset(used)

    def memory_estimate(self) -> int:
        """Bytes the certifier may hold at once for this problem, estimated before anything is
        allocated: every input and output in float64, about a dozen times over (the inputs as
        drawn, rounded and given; the reference, its magnitudes and bounds; what came back)."""
        p = self.params
        arrays = math.prod(p.x_shape) + 2 * math.prod(p.y_shape)  # x and dx; y and dy
        if isinstance(p, ConvParams):
            arrays += 2 * (math.prod(p.w_shape) + p.w_shape[0])  # w and dw; b and db
        return 8 * MEMORY_COPIES * arrays

    @cached_property
    def seed(self) -> int:
        """Seed derived from the descriptor: independent of catalogue order."""
        digest = hashlib.sha256(f"{self.family}-{self.descriptor}".encode()).digest()
        return int.from_bytes(digest[:4], "little")

    # -- inputs ----------------------------------------------------------------------
    def _values(self, rng: np.random.Generator, shape: tuple[int, ...], scale: int = 1) -> np.ndarray:
        if self.mode == "exact":
            r = EXACT_RANGE * scale
            return rng.integers(-r, r + 1, size=shape).astype(np.float64)
        limit = np.nextafter(FLOAT_LIMIT, 0.0)
        return np.clip(rng.standard_normal(shape), -limit, limit)

    def inputs(self) -> dict[str, np.ndarray | None]:
        """Float64 inputs ``x``, ``dy`` (upstream gradient) and, for conv, ``w`` and ``b``."""
        rng = np.random.default_rng(self.seed)
        out: dict[str, np.ndarray | None] = {"x": self._values(rng, self.x_shape)}
        if self.family == "conv2d":
            out["w"] = self._values(rng, self.w_shape)  # type: ignore[arg-type]
            out["b"] = self._values(rng, (self.w_shape[0],), scale=2) if self.bias else None  # type: ignore[index]
        out["dy"] = self._values(rng, self.params.y_shape)
        return out

    def cases(self) -> tuple[Case, Case]:
        return Case(self, self.family), Case(self, BACKWARD[self.family])


@dataclass(frozen=True)
class Case:
    """One operation on one problem: what an implementation is asked to compute."""

    problem: Problem
    op: str

    @property
    def name(self) -> str:
        return f"{self.op}-{self.problem.descriptor}"

    @property
    def requires(self) -> frozenset[str]:
        """Every feature the implementation must claim for this case to run."""
        return self.problem.options | {self.op}

    @property
    def filed_under(self) -> frozenset[str]:
        """Features whose status this case decides: its options, else its operation."""
        return self.problem.options or frozenset({self.op})

    @property
    def outputs(self) -> tuple[str, ...]:
        if self.op == "conv2d_backward":
            return ("dx", "dw", "db")
        return ("dx",) if self.op.endswith("_backward") else ("y",)


# -- names read back into problems --------------------------------------------------------
_OPS = sorted([*FAMILIES, *BACKWARD.values()], key=len, reverse=True)


def _pair(text: str) -> tuple[int, int]:
    a, _, b = text.partition("x")
    return int(a), int(b or a)


def _padding(label: str) -> Any:
    if label.startswith("pad_"):
        return label[4:]
    body = label[3:]
    if "_" in body:
        (t, b), (l, r) = (tuple(int(v) for v in side.split("_")) for side in body.split("x"))
        return ((t, b), (l, r))
    return int(body) if "x" not in body else _pair(body)


def problem_from_name(name: str) -> Case:
    """The case a descriptor names, e.g. ``conv2d-n1c2h1w1-k2r1s1-pad_valid-g2-nobias``
    (a trailing ``-<dtype>`` is ignored). Raises ValueError when ``name`` is not one."""
    op = next((o for o in _OPS if name.startswith(o + "-")), None)
    if op is None:
        raise ValueError(f"case={name!r}: does not start with an operation ({', '.join(_OPS)})")
    family = op.removesuffix("_backward")
    tokens = name[len(op) + 1:].split("-")
    if tokens and tokens[-1] in ("float64", "float32", "float16", "bfloat16"):
        tokens = tokens[:-1]
    try:
        problem = _parse(family, tokens)
    except (ValueError, IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"case={name!r}: not a problem descriptor ({exc})") from exc
    case = Case(problem, op)
    if case.name != "-".join([op, *tokens]):
        raise ValueError(f"case={name!r}: reads back as {case.name!r}")
    return case


def _parse(family: str, tokens: list[str]) -> Problem:
    shape = re.fullmatch(r"n(\d+)c(\d+)h(\d+)w(\d+)", tokens[0])
    if shape is None:
        raise ValueError(f"{tokens[0]!r} is not nNcChHwW")
    kw: dict[str, Any] = {"x_shape": tuple(int(v) for v in shape.groups())}
    rest = tokens[1:]
    if family == "conv2d":
        k = re.fullmatch(r"k(\d+)r(\d+)s(\d+)", rest[0])
        if k is None:
            raise ValueError(f"{rest[0]!r} is not kKrRsS")
        kw["w_shape"] = (int(k[1]), kw["x_shape"][1] // 1, int(k[2]), int(k[3]))
        rest = rest[1:]
        kw["bias"] = "nobias" not in rest
    for token in rest:
        if token.startswith("st"):
            kw["stride"] = _pair(token[2:])
        elif token.startswith("pad"):
            kw["padding"] = _padding(token)
        elif token.startswith("dil"):
            kw["dilation"] = _pair(token[3:])
        elif re.fullmatch(r"g\d+", token):
            kw["groups"] = int(token[1:])
        elif re.fullmatch(r"k\d+(x\d+)?", token):
            kw["kernel"] = _pair(token[1:])
        elif token in ("ceil", "incl", "exact"):
            kw[{"ceil": "ceil_mode", "incl": "count_include_pad", "exact": "mode"}[token]] = (
                "exact" if token == "exact" else True)
        elif token not in ("bias", "nobias"):
            raise ValueError(f"unknown part {token!r}")
    if family == "conv2d":
        k, _, r, s = kw["w_shape"]
        kw["w_shape"] = (k, kw["x_shape"][1] // kw.get("groups", 1), r, s)
    return Problem(family, **kw)


def _conv(x, w, note, **kw) -> list[Problem]:
    return [Problem("conv2d", x, w_shape=w, note=note, mode=m, **kw) for m in MODES]


def _pool(families: Iterable[str], x, kernel, note, **kw) -> list[Problem]:
    return [Problem(f, x, kernel=kernel, note=note, mode=m, **kw) for f in families for m in MODES]


_BOTH = ("max_pool2d", "avg_pool2d")

#: The catalogue. Sizes stay tiny so that a full certification is quick; each problem
#: is there for the reason in its note.
CATALOGUE: tuple[Problem, ...] = tuple(
    _conv((2, 3, 7, 6), (4, 3, 3, 3), "batch > 1, odd and even sizes, bias")
    + _conv((1, 2, 5, 5), (3, 2, 3, 3), "batch 1, explicit symmetric padding, no bias", padding=1, bias=False)
    + _conv((1, 2, 6, 8), (2, 2, 2, 3), "non-square kernel on a non-square input (a transposed kernel shows)")
    + _conv((2, 4, 5, 3), (3, 4, 1, 1), "1x1 kernel")
    + _conv((1, 2, 4, 5), (2, 2, 4, 5), "kernel as large as the input: 1x1 output")
    + _conv((1, 2, 3, 3), (2, 2, 5, 5), "kernel as large as the padded input", padding=1, bias=False)
    + _conv((2, 3, 1, 9), (2, 3, 1, 3), "H = 1 (the 1-D case)", padding=(0, 1))
    + _conv((1, 2, 6, 5), (2, 2, 3, 3), "'same' with an odd kernel: symmetric", padding="same")
    + _conv((1, 2, 6, 5), (2, 2, 2, 4), "'same' with even kernels: odd pixel bottom/right", padding="same")
    + _conv((1, 2, 6, 5), (2, 2, 2, 4), "'same_lower': odd pixel top/left", padding="same_lower")
    + _conv((1, 2, 4, 5), (2, 2, 3, 2), "'full' padding (signal-processing full mode)", padding="full")
    + _conv((1, 2, 5, 6), (2, 2, 3, 3), "explicit asymmetric padding", padding=((1, 2), (0, 1)))
    + _conv((2, 2, 7, 8), (3, 2, 3, 3), "stride 2 with padding", stride=2, padding=1)
    + _conv((1, 2, 8, 7), (2, 2, 2, 3), "rectangular stride 3x2", stride=(3, 2))
    + _conv((1, 2, 7, 7), (2, 2, 2, 2), "stride larger than the kernel", stride=3)
    + _conv((1, 3, 5, 6), (2, 3, 1, 1), "1x1 kernel with stride 2", stride=2, bias=False)
    + _conv((1, 2, 7, 7), (2, 2, 3, 3), "dilation 2", padding=2, dilation=2)
    + _conv((1, 2, 9, 6), (2, 2, 2, 3), "rectangular dilation 3x1", dilation=(3, 1))
    + _conv((2, 4, 5, 5), (4, 2, 3, 3), "groups 2", padding=1, groups=2)
    + _conv((1, 3, 5, 6), (3, 1, 3, 3), "depthwise", padding=1, groups=3)
    + _conv((1, 2, 5, 5), (4, 1, 3, 2), "depthwise with channel multiplier 2", groups=2, bias=False)
    + _conv((2, 4, 9, 7), (6, 2, 3, 2), "stride, 'same', dilation and groups together",
            stride=2, padding="same", dilation=2, groups=2)
    + _conv((1, 2, 7, 8), (2, 2, 3, 3), "'same' with stride 2: asymmetric on one axis",
            stride=2, padding="same")
    + _conv((1, 2, 6, 5), (2, 2, 2, 2), "'full' with stride and dilation",
            stride=2, padding="full", dilation=2)
    + _pool(_BOTH, (2, 2, 6, 6), 2, "non-overlapping windows (stride = kernel)")
    + _pool(_BOTH, (1, 2, 6, 7), (2, 3), "non-square window on a non-square input")
    + _pool(_BOTH, (1, 2, 5, 5), 2, "padding with stride = kernel: border windows hold fewer pixels",
            padding=1)
    + _pool(_BOTH, (1, 2, 7, 8), 3, "overlapping windows with padding", stride=2, padding=1)
    + _pool(_BOTH, (1, 2, 5, 5), 3, "stride 1, padding 1 (every pixel in 9 windows)", stride=1, padding=1)
    + _pool(_BOTH, (1, 1, 8, 8), 2, "stride larger than the window", stride=3)
    + _pool(_BOTH, (1, 2, 7, 7), 2, "ceil_mode: a partial last window", ceil_mode=True)
    + _pool(_BOTH, (1, 1, 5, 5), 2, "ceil_mode: the last window would start in the padding and is dropped",
            stride=2, padding=1, ceil_mode=True)
    + _pool(_BOTH, (1, 1, 6, 6), 3, "ceil_mode adds a window", stride=2, ceil_mode=True)
    + _pool(_BOTH, (1, 2, 5, 5), 2, "explicit asymmetric padding", stride=1, padding=((0, 1), (1, 0)))
    + _pool(_BOTH, (1, 2, 6, 7), 3, "'same' with stride 2", stride=2, padding="same")
    + _pool(_BOTH, (2, 2, 1, 8), (1, 3), "H = 1", stride=(1, 2), padding=(0, 1))
    + _pool(_BOTH, (1, 2, 3, 4), (3, 4), "window as large as the input (global pooling)")
    + _pool(("avg_pool2d",), (1, 2, 7, 8), 3, "count_include_pad with padding", stride=2, padding=1,
            count_include_pad=True)
    + _pool(("avg_pool2d",), (1, 1, 6, 6), 3, "count_include_pad with ceil_mode: the overhang never counts",
            stride=2, padding=1, ceil_mode=True, count_include_pad=True)
    + _pool(("avg_pool2d",), (1, 2, 5, 5), 2, "count_include_pad with asymmetric padding", stride=1,
            padding=((0, 1), (1, 0)), count_include_pad=True)
    + _pool(_BOTH, (1, 2, 7, 7), 2, "dilated window 2 (3x3 span, gaps between taps)", stride=1, dilation=2)
    + _pool(_BOTH, (1, 2, 9, 8), (3, 2), "rectangular dilation 2x3 with stride 2 and padding",
            stride=2, padding=1, dilation=(2, 3))
    + _pool(_BOTH, (1, 1, 8, 8), 2, "dilation with ceil_mode: the dilated last window overhangs",
            stride=2, padding=1, dilation=2, ceil_mode=True)
    + _pool(("avg_pool2d",), (1, 2, 7, 7), 3, "dilation with count_include_pad: padded taps count",
            stride=2, padding=2, dilation=2, count_include_pad=True)
)


def check_unique(problems: Iterable[Problem]) -> None:
    """Raise RuntimeError when two cases of ``problems`` share a name (a catalogue edit error)."""
    names = [c.name for p in problems for c in p.cases()]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:  # pragma: no cover - a catalogue edit error
        raise RuntimeError(f"duplicate case names in the catalogue: {sorted(dupes)}")


check_unique(CATALOGUE)
