"""Text from a plug-in, made safe to show anywhere: bounded, with control characters escaped.

A plug-in's messages, reasons and claims reach the console, JSON, Markdown, HTML and JUnit
files. Unbounded, one exception message can make a certificate of tens of megabytes; raw, an
ESC or CR sequence redraws a terminal line (a FAILED line shown as PASSED). Every string that
crosses from a plug-in's process into the certifier's passes through :func:`clean_text` once,
at that boundary, so that everything downstream is already clean.
"""

from __future__ import annotations

import re
from typing import Any

#: Most characters kept of one string from the plug-in (a message, a claim).
TEXT_CHARS = 2048
#: Control characters (C0 but newline and tab, DEL, C1): shown escaped as ``\\xNN``.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text: str, limit: int = TEXT_CHARS) -> str:
    """``text`` bounded to ``limit`` characters (saying how many were cut) with every control
    character but newline and tab escaped (ESC and CR could redraw a terminal line)."""
    if len(text) > limit:
        text = f"{text[:limit]} [... {len(text) - limit} more characters cut by convcert]"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def clean_data(data: Any) -> Any:
    """``data`` (parsed JSON) with every string, keys included, passed through :func:`clean_text`."""
    if isinstance(data, str):
        return clean_text(data)
    if isinstance(data, list):
        return [clean_data(v) for v in data]
    if isinstance(data, dict):
        return {clean_text(str(k)): clean_data(v) for k, v in data.items()}
    return data
