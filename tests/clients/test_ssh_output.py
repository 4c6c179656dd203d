"""tkeflow.clients.ssh_output: what lsblk, blkid, findmnt, df and /etc/os-release print, parsed.

Pure text in, frozen dataclasses out: both util-linux 2.32 (TencentOS 3 / CentOS 8) and 2.37 output;
output that is not the tool's is a PermanentError. The same parsers on the twin's hosts are in
test_ssh.py and tests/twin/ssh/test_ssh_commands.py.
"""

from __future__ import annotations

import pytest

from tkeflow import errors
from tkeflow.clients import ssh_output

LSBLK_2_32 = """{
   "blockdevices": [
      {"name": "vda", "size": "53687091200", "type": "disk", "fstype": null, "mountpoint": null, "uuid": null,
         "children": [
            {"name": "vda1", "size": "53686042624", "type": "part", "fstype": "ext4", "mountpoint": "/",
             "uuid": "4b499d76-769a-40a0-93dc-4a31a59add28"}
         ]
      },
      {"name": "vdb", "size": "107374182400", "type": "disk", "fstype": null, "mountpoint": null, "uuid": null}
   ]
}"""


def test_parse_lsblk_reads_util_linux_2_32_strings_and_human_sizes() -> None:
    devices = ssh_output.parse_lsblk_json(LSBLK_2_32)
    assert devices[1] == ssh_output.BlockDevice("vda1", 53686042624, "part", "ext4", "/",
                                                "4b499d76-769a-40a0-93dc-4a31a59add28", None, "vda")
    assert devices[2] == ssh_output.BlockDevice("vdb", 107374182400, "disk", None, None, None)
    human = ssh_output.parse_lsblk_json('{"blockdevices": [{"name": "vdb", "size": "931.5G", "type": "disk", '
                                        '"mountpoints": [null, "/data"]}]}')
    assert human[0].size_bytes == int(931.5 * 1024**3) and human[0].mountpoint == "/data"
    with pytest.raises(errors.PermanentError):
        ssh_output.parse_lsblk_json("lsblk: unknown column")


def test_parse_blkid_full_and_export_formats() -> None:
    full = ('/dev/vda1: UUID="4b49" BLOCK_SIZE="4096" TYPE="ext4" PARTUUID="a1b2-01"\n'
            '/dev/vdb: UUID="9f3c" TYPE="xfs"\n')
    assert ssh_output.parse_blkid(full) == {"/dev/vda1": {"UUID": "4b49", "BLOCK_SIZE": "4096", "TYPE": "ext4",
                                                          "PARTUUID": "a1b2-01"},
                                            "/dev/vdb": {"UUID": "9f3c", "TYPE": "xfs"}}
    export = "DEVNAME=/dev/vdb\nUUID=9f3c\nTYPE=xfs\n\nDEVNAME=/dev/vdc\nTYPE=ext4\n"
    assert ssh_output.parse_blkid(export) == {"/dev/vdb": {"UUID": "9f3c", "TYPE": "xfs"},
                                              "/dev/vdc": {"TYPE": "ext4"}}
    assert ssh_output.parse_blkid("") == {}


def test_parse_findmnt_df_and_os_release() -> None:
    assert ssh_output.parse_findmnt_json("") == []
    df = ("Filesystem      1B-blocks        Used   Available Use% Mounted on\n"
          "/dev/vdb     214748364800 37580963840 166429982720  19% /data dir\n")
    assert ssh_output.parse_df_bytes(df) == [ssh_output.FilesystemUsage("/dev/vdb", 214748364800, 37580963840,
                                                                        166429982720, "/data dir")]
    assert ssh_output.parse_os_release('# c\nID="tencentos"\nVERSION_ID="3.1"\n') == {"ID": "tencentos",
                                                                                        "VERSION_ID": "3.1"}
