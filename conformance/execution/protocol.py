"""What passes between the certifier and its worker process, and how the certifier reads it.

The worker runs the plug-in, so everything it sends is untrusted. Nothing it sends is ever
unpickled: an answer is a tag byte and either JSON (claims, findings) or, for a case's
outcome, a JSON header (kind, message, dtype and shape of each array) followed by the
arrays' raw bytes. :func:`decode_outcome` checks every field, the dtypes (plain numbers
only) and the byte counts before one array is built; anything else raises
:class:`MalformedAnswer`, which fails the case and restarts the worker. Requests the other
way are pickled: the certifier writes them and the worker trusts its parent.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from implementations.dtypes import DTYPES, numpy_dtype
from implementations.text import clean_data, clean_text

#: How one call ended (see :class:`Outcome`).
OutcomeKind = Literal["ok", "limited", "unsupported", "raised", "invalid", "died", "refused"]
KINDS: tuple[str, ...] = ("ok", "limited", "unsupported", "raised", "invalid", "died", "refused")
#: Array dtypes an answer may carry: the contract's floats, and integers and booleans (so
#: that a wrong dtype is judged as such, not as a malformed answer).
ANSWER_DTYPES: tuple[str, ...] = DTYPES + ("int8", "int16", "int32", "int64", "uint8", "uint16",
                                            "uint32", "uint64", "bool")
#: Tags of the worker's messages.
TAG_JSON, TAG_OUTCOME = b"J", b"O"
_HEADER = struct.Struct("<I")
class ResourceRefused(RuntimeError):
    """The machine refused a case a resource (memory, a thread, a file) twice: it could not run,
    and no verdict is given on the implementation."""


class MalformedAnswer(ValueError):
    """A message from the worker that is not what the protocol allows (says what was wrong)."""


@dataclass
class Outcome:
    """What one call of an implementation gave, wherever it ran (this process or a worker).

    ``kind``: ``ok`` (``found`` holds the outputs, ``after`` the inputs as they were after
    the call), ``limited`` (a declared limit covers the case; ``message`` is its reason),
    ``unsupported`` (``Unsupported`` raised; ``message`` is its reason), ``raised`` (any
    other exception), ``invalid`` (it returned something that is not an array of plain
    numbers), ``died`` (the worker crashed, ran out of time or sent a malformed answer) or
    ``refused`` (the machine refused a resource: memory, a thread, a file; not a verdict).
    """

    kind: OutcomeKind
    found: list[np.ndarray] = field(default_factory=list)
    after: dict[str, np.ndarray] = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0


def not_plain_numbers(array: Any) -> str | None:
    """Why ``array`` cannot be an answer ("an object array"), or None when it can."""
    if not isinstance(array, np.ndarray):
        return f"a {type(array).__name__}, not an array"
    if array.dtype.name not in ANSWER_DTYPES:
        kind = {"O": "an object", "U": "a string", "S": "a bytes", "c": "a complex", "V": "a structured"}
        return f"{kind.get(array.dtype.kind, 'a ' + array.dtype.name)} array (dtype {array.dtype})"
    return None


def encode_json(data: Any) -> bytes:
    return TAG_JSON + json.dumps(data, default=str).encode()


def encode_outcome(outcome: Outcome) -> bytes:
    """The outcome as a tag, a JSON header and the raw bytes of its arrays (C order)."""
    arrays = [*outcome.found, *outcome.after.values()]
    header = {"kind": outcome.kind, "message": outcome.message, "seconds": outcome.seconds,
              "found": len(outcome.found), "after": list(outcome.after),
              "arrays": [[a.dtype.name, list(a.shape)] for a in arrays]}
    head = json.dumps(header).encode()
    return b"".join([TAG_OUTCOME, _HEADER.pack(len(head)), head,
                     *(np.ascontiguousarray(a).tobytes() for a in arrays)])


def decode_json(message: bytes) -> Any:
    if message[:1] != TAG_JSON:
        raise MalformedAnswer(f"expected a JSON message, got tag {message[:1]!r}")
    try:
        return clean_data(json.loads(message[1:]))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedAnswer(f"not JSON ({clean_text(str(exc), 200)})") from None


def _field(header: dict, key: str, kind: type | tuple[type, ...]) -> Any:
    value = header.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise MalformedAnswer(f"header field {key!r} is {value!r}")
    return value


def _array_spec(spec: Any) -> tuple[np.dtype, tuple[int, ...]]:
    if not (isinstance(spec, list) and len(spec) == 2 and isinstance(spec[0], str)
            and isinstance(spec[1], list)):
        raise MalformedAnswer(f"array description {spec!r}")
    name, shape = spec
    if name not in ANSWER_DTYPES:
        raise MalformedAnswer(f"array dtype {name!r} is not a plain number type")
    sizes_ok = all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**40 for n in shape)
    if not sizes_ok or len(shape) > 8:
        raise MalformedAnswer(f"array shape {shape!r}")
    return numpy_dtype(name) if name in DTYPES else np.dtype(name), tuple(shape)


def decode_outcome(message: bytes) -> Outcome:
    """The outcome in ``message``, every field and byte count checked (raises MalformedAnswer)."""
    if message[:1] != TAG_OUTCOME or len(message) < 1 + _HEADER.size:
        raise MalformedAnswer(f"expected an outcome, got {len(message)} bytes starting {message[:8]!r}")
    (length,) = _HEADER.unpack_from(message, 1)
    start = 1 + _HEADER.size
    header = decode_json(TAG_JSON + message[start:start + length])
    if not isinstance(header, dict):
        raise MalformedAnswer(f"outcome header {header!r}")
    kind = _field(header, "kind", str)
    if kind not in KINDS:
        raise MalformedAnswer(f"outcome kind {kind!r}")
    seconds = _field(header, "seconds", (int, float))
    n_found = _field(header, "found", int)
    names = _field(header, "after", list)
    specs = [_array_spec(s) for s in _field(header, "arrays", list)]
    if not math.isfinite(seconds) or not all(isinstance(n, str) for n in names) \
            or n_found < 0 or n_found + len(names) != len(specs):
        raise MalformedAnswer("outcome header counts do not add up")
    arrays, offset = [], start + length
    for dtype, shape in specs:
        size = dtype.itemsize * math.prod(shape)
        if offset + size > len(message):
            raise MalformedAnswer(f"{len(message) - offset} bytes left for an array of {size}")
        arrays.append(np.frombuffer(message, dtype, math.prod(shape), offset).reshape(shape).copy())
        offset += size
    if offset != len(message):
        raise MalformedAnswer(f"{len(message) - offset} bytes after the last array")
    return Outcome(kind, arrays[:n_found], dict(zip(names, arrays[n_found:], strict=True)),
                   _field(header, "message", str), float(seconds))
