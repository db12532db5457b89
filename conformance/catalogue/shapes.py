"""benchdnn shapes files as conformance problems (``--shapes FILE``).

Every descriptor the file holds becomes a :class:`~conformance.cases.Problem`: a
convolution with bias (benchdnn's default direction, ``FWD_B``), or a max and an average
pooling (benchdnn's ``max`` and ``avg_np``). The references of such problems are computed
on the fly by the float64 ``naive`` loops, whose time grows with the batch: the batch is
scaled down until the loops stay within :data:`REFERENCE_BUDGET` iterations (at least one
image), and the import says so. A descriptor convcert cannot express is refused with its
reason, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from implementations import benchdnn
from implementations.geometry import ConvParams

from .cases import Problem

#: Python-level iterations the naive reference may spend on one problem (forward and
#: backward together): about a second.
REFERENCE_BUDGET = 200_000


@dataclass
class ShapesImport:
    """What a shapes file gave: problems, batch changes and refusals, with counts."""

    source: str
    read: int = 0
    problems: list[Problem] = field(default_factory=list)
    scaled: list[str] = field(default_factory=list)  # "label: mb 50 -> 1"
    clamped: list[str] = field(default_factory=list)  # labels whose negative end padding became 0
    refused: list[str] = field(default_factory=list)  # "label: reason"

    def summary(self) -> str:
        """One paragraph for a certificate's case selection."""
        parts = [f"benchdnn shapes {self.source}: {self.read} descriptors read, "
                 f"{len(self.problems)} problems"]
        if self.clamped:
            parts.append(f"negative end padding clamped to 0, no window reading the dropped rows "
                         f"({len(self.clamped)}): " + ", ".join(self.clamped))
        if self.scaled:
            parts.append(f"batch scaled down for the naive reference ({len(self.scaled)}): "
                         + "; ".join(self.scaled))
        if self.refused:
            parts.append(f"refused ({len(self.refused)}): " + "; ".join(self.refused))
        return ". ".join(parts)


def reference_iterations(params) -> int:
    """Python-level iterations of the naive reference per image (forward + backward)."""
    _, c, h, w = params.x_shape
    _, k, oh, ow = params.y_shape
    # conv: the forward loops over (k, i, j), dx is a full correlation looping over (c, h, w)
    if isinstance(params, ConvParams):
        return k * oh * ow + c * (h + 2 * params.eff_kernel[0]) * (w + 2 * params.eff_kernel[1])
    return c * oh * ow  # max-pool backward loops over (i, j, c)


def problems(descriptors: list[benchdnn.Descriptor], source: str,
             budget: int = REFERENCE_BUDGET) -> ShapesImport:
    """Problems for ``descriptors``; batch scaled to the reference ``budget``."""
    out = ShapesImport(source, read=len(descriptors))
    for d in descriptors:
        try:
            per_image = reference_iterations(d.params(batch=1))
        except ValueError as exc:
            out.refused.append(f"{d.label}: {exc}")
            continue
        if min(after for _, after in d.padding) < 0:
            out.clamped.append(d.label)
        batch = max(1, min(d.mb, budget // per_image))
        if batch != d.mb:
            out.scaled.append(f"{d.label}: mb {d.mb} -> {batch}")
        p = d.params(batch=batch)
        note = f"benchdnn {d.label}"
        if isinstance(p, ConvParams):
            new = [Problem("conv2d", p.x_shape, w_shape=p.w_shape, stride=p.stride, padding=p.padding,
                           dilation=p.dilation, groups=p.groups, note=note)]
        else:
            new = [Problem(family, p.x_shape, kernel=p.kernel, stride=p.stride, padding=p.padding,
                           dilation=p.dilation, note=note) for family in ("max_pool2d", "avg_pool2d")]
        out.problems += [q for q in new if q not in out.problems]  # a repeated descriptor runs once
    return out


def read(path: str | Path, budget: int = REFERENCE_BUDGET) -> ShapesImport:
    """Problems from the shapes file at ``path`` (``ValueError`` for a malformed or empty file)."""
    descriptors = benchdnn.read(path)
    if not descriptors:
        raise ValueError(f"shapes={str(path)!r}: no problem descriptor in the file (empty, or comments only)")
    return problems(descriptors, str(path), budget)
