"""Helpers for the twin SSH tests: CVMs built directly from twin/world/hosts.py (the default
world's ExistingHosts demo hosts), and a paramiko client that pins host keys (RejectPolicy)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path

import paramiko

from twin.world.hosts import Cvm, Disk

ROOT = Path(__file__).resolve().parents[3]
DEMO_KEY = ROOT / "configs" / "twin" / "keys" / "demo_ed25519"
DEMO_KEY_ID = "skey-demo0001"


def make_cvm(instance_id: str, ip: str, data_disks: list[Disk] | None = None, **fields: object) -> Cvm:
    base: dict[str, object] = dict(
        name=instance_id, region="ap-guangzhou", zone="ap-guangzhou-3", vpc_id="vpc-gzdemo01",
        subnet_id="subnet-gz3app01", private_ip=ip, instance_type="S5.LARGE8", cpu=4, memory_gib=8,
        key_ids=[DEMO_KEY_ID], security_group_ids=["sg-gzdemo01"],
        system_disk=Disk(f"disk-sys-{instance_id}", "/dev/vda", "system", "CLOUD_PREMIUM", 50),
        data_disks=data_disks or [],
    )
    base.update(fields)
    return Cvm(instance_id=instance_id, **base)  # type: ignore[arg-type]


def demo_hosts() -> list[Cvm]:
    """The ExistingHosts demo CVMs of the default world (team contracts), built by hand."""
    return [
        make_cvm("ins-host0001", "10.0.1.11", [Disk("disk-h1d1", "/dev/vdb", "data", "CLOUD_SSD", 100)]),
        make_cvm("ins-host0002", "10.0.1.12", [Disk(
            "disk-h2d1", "/dev/vdb", "data", "CLOUD_SSD", 200, filesystem="ext4",
            uuid="5d0a2a4c-6a3e-4b51-9a53-0c1f5e2f7a11", mountpoint="/data", used_gb=35.0, holds_data=True)],
            services={"kubelet": "inactive", "containerd": "active", "sshd": "active"}),
        make_cvm("ins-host0003", "10.0.1.13"),
        make_cvm("ins-host0004", "10.0.1.14", [Disk("disk-h4d1", "/dev/vdb", "data", "CLOUD_SSD", 100),
                                              Disk("disk-h4d2", "/dev/vdc", "data", "CLOUD_SSD", 100)]),
        make_cvm("ins-gpu00001", "10.0.1.21", instance_type="GN7.2XLARGE32", cpu=8, memory_gib=32, gpus=1,
                 gpu_type="Tesla T4"),
        make_cvm("ins-other001", "10.1.1.11", vpc_id="vpc-gzpeer01", subnet_id="subnet-gz3peer1"),
    ]


def known_client(entry: dict[str, object], key: dict[str, object] | None = None) -> paramiko.SSHClient:
    """A paramiko client with RejectPolicy that knows ``entry``'s host key (or ``key``'s)."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    key_type, key_b64 = str((key or entry)["host_key"]).split()
    client.get_host_keys().add(f"[127.0.0.1]:{entry['port']}", key_type,
                               paramiko.PKey.from_type_string(key_type, base64.b64decode(key_b64)))
    return client


def connect(entry: dict[str, object], key_file: Path = DEMO_KEY, user: str = "root",
            known: dict[str, object] | None = None) -> paramiko.SSHClient:
    client = known_client(entry, known)
    client.connect("127.0.0.1", int(entry["port"]), username=user, key_filename=str(key_file),  # type: ignore[arg-type]
                   allow_agent=False, look_for_keys=False, timeout=10)
    return client


def execute(client: paramiko.SSHClient, command: str) -> tuple[int, str, str]:
    _, stdout, stderr = client.exec_command(command, timeout=10)
    out, err = stdout.read().decode(), stderr.read().decode()
    return stdout.channel.recv_exit_status(), out, err


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition (never a fixed sleep); fail with the condition's name after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition {condition.__name__} not met within {timeout}s")
        time.sleep(0.01)
