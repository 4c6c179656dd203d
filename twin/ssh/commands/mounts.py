"""``findmnt`` and ``df`` on a twin CVM, in util-linux 2.37 / GNU coreutils output formats.

The add-existing-hosts flow reads these to learn where each data disk is mounted and how much it
holds (R-ADD-3), and after the join to check that the container directory sits on the data disk.
Supported: ``findmnt [-J] [-n] [-l] [-o COLS] [-T|--target PATH] [-S|--source DEV]
[-M|--mountpoint PATH] [DEVICE|MOUNTPOINT]`` (exit 1 when nothing matches) and
``df [-h|-k|-B SIZE] [-T] [PATH...]``. Used space comes from ``Disk.used_gb``; ext4 keeps 5% reserved
for root as mkfs.ext4 does by default.
"""

from __future__ import annotations

import json
import math

from twin.ssh.commands.base import Context, Result, UsageError, df_size, parse_options, table
from twin.ssh.commands.layout import MountEntry, mount_containing, mounts

_FINDMNT_COLUMNS = {"TARGET", "SOURCE", "FSTYPE", "OPTIONS", "SIZE", "USED", "AVAIL", "USE%", "UUID"}


def _parent_of(entry: MountEntry, entries: list[MountEntry]) -> MountEntry | None:
    others = [e for e in entries if e is not entry]
    return mount_containing(entry.target, others) if entry.target != "/" else None


def _cell(column: str, entry: MountEntry) -> str | int | None:
    size, used, avail = _space(entry)
    cells: dict[str, str | int | None] = {
        "TARGET": entry.target,
        "SOURCE": entry.source,
        "FSTYPE": entry.fstype,
        "OPTIONS": entry.options,
        "SIZE": df_size(size),
        "USED": df_size(used),
        "AVAIL": df_size(avail),
        "USE%": f"{_use_percent(used, avail)}%",
        "UUID": None,
    }
    return cells[column]


def _parse_findmnt_args(args: list[str]) -> tuple[dict[str, object], list[str]]:
    opts, operands = parse_options(
        "findmnt", args, "Jnlo:T:S:M:",
        ["json", "noheadings", "list", "output=", "target=", "source=", "mountpoint="],
    )
    parsed: dict[str, object] = {"json": False, "noheadings": False, "list": False,
                                 "columns": ["TARGET", "SOURCE", "FSTYPE", "OPTIONS"]}
    for opt, arg in opts:
        key = {"-J": "json", "-n": "noheadings", "-l": "list", "-o": "output", "-T": "target",
               "-S": "source", "-M": "mountpoint"}.get(opt, opt.lstrip("-"))
        if key == "output":
            parsed["columns"] = [c.strip().upper() for c in arg.split(",") if c.strip()]
        else:
            parsed[key] = arg if arg else True
    unknown = [c for c in parsed["columns"] if c not in _FINDMNT_COLUMNS]  # type: ignore[attr-defined]
    if unknown:
        raise UsageError(f"findmnt: unknown column: {unknown[0]}\n")
    return parsed, operands


def _matches(entries: list[MountEntry], parsed: dict[str, object], operands: list[str]) -> tuple[list[MountEntry], bool]:
    """The mounts to show and whether a filter was given (filters print a flat list)."""
    if "target" in parsed:
        found = mount_containing(str(parsed["target"]), entries)
        return ([found] if found else []), True
    if "source" in parsed:
        return [e for e in entries if e.source == parsed["source"]], True
    if "mountpoint" in parsed:
        return [e for e in entries if e.target == str(parsed["mountpoint"]).rstrip("/") or (
            e.target == "/" and parsed["mountpoint"] == "/")], True
    if operands:
        wanted = operands[0].rstrip("/") or "/"
        return [e for e in entries if wanted in (e.target, e.source)], True
    return entries, False


def findmnt(ctx: Context, args: list[str]) -> Result:
    try:
        parsed, operands = _parse_findmnt_args(args)
    except UsageError as e:
        return Result(e.status, "", e.message)
    entries = mounts(ctx.cvm)
    shown, filtered = _matches(entries, parsed, operands)
    if not shown:
        return Result(1, "", "")
    columns: list[str] = parsed["columns"]  # type: ignore[assignment]
    flat = filtered or bool(parsed["list"])
    if parsed["json"]:
        return Result(0, _findmnt_json(shown, entries, columns, flat), "")
    rows = [] if parsed["noheadings"] else [columns]
    for entry, prefix in _ordered(shown, entries, flat):
        row = [str(_cell(c, entry) or "") for c in columns]
        if columns[0] == "TARGET":
            row[0] = prefix + row[0]
        rows.append(row)
    return Result(0, table(rows), "")


def _ordered(shown: list[MountEntry], entries: list[MountEntry], flat: bool) -> list[tuple[MountEntry, str]]:
    """Mounts in display order with their tree prefix (``├─``, ``│ └─``) as findmnt draws it."""
    if flat:
        return [(e, "") for e in shown]
    out: list[tuple[MountEntry, str]] = []

    def walk(entry: MountEntry, indent: str, branch: str) -> None:
        out.append((entry, indent + branch))
        children = [e for e in entries if _parent_of(e, entries) is entry]
        deeper = indent + ("" if not branch else ("  " if branch == "└─" else "│ "))
        for i, child in enumerate(children):
            walk(child, deeper, "└─" if i == len(children) - 1 else "├─")

    for root in (e for e in entries if _parent_of(e, entries) is None):
        walk(root, "", "")
    return out


def _findmnt_json(shown: list[MountEntry], entries: list[MountEntry], columns: list[str], flat: bool) -> str:
    def obj(entry: MountEntry) -> dict[str, object]:
        item: dict[str, object] = {c.lower(): _cell(c, entry) for c in columns}
        if not flat:
            children = [obj(e) for e in entries if _parent_of(e, entries) is entry]
            if children:
                item["children"] = children
        return item

    roots = shown if flat else [e for e in entries if _parent_of(e, entries) is None]
    return json.dumps({"filesystems": [obj(e) for e in roots]}, indent=3) + "\n"


def _space(entry: MountEntry) -> tuple[int, int, int]:
    """(size, used, available) the way statfs reports them: ext4 keeps 5% for root."""
    reserved = entry.size_bytes // 20 if entry.fstype == "ext4" else 0
    return entry.size_bytes, entry.used_bytes, max(0, entry.size_bytes - entry.used_bytes - reserved)


def _use_percent(used: int, avail: int) -> int:
    return math.ceil(used * 100 / (used + avail)) if used + avail else 0


def _block_size(opts: list[tuple[str, str]]) -> int | None:
    """Bytes per block, or None for human-readable (-h)."""
    size: int | None = 1024
    multipliers = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    for opt, arg in opts:
        if opt in ("-h", "--human-readable"):
            size = None
        elif opt in ("-k",):
            size = 1024
        elif opt in ("-B", "--block-size"):
            number, unit = arg.rstrip("KMGTB").strip() or "1", arg.lstrip("0123456789").rstrip("B")
            if unit not in multipliers or not number.isdigit():
                raise UsageError(f"df: invalid -B argument '{arg}'\n")
            size = int(number) * multipliers[unit]
    return size


def df(ctx: Context, args: list[str]) -> Result:
    try:
        opts, paths = parse_options("df", args, "hkB:T", ["human-readable", "block-size=", "print-type"])
        block = _block_size(opts)
    except UsageError as e:
        return Result(1, "", e.message)
    with_type = any(o in ("-T", "--print-type") for o, _ in opts)
    entries = [e for e in mounts(ctx.cvm) if e.size_bytes]
    if paths:
        entries = [m for p in paths if (m := mount_containing(p, entries)) is not None]
    header = ["Filesystem"] + (["Type"] if with_type else [])
    header += ["Size", "Used", "Avail"] if block is None else [_blocks_label(block), "Used", "Available"]
    rows = [header + ["Use%", "Mounted on"]]
    for entry in entries:
        size, used, avail = _space(entry)
        numbers = [df_size(n) if block is None else str(math.ceil(n / block)) for n in (size, used, avail)]
        rows.append([entry.source] + ([entry.fstype] if with_type else []) + numbers
                    + [f"{_use_percent(used, avail)}%", entry.target])
    first_number = 2 if with_type else 1
    return Result(0, table(rows, right=frozenset(range(first_number, first_number + 4))), "")


def _blocks_label(block: int) -> str:
    for unit, size in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if block % size == 0:
            return f"{block // size}{unit}-blocks"
    return f"{block}B-blocks"


COMMANDS = {"findmnt": findmnt, "df": df}
