"""``cmp`` and ``echo`` on a twin CVM: what a host answers when a flow reads a disk's bytes.

R-ADD-3 (issue 14 item 4): a disk without a recognised filesystem counts as holding data unless its
first and last MiB read as zeros. The flow reads them with GNU cmp against /dev/zero, addressing the
disk by its udev by-id name, and reports with echo:
``cmp -s -n 1048576 [-i SKIP:0] /dev/disk/by-id/virtio-disk-xxxx /dev/zero && echo ... || echo ...``.
The bytes come from the disk's content model (``Disk.reads_zero`` in twin/world/hosts.py).
Supported: ``cmp [-s] [-n LIMIT] [-i SKIP1[:SKIP2]] FILE1 FILE2`` where one file is /dev/zero and the
other a block device; ``echo [-n] WORDS...``. Not emulated: cmp on regular files, -l/-b output.
"""

from __future__ import annotations

from twin.ssh.commands.base import Context, Result, UsageError, parse_options
from twin.ssh.commands.layout import disk_at

ZERO = "/dev/zero"


def _skips(value: str) -> tuple[int, int]:
    first, _, second = value.partition(":")
    try:
        return int(first), int(second or first)
    except ValueError:
        raise UsageError(f"cmp: invalid --ignore-initial value '{value}'\n", 2) from None


def cmp(ctx: Context, args: list[str]) -> Result:
    try:
        opts, files = parse_options("cmp", args, "sn:i:", ["silent", "quiet", "bytes=", "ignore-initial="])
        silent = any(o in ("-s", "--silent", "--quiet") for o, _ in opts)
        limit = next((int(v) for o, v in opts if o in ("-n", "--bytes")), None)
        skips = next((_skips(v) for o, v in opts if o in ("-i", "--ignore-initial")), (0, 0))
    except UsageError as e:
        return Result(e.status, "", e.message)
    except ValueError:
        return Result(2, "", "cmp: invalid --bytes value\n")
    if len(files) != 2 or ZERO not in files or limit is None:
        return Result(2, "", "twin ssh: cmp is emulated only as cmp -n LIMIT [-i SKIP] DEVICE /dev/zero\n")
    device = files[0] if files[1] == ZERO else files[1]
    offset = skips[0] if files[1] == ZERO else skips[1]
    disk = disk_at(ctx.cvm, device)
    if disk is None:
        return Result(2, "", f"cmp: {device}: No such file or directory\n")
    with ctx.cvm.lock:
        size = disk.size_gb * 1024**3
        if offset + limit > size:
            return Result(1, "", "" if silent else f"cmp: EOF on {device} after byte {max(0, size - offset)}\n")
        same = disk.reads_zero(offset, limit)
    if same:
        return Result(0)
    return Result(1, "" if silent else f"{device} {ZERO} differ: byte {offset + 1}, line 1\n")


def echo(ctx: Context, args: list[str]) -> Result:
    newline = "\n"
    if args and args[0] == "-n":
        args, newline = args[1:], ""
    return Result(0, " ".join(args) + newline)


COMMANDS = {"cmp": cmp, "echo": echo}
