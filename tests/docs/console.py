"""Console examples in the docs, run and compared with the output they show.

A console example is a fenced block marked ``console`` in README.md or docs/*.md: lines that
start with ``$ `` are commands, the lines after one are its output (stdout and stderr together,
as a terminal shows them). Each block runs in a fresh folder holding the plug-in file
``docs/examples/myconv.py`` as ``myconv.py``, with ``convcert``, ``pytest`` and ``python`` meaning
this checkout's code (``NO_COLOR=1``, 80 columns), its commands one after another in one shell
(so ``echo $?`` sees the command before it). Before comparing, both sides are masked the same
way: durations (``2.6 s``, ``6.98s``), absolute paths, dates and the width of pytest's rules;
the lines of the live progress display (``[certify myconv] catalogue 13/140 cases, ...``,
redrawn in one place on a terminal) are left out of the output.
An output line ``...`` stands for any number of lines, and a line ending in ``...`` for the
rest of that line. Anything else, every count and number included, must match.

Run ``python tests/docs/console.py FILE.md ...`` to print what each example prints now.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PLUGIN = REPO / "docs" / "examples" / "myconv.py"
END = "@@convcert-docs-end@@"
#: Seconds one block may take: examples are kept quick (``--quick``).
TIMEOUT = 300

#: A line of the live progress display of ``certify`` and ``matrix`` (left out of the output).
PROGRESS = re.compile(r"^\[(certify|matrix)\b[^\]]*\] .*\n?", re.M)
_MASKS = [
    (PROGRESS, ""),
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"), "<date>"),
    (re.compile(r"(?<![\w.~])(/[\w.+@-]+)+/?"), "<path>"),
    (re.compile(r"\b\d+(\.\d+)?( ?s|s)\b"), "<t> s"),
    (re.compile(r"\(\d+:\d{2}:\d{2}\)"), "(<t>)"),
    (re.compile(r"={4,}"), "===="),
    (re.compile(r"-{4,}"), "----"),
    (re.compile(r"_{4,}"), "____"),
    (re.compile(r"[ \t]+(?=\[ *\d+%\])"), " "),  # pytest's progress column
    (re.compile(r"[ \t]+$", re.M), ""),
]


@dataclass(frozen=True)
class Example:
    """One console block: where it is, its commands, and the output each shows."""

    document: Path
    line: int
    commands: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.line}"


def examples(document: Path) -> list[Example]:
    found = []
    lines = document.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        start, i = i + 1, i + 1
        commands: list[str] = []
        outputs: list[list[str]] = []
        while i < len(lines) and lines[i].strip() != "```":
            if lines[i].startswith("$ "):
                commands.append(lines[i][2:])
                outputs.append([])
            elif not commands:
                raise ValueError(f"{document}:{i + 1}: a console block must open with a '$ ' command")
            else:
                outputs[-1].append(lines[i])
            i += 1
        found.append(Example(document, start, tuple(commands), tuple("\n".join(o) for o in outputs)))
        i += 1
    return found


def mask(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text.strip("\n")


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` shows, both masked, ``...`` standing for the rest."""
    parts = []
    for line in mask(expected).splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        elif line.endswith("..."):
            parts.append(re.escape(line[:-3]) + r"[^\n]*\n")
        else:
            parts.append(re.escape(line) + r"\n")
    return re.fullmatch("".join(parts), mask(actual) + "\n") is not None


def _tools(folder: Path) -> dict[str, str]:
    """A folder of commands as a user of the installed package has them, running this checkout."""
    tools = folder / ".bin"
    tools.mkdir()
    python = sys.executable
    scripts = {
        "python": f'exec {python} "$@"',
        "convcert": f'exec {python} -m convcert "$@"',
        # the plugin as the installed package registers it, from this checkout
        "pytest": f'exec {python} -m pytest -p no:convcert -p convcert.pytest_plugin '
                  '-p no:cacheprovider "$@"',
    }
    for name, body in scripts.items():
        (tools / name).write_text(f"#!/bin/sh\n{body}\n")
        (tools / name).chmod(0o755)
    # as on a user's terminal: pytest prints whole summary lines when CI or BUILD_NUMBER is set
    user = {k: v for k, v in os.environ.items() if k not in ("CI", "BUILD_NUMBER")}
    return {**user, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "80", "TERM": "dumb"}


def run(example: Example, folder: Path) -> list[str]:
    """The output of each of the example's commands, run in ``folder``."""
    shutil.copy(PLUGIN, folder / "myconv.py")
    env = _tools(folder)
    script = "".join(f"{{ {command}\n}} 2>&1; __s=$?; printf '\\n{END}\\n'; (exit $__s)\n"
                     for command in example.commands)
    done = subprocess.run(["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    outputs = done.stdout.split(f"\n{END}\n")[: len(example.commands)]
    return [o.strip("\n") for o in outputs]


def report(example: Example, actual: list[str]) -> str:
    """Expected and actual output of every command that differs, and their masked diff."""
    out = [f"{example.where}: the console example's output differs from what the commands print now"]
    for command, expected, got in zip(example.commands, example.outputs, actual, strict=False):
        if matches(expected, got):
            continue
        out += [f"$ {command}", "--- shown in the document:", expected,
                "--- printed now (progress lines left out):", PROGRESS.sub("", got).strip("\n"),
                "--- masked diff:"]
        out += difflib.unified_diff(mask(expected).splitlines(), mask(got).splitlines(), "shown", "printed",
                                    lineterm="")
    return "\n".join(out)


def main(paths: list[str]) -> int:
    import tempfile

    for path in paths:
        for example in examples(Path(path).resolve()):
            with tempfile.TemporaryDirectory() as folder:
                actual = run(example, Path(folder))
            print(f"# {example.where}")
            for command, got in zip(example.commands, actual, strict=False):
                got = PROGRESS.sub("", got).strip("\n")
                print(f"$ {command}\n{got}" if got else f"$ {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
