"""``lsblk`` and ``blkid`` on a twin CVM, in util-linux 2.37's output formats.

The add-existing-hosts flow (R-ADD-3) inspects each host with these to see its data disks, their
filesystems and mountpoints before deciding whether the container directory goes on a data disk.
Supported: ``lsblk [-J] [-b] [-d] [-p] [-f] [-n] [-o COLS] [DEVICE...]`` and
``blkid [-o full|value|export|device] [-s TAG]... [DEVICE...]``. JSON keys are the lower-cased
column names; with ``-J`` RM/RO are booleans and sizes are numbers when ``-b`` is given, as in
util-linux 2.33+. Not emulated: -l/-P/-r list formats, -t/-O, blkid probing options (-p, -U, -L).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from twin.ssh.commands.base import Context, Result, UsageError, lsblk_size, parse_options, table
from twin.ssh.commands.layout import BlockDev, block_devices

_DEFAULT_COLUMNS = ["NAME", "MAJ:MIN", "RM", "SIZE", "RO", "TYPE", "MOUNTPOINTS"]
_FS_COLUMNS = ["NAME", "FSTYPE", "FSVER", "LABEL", "UUID", "FSAVAIL", "FSUSE%", "MOUNTPOINTS"]
_SIZE_COLUMNS = {"SIZE", "FSSIZE", "FSUSED", "FSAVAIL"}
_FS_VERSION = {"ext4": "1.0", "xfs": ""}


def _fs_numbers(dev: BlockDev) -> tuple[int, int, int] | None:
    """(size, used, avail) of a mounted filesystem, None when not mounted."""
    if not dev.mountpoint:
        return None
    return dev.size_bytes, dev.used_bytes, max(0, dev.size_bytes - dev.used_bytes)


def _value(column: str, dev: BlockDev, paths: bool) -> object:
    """One cell: str, bool, int, list or None (JSON types; the table renderer stringifies)."""
    fs = _fs_numbers(dev)
    getters: dict[str, Callable[[], object]] = {
        "NAME": lambda: f"/dev/{dev.name}" if paths else dev.name,
        "KNAME": lambda: dev.name,
        "PATH": lambda: f"/dev/{dev.name}",
        "MAJ:MIN": lambda: dev.majmin,
        "RM": lambda: False,
        "RO": lambda: False,
        "SIZE": lambda: dev.size_bytes,
        "TYPE": lambda: dev.type,
        "FSTYPE": lambda: dev.fstype,
        "FSVER": lambda: _FS_VERSION.get(dev.fstype or "") or None,
        "LABEL": lambda: None,
        "UUID": lambda: dev.uuid,
        "MOUNTPOINT": lambda: dev.mountpoint,
        "MOUNTPOINTS": lambda: [dev.mountpoint],
        "SERIAL": lambda: dev.serial,
        "PKNAME": lambda: dev.parent,
        "MODEL": lambda: None,
        "FSSIZE": lambda: fs[0] if fs else None,
        "FSUSED": lambda: fs[1] if fs else None,
        "FSAVAIL": lambda: fs[2] if fs else None,
        "FSUSE%": lambda: f"{round(fs[1] * 100 / fs[0])}%" if fs and fs[0] else None,
    }
    return getters[column]()


def _render_json_value(column: str, value: object, in_bytes: bool) -> object:
    if column in _SIZE_COLUMNS and isinstance(value, int):
        return value if in_bytes else lsblk_size(value)
    return value


def _render_cell(column: str, value: object, in_bytes: bool) -> str:
    if value is None or value is False:
        return "0" if value is False else ""
    if value is True:
        return "1"
    if isinstance(value, list):
        return "\n".join(v for v in value if v) if any(value) else ""
    if column in _SIZE_COLUMNS and isinstance(value, int):
        return str(value) if in_bytes else lsblk_size(value)
    return str(value)


def _parse_lsblk_args(args: list[str]) -> tuple[dict[str, bool], list[str], list[str]]:
    opts, devices = parse_options(
        "lsblk", args, "Jbdpfno:", ["json", "bytes", "nodeps", "paths", "fs", "noheadings", "output="]
    )
    flags = {"json": False, "bytes": False, "nodeps": False, "paths": False, "noheadings": False}
    columns = list(_DEFAULT_COLUMNS)
    long_names = {"-J": "json", "-b": "bytes", "-d": "nodeps", "-p": "paths", "-n": "noheadings"}
    for opt, arg in opts:
        if opt in ("-o", "--output"):
            columns = [c.strip().upper() for c in arg.split(",") if c.strip()]
        elif opt in ("-f", "--fs"):
            columns = list(_FS_COLUMNS)
        else:
            flags[long_names.get(opt, opt.lstrip("-"))] = True
    for column in columns:
        try:
            _value(column, BlockDev("x", "0:0", 0, "disk", None, None, None, None, None, 0), False)
        except KeyError:
            raise UsageError(f"lsblk: unknown column: {column}\n") from None
    return flags, columns, devices


def _selected(devices: list[BlockDev], wanted: list[str], nodeps: bool) -> list[tuple[BlockDev, list[BlockDev]]]:
    """Top-level devices (filtered by the operands) each with its children."""
    by_name = {d.name: d for d in devices}
    for operand in wanted:
        if operand.removeprefix("/dev/") not in by_name:
            raise UsageError(f"lsblk: {operand}: not a block device\n", 32)
    names = {w.removeprefix("/dev/") for w in wanted}
    tops = [d for d in devices if d.name in names] if names else [d for d in devices if d.parent is None]
    return [(top, [] if nodeps else [d for d in devices if d.parent == top.name]) for top in tops]


def lsblk(ctx: Context, args: list[str]) -> Result:
    try:
        flags, columns, wanted = _parse_lsblk_args(args)
        tree = _selected(block_devices(ctx.cvm), wanted, flags["nodeps"])
    except UsageError as e:
        return Result(e.status, "", e.message)
    if flags["json"]:
        return Result(0, _lsblk_json(tree, columns, flags), "")
    rows = [] if flags["noheadings"] else [columns]
    for top, children in tree:
        rows.append([_render_cell(c, _value(c, top, flags["paths"]), flags["bytes"]) for c in columns])
        for i, child in enumerate(children):
            row = [_render_cell(c, _value(c, child, flags["paths"]), flags["bytes"]) for c in columns]
            if columns and columns[0] == "NAME":
                row[0] = ("└─" if i == len(children) - 1 else "├─") + row[0]
            rows.append(row)
    return Result(0, table(rows), "")


def _lsblk_json(tree: list[tuple[BlockDev, list[BlockDev]]], columns: list[str], flags: dict[str, bool]) -> str:
    def obj(dev: BlockDev) -> dict[str, object]:
        return {
            c.lower(): _render_json_value(c, _value(c, dev, flags["paths"]), flags["bytes"]) for c in columns
        }

    out = []
    for top, children in tree:
        item = obj(top)
        if children:
            item["children"] = [obj(child) for child in children]
        out.append(item)
    return json.dumps({"blockdevices": out}, indent=3, ensure_ascii=False) + "\n"


def _blkid_tags(dev: BlockDev) -> dict[str, str]:
    tags = {"UUID": dev.uuid or "", "BLOCK_SIZE": "512" if dev.fstype == "xfs" else "4096", "TYPE": dev.fstype or ""}
    if dev.type == "part":
        tags["PARTUUID"] = f"{(dev.uuid or '')[:8]}-01"
    return tags


def blkid(ctx: Context, args: list[str]) -> Result:
    try:
        opts, wanted = parse_options("blkid", args, "o:s:", ["output=", "match-tag="])
    except UsageError as e:
        return Result(4, "", e.message)
    fmt, only = "full", []
    for opt, arg in opts:
        if opt in ("-o", "--output"):
            fmt = arg
        else:
            only.append(arg)
    if fmt not in ("full", "value", "export", "device"):
        return Result(4, "", f"blkid: unsupported output format {fmt}\n")
    names = {w.removeprefix("/dev/") for w in wanted}
    devices = [d for d in block_devices(ctx.cvm) if d.fstype and (not names or d.name in names)]
    chunks = []
    for dev in devices:
        tags = {k: v for k, v in _blkid_tags(dev).items() if v and (not only or k in only)}
        path = f"/dev/{dev.name}"
        if fmt == "full":
            chunks.append(f"{path}: " + " ".join(f'{k}="{v}"' for k, v in tags.items()) + "\n")
        elif fmt == "value":
            chunks.append("".join(f"{v}\n" for v in tags.values()))
        elif fmt == "device":
            chunks.append(f"{path}\n")
        else:
            chunks.append(f"DEVNAME={path}\n" + "".join(f"{k}={v}\n" for k, v in tags.items()))
    separator = "\n" if fmt == "export" else ""
    stdout = separator.join(chunks)
    return Result(0 if devices else 2, stdout, "")


COMMANDS = {"lsblk": lsblk, "blkid": blkid}
