"""The commands a twin CVM answers (issue 4, SSH hosts), run through the twin's shell directly.

Every output goes through the parser a real tool's output would (json.loads, the client's parsers)
and must reflect the Cvm it came from; R-ADD-3 inspection (disks, filesystems, mounts, used space)
is what the add-existing-hosts flow reads from these.
"""

from __future__ import annotations

import json
import re

import pytest
from tests.twin.ssh.ssh_twin_helpers import demo_hosts, make_cvm

from tkeflow.clients import ssh_output
from twin.ssh.commands import Context
from twin.ssh.shell import run_command_line
from twin.world.hosts import Cvm, Disk

GIB = 1024**3


def host(instance_id: str) -> Cvm:
    return next(c for c in demo_hosts() if c.instance_id == instance_id)


def run(cvm: Cvm, line: str, reachable: set[str] = frozenset()):  # type: ignore[assignment]
    return run_command_line(line, Context(cvm, lambda ip: ip in reachable))


def test_lsblk_json_shows_data_disks_whole_and_unpartitioned_r_add_3() -> None:
    result = run(host("ins-host0004"), "lsblk -J")
    assert result.exit_status == 0
    devices = json.loads(result.stdout)["blockdevices"]
    assert [d["name"] for d in devices] == ["vda", "vdb", "vdc"]
    assert devices[0]["children"][0] == {"name": "vda1", "maj:min": "253:1", "rm": False, "size": "50G",
                                         "ro": False, "type": "part", "mountpoints": ["/"]}
    for data in devices[1:]:
        assert data["type"] == "disk" and data["size"] == "100G" and "children" not in data
        assert data["mountpoints"] == [None]


def test_lsblk_bytes_and_columns_are_honoured() -> None:
    result = run(host("ins-host0002"), "lsblk -J -b -o NAME,SIZE,TYPE,FSTYPE,MOUNTPOINT,UUID")
    devices = json.loads(result.stdout)["blockdevices"]
    vdb = devices[1]
    assert vdb == {"name": "vdb", "size": 200 * GIB, "type": "disk", "fstype": "ext4", "mountpoint": "/data",
                   "uuid": "5d0a2a4c-6a3e-4b51-9a53-0c1f5e2f7a11"}
    parsed = ssh_output.parse_lsblk_json(result.stdout)
    assert [(d.name, d.parent) for d in parsed] == [("vda", None), ("vda1", "vda"), ("vdb", None)]


def test_lsblk_serial_is_the_cloud_disk_id_and_errors_are_real() -> None:
    cvm = host("ins-host0001")
    devices = json.loads(run(cvm, "lsblk -J -d -o NAME,SERIAL").stdout)["blockdevices"]
    assert devices == [{"name": "vda", "serial": "disk-sys-ins-host0001"}, {"name": "vdb", "serial": "disk-h1d1"}]
    assert run(cvm, "lsblk -o NAME,BOGUS").exit_status == 1
    missing = run(cvm, "lsblk /dev/vdz")
    assert missing.exit_status == 32 and "not a block device" in missing.stderr
    assert run(cvm, "lsblk -n -o NAME,SIZE /dev/vdb").stdout == "vdb 100G\n"


def test_a_formatted_disk_shows_its_new_filesystem_and_mountpoint_everywhere() -> None:
    cvm = host("ins-host0001")
    assert run(cvm, "blkid /dev/vdb").exit_status == 2  # never formatted: blkid finds nothing
    cvm.data_disks[0].format("ext4", "0a1b2c3d-0000-4000-8000-000000000001", "/var/lib/docker")
    lsblk = ssh_output.parse_lsblk_json(run(cvm, "lsblk -J -b -o NAME,SIZE,TYPE,FSTYPE,MOUNTPOINT,UUID").stdout)
    vdb = next(d for d in lsblk if d.name == "vdb")
    assert (vdb.fstype, vdb.mountpoint, vdb.uuid) == ("ext4", "/var/lib/docker", "0a1b2c3d-0000-4000-8000-000000000001")
    mounts = ssh_output.parse_findmnt_json(run(cvm, "findmnt -J --target /var/lib/docker/overlay2").stdout)
    assert mounts == [ssh_output.Mount("/var/lib/docker", "/dev/vdb", "ext4", "rw,relatime")]
    tags = ssh_output.parse_blkid(run(cvm, "blkid -o export /dev/vdb").stdout)
    assert tags == {"/dev/vdb": {"UUID": "0a1b2c3d-0000-4000-8000-000000000001", "BLOCK_SIZE": "4096", "TYPE": "ext4"}}


def test_blkid_lists_only_devices_with_a_filesystem() -> None:
    result = run(host("ins-host0002"), "blkid")
    assert result.exit_status == 0
    parsed = ssh_output.parse_blkid(result.stdout)
    assert set(parsed) == {"/dev/vda1", "/dev/vdb"}
    assert parsed["/dev/vdb"]["TYPE"] == "ext4"
    assert run(host("ins-host0002"), "blkid -o value -s TYPE /dev/vdb").stdout == "ext4\n"


def test_findmnt_tree_and_filters() -> None:
    cvm = host("ins-host0002")
    tree = json.loads(run(cvm, "findmnt -J").stdout)["filesystems"]
    assert len(tree) == 1 and tree[0]["target"] == "/" and tree[0]["source"] == "/dev/vda1"
    flat = ssh_output.parse_findmnt_json(run(cvm, "findmnt -J").stdout)
    assert ssh_output.Mount("/data", "/dev/vdb", "ext4", "rw,relatime") in flat
    assert [m.target for m in ssh_output.parse_findmnt_json(run(cvm, "findmnt -J /data").stdout)] == ["/data"]
    not_mounted = run(cvm, "findmnt -J /var/lib/docker")
    assert (not_mounted.exit_status, not_mounted.stdout) == (1, "")
    on_root = ssh_output.parse_findmnt_json(run(cvm, "findmnt -J --target /var/lib/docker").stdout)
    assert [(m.target, m.source) for m in on_root] == [("/", "/dev/vda1")]
    assert run(cvm, "findmnt -n -o SOURCE --target /data").stdout.strip() == "/dev/vdb"


def test_df_reports_used_space_from_the_world() -> None:
    cvm = host("ins-host0002")
    usage = {u.target: u for u in ssh_output.parse_df_bytes(run(cvm, "df -B1").stdout)}
    data = usage["/data"]
    assert (data.source, data.size_bytes, data.used_bytes) == ("/dev/vdb", 200 * GIB, 35 * GIB)
    assert data.available_bytes == 200 * GIB - 35 * GIB - 200 * GIB // 20  # ext4 keeps 5% for root
    human = run(cvm, "df -h /data").stdout.splitlines()
    assert human[0].split() == ["Filesystem", "Size", "Used", "Avail", "Use%", "Mounted", "on"]
    assert human[1].split() == ["/dev/vdb", "200G", "35G", "155G", "19%", "/data"]


def test_systemctl_is_active_follows_services() -> None:
    cvm = host("ins-host0002")
    assert run(cvm, "systemctl is-active containerd") == run(cvm, "systemctl is-active containerd.service")
    assert run(cvm, "systemctl is-active containerd").stdout == "active\n"
    assert run(cvm, "systemctl is-active containerd").exit_status == 0
    inactive = run(cvm, "systemctl is-active kubelet containerd")
    assert (inactive.exit_status, inactive.stdout) == (3, "inactive\nactive\n")
    assert run(cvm, "systemctl is-active --quiet nothere").stdout == ""
    cvm.services["kubelet"] = "failed"
    assert run(cvm, "systemctl is-active kubelet").stdout == "failed\n"


@pytest.mark.parametrize(("os_name", "os_id", "version"), [
    ("TencentOS Server 3.1 (TK4)", "tencentos", "3.1"),
    ("CentOS 7.9 64位", "centos", "7"),
    ("Ubuntu Server 22.04 LTS 64位", "ubuntu", "22.04"),
])
def test_os_release_forms(os_name: str, os_id: str, version: str) -> None:
    """R-GPU-2: a host's OS (the image the cloud records) as pre-flight reads it from /etc/os-release."""
    cvm = make_cvm("ins-os000001", "10.0.1.50", os_name=os_name)
    fields = ssh_output.parse_os_release(run(cvm, "cat /etc/os-release").stdout)
    assert (fields["ID"], fields["VERSION_ID"]) == (os_id, version)
    assert run(cvm, "cat /etc/nothere").exit_status == 1


def test_ping_follows_reachability_r_net_3() -> None:
    cvm = host("ins-host0001")
    ok = run(cvm, "ping -c 3 -W 1 10.0.1.12", reachable={"10.0.1.12"})
    assert ok.exit_status == 0
    assert "3 packets transmitted, 3 received, 0% packet loss" in ok.stdout
    assert len(re.findall(r"^64 bytes from 10\.0\.1\.12: icmp_seq=\d ttl=64 time=[\d.]+ ms$", ok.stdout, re.M)) == 3
    assert re.search(r"^rtt min/avg/max/mdev = [\d.]+/[\d.]+/[\d.]+/[\d.]+ ms$", ok.stdout, re.M)
    lost = run(cvm, "ping -c 2 -W 1 192.168.10.10")
    assert lost.exit_status == 1 and "2 packets transmitted, 0 received, 100% packet loss" in lost.stdout
    assert run(cvm, "ping -c 1 no.such.host").exit_status == 2


def test_nvidia_smi_exists_only_on_gpu_hosts_r_gpu_5() -> None:
    gpu = run(host("ins-gpu00001"), "nvidia-smi -L")
    assert gpu.exit_status == 0
    assert re.fullmatch(r"GPU 0: Tesla T4 \(UUID: GPU-[0-9a-f-]{36}\)\n", gpu.stdout)
    assert gpu == run(host("ins-gpu00001"), "nvidia-smi -L")  # stable UUIDs
    assert run(host("ins-host0001"), "nvidia-smi -L") == run(host("ins-host0001"), "nvidia-smi")
    absent = run(host("ins-host0001"), "nvidia-smi -L")
    assert (absent.exit_status, absent.stderr) == (127, "bash: nvidia-smi: command not found\n")


def test_iptables_save_hostname_uname() -> None:
    cvm = host("ins-host0001")
    rules = run(cvm, "iptables-save").stdout
    assert rules.startswith("# Generated by iptables-save") and "*filter\n" in rules and "COMMIT\n" in rules
    assert "*nat" not in rules
    cvm.cluster_id = "cls-demo0001"
    assert "-j KUBE-SERVICES" in run(cvm, "iptables-save").stdout
    assert run(cvm, "hostname").stdout == "VM-1-11-tencentos\n"
    assert run(cvm, "uname -r").stdout == "5.4.119-19.0009.44\n"


def test_unknown_commands_exit_127_and_shell_features_are_refused() -> None:
    cvm = host("ins-host0001")
    unknown = run(cvm, "mkfs.ext4 /dev/vdb")
    assert (unknown.exit_status, unknown.stderr) == (127, "bash: mkfs.ext4: command not found\n")
    assert run(cvm, "lsblk | grep vdb").exit_status == 2
    assert run(cvm, "echo $HOME").exit_status == 2
    assert run(cvm, "sudo hostname").stdout == "VM-1-11-tencentos\n"
    stopped = run(cvm, "systemctl is-active kubelet && hostname")
    assert (stopped.exit_status, stopped.stdout) == (3, "inactive\n")
    assert run(cvm, "systemctl is-active kubelet || hostname").stdout == "inactive\nVM-1-11-tencentos\n"
    assert run(cvm, "hostname; uname -r").stdout == "VM-1-11-tencentos\n5.4.119-19.0009.44\n"


def test_system_disk_facts_come_from_the_disk_when_the_world_records_them() -> None:
    cvm = make_cvm("ins-sys00001", "10.0.1.60", system_disk=Disk(
        "disk-sys", "/dev/vda", "system", "CLOUD_PREMIUM", 100, filesystem="xfs", uuid="aaaaaaaa-0000-4000-8000-000000000000",
        mountpoint="/", used_gb=4.0))
    lsblk = run(cvm, "lsblk -J -b -o NAME,SIZE,TYPE,FSTYPE,MOUNTPOINT,UUID").stdout
    root = next(d for d in ssh_output.parse_lsblk_json(lsblk) if d.name == "vda1")
    assert (root.fstype, root.uuid, root.mountpoint) == ("xfs", "aaaaaaaa-0000-4000-8000-000000000000", "/")
    usage = {u.target: u for u in ssh_output.parse_df_bytes(run(cvm, "df -B1").stdout)}
    assert usage["/"].used_bytes == 4 * GIB


def _zero_check(cvm: Cvm, disk: Disk) -> dict[str, tuple[int, bool]]:
    result = run(cvm, ssh_output.zero_check_command(disk.disk_id, disk.size_gb * GIB))
    assert result.exit_status == 0 and result.stderr == ""
    return ssh_output.parse_zero_checks(result.stdout)


@pytest.mark.parametrize(("disk", "zeros"), [
    (Disk("disk-empty001", "/dev/vdb", "data", "CLOUD_SSD", 100), True),
    (Disk("disk-rawdb001", "/dev/vdb", "data", "CLOUD_SSD", 100, holds_data=True), False),  # a raw database
    (Disk("disk-raid0001", "/dev/vdb", "data", "CLOUD_SSD", 100, holds_data=True, data_at_end_only=True), False),
    (Disk("disk-fs000001", "/dev/vdb", "data", "CLOUD_SSD", 100, filesystem="xfs", uuid="u"), False),
])
def test_cmp_reads_first_and_last_mib_by_disk_id_r_add_3(disk: Disk, zeros: bool) -> None:
    """Issue 14 item 4: the twin answers the commands that read a disk's ends, addressed by its ID."""
    cvm = make_cvm("ins-zero0001", "10.0.1.50", [disk])
    assert _zero_check(cvm, disk) == {disk.disk_id: (100 * GIB, zeros)}


def test_cmp_first_mib_alone_misses_data_at_the_end() -> None:
    disk = Disk("disk-raid0001", "/dev/vdb", "data", "CLOUD_SSD", 100, holds_data=True, data_at_end_only=True)
    cvm = make_cvm("ins-zero0001", "10.0.1.50", [disk])
    assert run(cvm, "cmp -s -n 1048576 /dev/disk/by-id/virtio-disk-raid0001 /dev/zero").exit_status == 0
    last = run(cvm, f"cmp -n 1048576 -i {100 * GIB - 1048576}:0 /dev/vdb /dev/zero")
    assert last.exit_status == 1 and "differ" in last.stdout


def test_cmp_errors_are_real() -> None:
    cvm = host("ins-host0001")
    missing = run(cvm, "cmp -s -n 1048576 /dev/disk/by-id/virtio-disk-nothere /dev/zero")
    assert missing.exit_status == 2 and "No such file" in missing.stderr
    past_end = run(cvm, f"cmp -s -n 1048576 -i {100 * GIB}:0 /dev/vdb /dev/zero")
    assert past_end.exit_status == 1
    assert run(cvm, "cmp -s -n 1048576 /dev/vda /dev/zero").exit_status == 1  # a system disk is never zeros
    assert run(cvm, "echo a b && echo -n c").stdout == "a b\nc"
