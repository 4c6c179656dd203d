"""The contract between the twin's SSH shell and each emulated command.

A command is ``fn(ctx, args) -> Result``: it reads the live ``Cvm`` in ``ctx`` and answers with the
exit status, stdout and stderr the real tool would give. Used by twin/ssh/shell.py (which
parses the command line) and the command modules beside this one.
"""

from __future__ import annotations

import getopt
import math
from collections.abc import Callable
from dataclasses import dataclass

from twin.world.hosts import Cvm


@dataclass(frozen=True)
class Result:
    exit_status: int
    stdout: str = ""
    stderr: str = ""


@dataclass(frozen=True)
class Context:
    cvm: Cvm
    reachable: Callable[[str], bool]  # does this host reach that IP (ping)?
    user: str = "root"


Command = Callable[[Context, list[str]], Result]


class UsageError(Exception):
    """Bad options: the command prints ``message`` on stderr and exits with ``status``."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.message = message
        self.status = status


def parse_options(tool: str, args: list[str], short: str, long: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """GNU-style option parsing (options and operands in any order); bad options -> UsageError."""
    try:
        return getopt.gnu_getopt(args, short, long)
    except getopt.GetoptError as e:
        raise UsageError(f"{tool}: {e.msg}\nTry '{tool} --help' for more information.\n") from e


_UNITS = "BKMGTPE"


def _in_units(size: int) -> tuple[float, int]:
    """``size`` scaled by 1024 until below 1024 (or at the largest unit), with the unit's index."""
    exp = 0
    value = float(size)
    while value >= 1024 and exp < len(_UNITS) - 1:
        value /= 1024
        exp += 1
    return value, exp


def lsblk_size(size: int) -> str:
    """Human size as lsblk prints it: powers of 1024, one decimal unless whole (``50G``, ``931.5G``)."""
    value, exp = _in_units(size)
    rounded = round(value, 1)
    text = str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"
    return f"{text}{_UNITS[exp]}" if exp else f"{text}B"


def df_size(size: int) -> str:
    """Human size as ``df -h`` prints it: rounded up, one decimal below 10 (``3.2G``, ``47G``, ``0``)."""
    if size == 0:
        return "0"
    value, exp = _in_units(size)
    unit = _UNITS[exp] if exp else ""
    if value < 10:
        tenths = math.ceil(value * 10 - 1e-9) / 10
        if tenths < 10:
            return f"{tenths:.1f}{unit}"
    return f"{math.ceil(value - 1e-9)}{unit}"


def table(rows: list[list[str]], right: frozenset[int] = frozenset()) -> str:
    """Rows as aligned columns separated by one space (the last column is never padded)."""
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            last = i == len(row) - 1
            if i in right:
                cells.append(cell.rjust(widths[i]))
            else:
                cells.append(cell if last else cell.ljust(widths[i]))
        lines.append(" ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
