"""Parsers of what the host inspection commands print: lsblk, findmnt, blkid, df, /etc/os-release,
and the zero check (``cmp`` of a disk's first and last MiB against /dev/zero, R-ADD-3).

Who calls it: the add-existing-hosts tasks (tasks/hosts.py, tasks/hosts_join.py) on the stdout that
tkeflow/clients/ssh.py brings back, before the R-ADD-3 data-disk decision and after the join.
Why a module of its own: parsing is pure text -> frozen dataclasses, testable without a host or
paramiko; it reads both util-linux 2.32 (TencentOS 3 / CentOS 8) and 2.37+ output. Output that is
not what the tool prints is a PermanentError that quotes (at most 200 characters of) it.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tkeflow import errors


@dataclass(frozen=True)
class BlockDevice:
    """One row of ``lsblk``; ``parent`` is the disk a partition sits on."""

    name: str
    size_bytes: int
    type: str
    fstype: str | None
    mountpoint: str | None
    uuid: str | None
    serial: str | None = None
    parent: str | None = None

    @property
    def path(self) -> str:
        return self.name if self.name.startswith("/") else f"/dev/{self.name}"


@dataclass(frozen=True)
class Mount:
    target: str
    source: str
    fstype: str
    options: str = ""


@dataclass(frozen=True)
class FilesystemUsage:
    """One line of ``df -B1``."""

    source: str
    size_bytes: int
    used_bytes: int
    available_bytes: int
    target: str


_SIZE_UNITS = {"B": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}


def _size_bytes(value: Any) -> int:
    """lsblk sizes: a number (-b, util-linux 2.33+), a numeric string (2.32) or ``50G``/``931.5G``."""
    if value is None:
        return 0
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    match = re.fullmatch(r"([\d.]+)([BKMGTP])", text)
    if not match:
        raise errors.PermanentError(f"unexpected lsblk size {text!r}")
    return int(float(match.group(1)) * 1024 ** _SIZE_UNITS[match.group(2)])


def _load_json(text: str, tool: str) -> Any:
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError as e:
        raise errors.PermanentError(f"{tool} printed something that is not JSON: {text[:200]!r}") from e


def parse_lsblk_json(text: str) -> list[BlockDevice]:
    """``lsblk -J [-b] [-o ...]`` -> every device, partitions right after their disk."""
    out: list[BlockDevice] = []

    def visit(node: Mapping[str, Any], parent: str | None) -> None:
        mountpoint = node.get("mountpoint")
        if mountpoint is None and node.get("mountpoints"):
            mountpoint = next((m for m in node["mountpoints"] if m), None)
        out.append(BlockDevice(str(node["name"]), _size_bytes(node.get("size")), str(node.get("type", "")),
                               node.get("fstype") or None, mountpoint or None, node.get("uuid") or None,
                               node.get("serial") or None, parent))
        for child in node.get("children", []):
            visit(child, str(node["name"]))

    for device in _load_json(text, "lsblk").get("blockdevices", []):
        visit(device, None)
    return out


def parse_findmnt_json(text: str) -> list[Mount]:
    """``findmnt -J [...]`` -> every mount of the tree, flattened; no output (exit 1) -> []."""
    out: list[Mount] = []

    def visit(node: Mapping[str, Any]) -> None:
        out.append(Mount(str(node.get("target", "")), str(node.get("source", "")), str(node.get("fstype", "")),
                         str(node.get("options", ""))))
        for child in node.get("children", []):
            visit(child)

    for filesystem in _load_json(text, "findmnt").get("filesystems", []):
        visit(filesystem)
    return out


_BLKID_TAG = re.compile(r'([A-Z_]+)="((?:[^"\\]|\\.)*)"')


def parse_blkid(text: str) -> dict[str, dict[str, str]]:
    """``blkid`` (full format) or ``blkid -o export`` -> device path -> tags (UUID, TYPE, ...)."""
    devices: dict[str, dict[str, str]] = {}
    if "DEVNAME=" in text:
        for block in re.split(r"\n\s*\n", text.strip()):
            tags = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
            if "DEVNAME" in tags:
                devices[tags.pop("DEVNAME")] = tags
        return devices
    for line in text.splitlines():
        device, sep, rest = line.partition(":")
        if sep:
            devices[device.strip()] = dict(_BLKID_TAG.findall(rest))
    return devices


def parse_df_bytes(text: str) -> list[FilesystemUsage]:
    """``df -B1`` -> usage per mounted filesystem (the header line is skipped)."""
    out = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 6 and fields[1].isdigit():
            out.append(FilesystemUsage(fields[0], int(fields[1]), int(fields[2]), int(fields[3]),
                                       " ".join(fields[5:])))
    return out


def parse_os_release(text: str) -> dict[str, str]:
    """/etc/os-release -> {"ID": "tencentos", "VERSION_ID": "3.1", ...} with quotes removed."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip().strip('"') for key, value in pairs}


# -- R-ADD-3: do a disk's first and last MiB read as zeros? (issue 14 item 4) ---------------------------

ZERO_CHECK_BYTES = 1024**2
ZERO_CHECK_MARK = "tkeflow-zero-check"
BY_ID_PREFIX = "/dev/disk/by-id/virtio-"  # udev's name for a virtio disk by its serial: the cloud disk ID
VIRTIO_SERIAL_MAX = 20  # virtio-blk serials are cut to 20 characters
_ZERO_LINE = re.compile(rf"^{ZERO_CHECK_MARK} (\S+) (\d+) (zeros|data)$", re.MULTILINE)


def disk_by_id(disk_id: str) -> str:
    """The device path of a cloud disk by identity (never /dev/vdX, which can change between boots)."""
    return BY_ID_PREFIX + disk_id[:VIRTIO_SERIAL_MAX]


def zero_check_command(disk_id: str, size_bytes: int) -> str:
    """One line that prints ``tkeflow-zero-check DISK SIZE zeros|data`` for the disk with that ID.

    GNU cmp against /dev/zero on the first MiB, then on the last (``-i`` skips to it, from the size
    the cloud reports; the parser accepts the answer only when lsblk shows that same size).
    """
    path = shlex.quote(disk_by_id(disk_id))
    last = max(0, size_bytes - ZERO_CHECK_BYTES)
    said = f"echo {ZERO_CHECK_MARK} {shlex.quote(disk_id)} {size_bytes}"
    return (f"cmp -s -n {ZERO_CHECK_BYTES} {path} /dev/zero && "
            f"cmp -s -n {ZERO_CHECK_BYTES} -i {last}:0 {path} /dev/zero && {said} zeros || {said} data")


def parse_zero_checks(text: str) -> dict[str, tuple[int, bool]]:
    """zero_check_command's lines -> disk ID -> (size the check assumed, both MiB read as zeros)."""
    return {m.group(1): (int(m.group(2)), m.group(3) == "zeros") for m in _ZERO_LINE.finditer(text)}
