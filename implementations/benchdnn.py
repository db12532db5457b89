"""oneDNN benchdnn problem descriptors (its ``--conv`` and ``--pool`` drivers) as geometry.

A descriptor is a run of ``<field><int>`` entries (``_`` is ignored) with an optional
label ``n"name"`` at the end, e.g. ``mb1ic3ih224oc64oh112kh7sh2ph3n"resnet_50:conv1"``.
Fields: ``g mb ic ih iw oc oh ow kh kw sh sw ph pw dh dw``, and the 3-D ``id od kd sd pd
dd``: a depth of 1 read by a window of 1 is a 2-D problem, any other 3-D one is refused.
The rules are benchdnn's own ``str2desc`` (``tests/benchdnn/conv/conv_aux.cpp`` and
``pool/pool_aux.cpp``):

- ``mb`` defaults to 2, ``g`` to 1, strides to 1;
- ``dh``/``dw`` count the gaps between taps: benchdnn's dilation ``d`` is convcert's
  ``d + 1`` (``dh0`` means no dilation), the window spanning ``(k - 1) * (d + 1) + 1``;
- no output size: the output follows the floor rule with the padding given (default 0);
  an output size and no padding: ``padding = ((o - 1) * s - i + span) / 2``, C division;
- the end padding is ``(o - 1) * s - i + span - padding``; benchdnn derives a negative one
  for some strided layers (the last input rows are never read);
- unset ``w`` entries copy the ``h`` ones (square problems); a descriptor with ``w`` entries
  only is 1-D, ``H = 1``.

A descriptor with ``oc`` (or ``g``) is a convolution, any other a pooling.
:meth:`Descriptor.params` gives convcert's geometry: a negative end padding becomes zero
where no window reads the rows it drops (the output size stays the same) and is refused
with a ``ValueError`` otherwise, as is any other geometry convcert cannot express.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .geometry import ConvParams, Padding, Pair, PoolParams, output_size

#: Every field benchdnn's conv driver reads, in its matching order (``g`` is conv only).
FIELDS = ("g", "mb", "ic", "id", "ih", "iw", "oc", "od", "oh", "ow", "kd", "kh", "kw",
          "sd", "sh", "sw", "pd", "ph", "pw", "dd", "dh", "dw")
DEFAULT_MB = 2
_ENTRY = re.compile(r"(mb|ic|id|ih|iw|oc|od|oh|ow|kd|kh|kw|sd|sh|sw|pd|ph|pw|dd|dh|dw|g)(-?\d*)")
#: A descriptor token: quoted parts may hold spaces.
_TOKEN = re.compile(r'(?:[^\s"]+|"[^"]*")+')
#: One spatial axis: input, output, kernel, stride, padding, benchdnn dilation (gaps).
_AXIS = ("i", "o", "k", "s", "p", "d")
#: An axis of size 1 that a window of 1 reads once: what an unset axis defaults to.
_UNIT = {"i": 1, "o": 1, "k": 1, "s": 1, "p": 0, "d": 0, "p_end": 0}


def _cdiv(a: int, b: int) -> int:
    """Integer division rounding toward zero, as C's ``/`` (benchdnn's arithmetic)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@dataclass(frozen=True)
class Descriptor:
    """One benchdnn problem, resolved by benchdnn's rules (padding as benchdnn derives it,
    end padding possibly negative; ``dilation`` in convcert's convention, 1 = none)."""

    text: str
    kind: str  # "conv" or "pool"
    mb: int
    ic: int
    oc: int  # 0 for pooling
    groups: int
    in_hw: Pair
    out_hw: Pair
    kernel: Pair
    stride: Pair
    padding: Padding
    dilation: Pair
    name: str = ""
    ndims: int = 4
    where: str = ""  # "file:line" when read from a file

    @property
    def label(self) -> str:
        """The ``n"..."`` label, or the descriptor itself when it has none."""
        return self.name or self.text

    def convcert_padding(self) -> Padding:
        """``padding`` with a negative end padding clamped to 0 where no window reads the
        rows it drops; ``ValueError`` where one would."""
        pads = []
        for axis, (i, o, k, s, (before, after), d) in enumerate(
            zip(self.in_hw, self.out_hw, self.kernel, self.stride, self.padding, self.dilation, strict=True)
        ):
            name = "hw"[axis]
            if before < 0:
                raise ValueError(f"descriptor {self.text!r}: begin padding p{name}={before} is negative "
                                 "(benchdnn derived it from the output size); convcert pads, never crops")
            if after < 0:
                floor_out = output_size(i, before, 0, (k - 1) * d + 1, s)
                if floor_out != o:
                    raise ValueError(
                        f"descriptor {self.text!r}: end padding {after} on {name} drops input rows that a "
                        f"window reads once the padding is 0 ({floor_out} outputs instead of {o}); "
                        "not expressible with non-negative padding")
                after = 0
            pads.append((before, after))
        return (pads[0], pads[1])

    def params(self, batch: int | None = None, **pool_options: bool) -> ConvParams | PoolParams:
        """convcert's geometry at ``batch`` (default ``mb``); ``pool_options`` are
        ``PoolParams.create``'s ``ceil_mode``/``count_include_pad`` (benchdnn: floor, avg_np)."""
        if self.ndims != 4:
            raise ValueError(f"descriptor {self.text!r}: a {self.ndims - 2}-D problem; convcert is 2-D only")
        n = self.mb if batch is None else batch
        x_shape = (n, self.ic, *self.in_hw)
        padding = self.convcert_padding()
        if self.kind == "conv":
            w_shape = (self.oc, self.ic // self.groups, *self.kernel)
            params: ConvParams | PoolParams = ConvParams.create(
                x_shape, w_shape, self.stride, padding, self.dilation, self.groups)
        else:
            params = PoolParams.create(
                x_shape, self.kernel, self.stride, padding, self.dilation, **pool_options)
        if params.out_hw != self.out_hw:
            raise ValueError(f"descriptor {self.text!r}: output {self.out_hw} given, but the geometry gives "
                             f"{params.out_hw}")
        return params


def _entries(text: str) -> tuple[dict[str, int], str]:
    values: dict[str, int] = {}
    pos, name = 0, ""
    while pos < len(text):
        if text[pos] == "_":
            pos += 1
            continue
        if text[pos] == "n":
            name = text[pos + 1:].strip('"')
            break
        match = _ENTRY.match(text, pos)
        if match is None:
            raise ValueError(f"descriptor={text!r}: unrecognised entry at {text[pos:]!r} (fields: "
                             f"{' '.join(FIELDS)}, then n\"label\")")
        field, number = match.groups()
        if number in ("", "-"):
            raise ValueError(f"descriptor={text!r}: no value for {field!r}")
        if int(number) < 0:
            raise ValueError(f"descriptor={text!r}: {field}={number} must be >= 0")
        values[field] = int(number)
        pos = match.end()
    return values, name


def _axis(values: dict[str, int], axis: str, kind: str, text: str) -> dict[str, int] | None:
    """One spatial axis resolved by benchdnn's rules, or None when the axis is not given."""
    get = {f: values.get(f + axis) for f in _AXIS}
    s = 1 if get["s"] is None else get["s"]
    p = -1 if get["p"] is None else get["p"]
    unset = [get[f] or 0 for f in ("i", "k", "o")] + ([get["d"] or 0] if kind == "conv" else [])
    if not any(unset) and s == 1 and p < 1:
        return None
    if s <= 0:
        raise ValueError(f"descriptor={text!r}: s{axis}={s} must be positive")
    for f in ("i", "k"):
        if not get[f]:
            raise ValueError(f"descriptor={text!r}: {f}{axis} is not set (or 0) but the {axis} axis is used")
    i, k, o, d = get["i"] or 0, get["k"] or 0, get["o"] or 0, get["d"] or 0
    span = (k - 1) * (d + 1) + 1
    if not o:
        p = max(p, 0)
        o = _cdiv(i - span + 2 * p, s) + 1
        if o <= 0:
            raise ValueError(f"descriptor={text!r}: o{axis} deduced as {o}: the window does not fit "
                             "the input")
    elif p < 0:
        p = _cdiv((o - 1) * s - i + span, 2)
    return {"i": i, "o": o, "k": k, "s": s, "p": p, "d": d, "p_end": (o - 1) * s - i + span - p}


def parse(text: str, kind: str | None = None, where: str = "") -> Descriptor:
    """One descriptor; ``kind`` ("conv" or "pool") defaults to conv when ``oc`` or ``g`` is given."""
    values, name = _entries(text)
    kind = kind or ("conv" if "oc" in values or "g" in values else "pool")
    if kind not in ("conv", "pool"):
        raise ValueError(f"kind={kind!r}: must be 'conv' or 'pool'")
    extra = {"g", "oc"} & set(values) if kind == "pool" else set()
    if extra:
        raise ValueError(f"descriptor={text!r}: {sorted(extra)} are not pooling fields")
    required = ("ic", "oc") if kind == "conv" else ("ic",)
    for field in required + ("mb", "g"):
        if field in values and values[field] <= 0 or field in required and field not in values:
            raise ValueError(f"descriptor={text!r}: {field} must be set to a positive value")
    depth = _axis(values, "d", kind, text)
    ndims = 4 if depth is None or depth == _UNIT else 5  # a depth-1 3-D problem is a 2-D one
    h, w = _axis(values, "h", kind, text), _axis(values, "w", kind, text)
    if h is None and w is None:
        if ndims == 4:
            raise ValueError(f"descriptor={text!r}: no spatial size (ih/iw) is given")
        h = w = _UNIT  # 3-D: refused by params()
    h = h if h is not None else _UNIT  # 1-D along W
    w = w if w is not None else h  # a square problem
    g = values.get("g", 1)
    if kind == "conv" and (values["ic"] % g or values["oc"] % g):
        raise ValueError(f"descriptor={text!r}: g={g} must divide ic={values['ic']} and oc={values['oc']}")
    return Descriptor(
        text=text, kind=kind, mb=values.get("mb", DEFAULT_MB), ic=values["ic"], oc=values.get("oc", 0),
        groups=g, in_hw=(h["i"], w["i"]), out_hw=(h["o"], w["o"]), kernel=(h["k"], w["k"]),
        stride=(h["s"], w["s"]), padding=((h["p"], h["p_end"]), (w["p"], w["p_end"])),
        dilation=(h["d"] + 1, w["d"] + 1), name=name, ndims=ndims, where=where,
    )


def parse_lines(lines: list[str], source: str = "<shapes>", kind: str | None = None) -> list[Descriptor]:
    """Descriptors of a shapes file's lines: ``#`` starts a comment, blank lines are skipped,
    several descriptors may share a line. A benchdnn option (``--dir=FWD_B``) is refused:
    a shapes file holds problems only."""
    out = []
    for number, line in enumerate(lines, 1):
        body = line.split("#", 1)[0]
        for token in _TOKEN.findall(body):
            where = f"{source}:{number}"
            if token.startswith("--"):
                raise ValueError(f"{where}: {token!r} is a benchdnn option, not a problem descriptor")
            try:
                out.append(parse(token, kind, where))
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
    return out


def read(path: str | Path, kind: str | None = None) -> list[Descriptor]:
    """Every descriptor in the shapes file at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"shapes={str(path)!r}: no such file")
    return parse_lines(path.read_text().splitlines(), str(path), kind)


__all__ = ["Descriptor", "FIELDS", "parse", "parse_lines", "read"]
