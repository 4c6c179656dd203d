"""SSH on every twin CVM (issue 4): real paramiko clients with RejectPolicy against an SshFleet.

Done-when of issue 4: "paramiko with RejectPolicy logs in with known host keys and refuses a changed
one". Also: key-only login with the CVM's key pair (R-CRT-9, R-ADD-5), host keys stable per (seed,
instance), a stopped CVM refuses connections, the fleet follows the world as CVMs come and go, and
the command latency delays replies without serialising sessions.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.twin.ssh.ssh_twin_helpers import connect, demo_hosts, execute, make_cvm, wait_until
from twin.ssh import SshFleet
from twin.world.hosts import Cvm


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:  # accepted just before the fleet noticed: reset, refused next time
        return False
    return False


def test_mapping_lists_every_cvm_with_address_and_host_key(fleet: SshFleet, hosts: list[Cvm]) -> None:
    mapping = fleet.mapping()
    json.dumps(mapping)  # served as GET /_twin/ssh
    assert set(mapping) == {c.private_ip for c in hosts}
    entry = mapping["10.0.1.11"]
    assert entry["host"] == "127.0.0.1" and entry["instance_id"] == "ins-host0001"
    assert str(entry["host_key"]).startswith("ecdsa-sha2-nistp256 AAAA")
    assert len({e["port"] for e in mapping.values()}) == len(hosts)
    assert len({e["host_key"] for e in mapping.values()}) == len(hosts)


def test_reject_policy_client_logs_in_with_the_known_host_key(fleet: SshFleet) -> None:
    client = connect(fleet.mapping()["10.0.1.12"])
    try:
        status, out, _ = execute(client, "lsblk -J -o NAME,FSTYPE,MOUNTPOINT")
        assert status == 0
        assert {"name": "vdb", "fstype": "ext4", "mountpoint": "/data"} in json.loads(out)["blockdevices"]
    finally:
        client.close()


def test_host_keys_are_stable_per_seed_and_a_changed_one_is_refused(hosts: list[Cvm], demo_keys: dict[str, str]) -> None:
    with SshFleet(hosts, seed="first", keys=demo_keys) as first:
        old = first.mapping()
    with SshFleet(hosts, seed="first", keys=demo_keys) as again:
        assert {ip: e["host_key"] for ip, e in again.mapping().items()} == {ip: e["host_key"] for ip, e in old.items()}
    with SshFleet(hosts, seed="second", keys=demo_keys) as second:
        new = second.mapping()["10.0.1.11"]
        assert new["host_key"] != old["10.0.1.11"]["host_key"]
        with pytest.raises(paramiko.BadHostKeyException):
            connect(new, known=old["10.0.1.11"])


def test_unknown_host_key_is_refused_by_reject_policy(fleet: SshFleet) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    entry = fleet.mapping()["10.0.1.11"]
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        client.connect("127.0.0.1", int(entry["port"]), username="root", allow_agent=False, look_for_keys=False,
                       key_filename=str(Path(__file__).resolve().parents[3] / "configs/twin/keys/demo_ed25519"))


def test_only_the_cvm_key_pair_logs_in_r_crt_9(fleet: SshFleet, tmp_path: Path) -> None:
    other = ed25519.Ed25519PrivateKey.generate()
    key_file = tmp_path / "other_ed25519"
    key_file.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                             serialization.NoEncryption()))
    entry = fleet.mapping()["10.0.1.11"]
    with pytest.raises(paramiko.AuthenticationException):
        connect(entry, key_file=key_file)
    with pytest.raises(paramiko.AuthenticationException):
        connect(entry, user="admin")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # only to reach the auth step
    with pytest.raises(paramiko.AuthenticationException):
        client.connect("127.0.0.1", int(entry["port"]), username="root", password="secret",
                       allow_agent=False, look_for_keys=False)
    client.close()


def test_ubuntu_hosts_log_in_as_ubuntu(demo_keys: dict[str, str]) -> None:
    ubuntu = make_cvm("ins-ubuntu01", "10.0.1.30", os_name="Ubuntu Server 22.04 LTS 64位")
    with SshFleet([ubuntu], seed="s", keys=demo_keys) as fleet:
        entry = fleet.mapping()["10.0.1.30"]
        with pytest.raises(paramiko.AuthenticationException):
            connect(entry, user="root")
        client = connect(entry, user="ubuntu")
        assert execute(client, "hostname")[1] == "VM-1-30-ubuntu\n"
        client.close()


def test_a_stopped_cvm_refuses_connections_and_keeps_its_port(fleet: SshFleet, hosts: list[Cvm]) -> None:
    cvm = hosts[0]
    port = int(fleet.mapping()[cvm.private_ip]["port"])
    client = connect(fleet.mapping()[cvm.private_ip])
    cvm.state = "STOPPED"  # the accept thread notices on its next poll; no sync() call needed
    wait_until(lambda: _refused(port))
    wait_until(lambda: not client.get_transport().is_active())  # type: ignore[union-attr]
    cvm.state = "RUNNING"
    fleet.sync()
    assert fleet.mapping()[cvm.private_ip]["port"] == port
    again = connect(fleet.mapping()[cvm.private_ip])
    assert execute(again, "hostname")[0] == 0
    again.close()
    client.close()


def test_the_fleet_follows_cvms_added_and_removed(hosts: list[Cvm], demo_keys: dict[str, str]) -> None:
    world = {c.instance_id: c for c in hosts}
    with SshFleet(world, seed="s", keys=demo_keys, poll_interval_s=0.05) as fleet:
        world["ins-new00001"] = make_cvm("ins-new00001", "10.0.1.40")
        assert "10.0.1.40" in fleet.mapping()
        port = int(fleet.mapping()["10.0.1.40"]["port"])
        assert execute(connect(fleet.mapping()["10.0.1.40"]), "hostname")[1] == "VM-1-40-tencentos\n"
        del world["ins-new00001"]
        wait_until(lambda: "10.0.1.40" not in fleet.mapping())
        assert _refused(port)


def test_ping_uses_the_reachable_callable(hosts: list[Cvm], demo_keys: dict[str, str]) -> None:
    asked: list[tuple[str, str]] = []

    def reachable(cvm: Cvm, ip: str) -> bool:
        asked.append((cvm.instance_id, ip))
        return ip == "192.168.10.10"

    with SshFleet(hosts, seed="s", reachable=reachable, keys=demo_keys) as fleet:
        client = connect(fleet.mapping()["10.0.1.11"])
        assert execute(client, "ping -c 1 -W 1 192.168.10.10")[0] == 0
        assert execute(client, "ping -c 1 -W 1 10.0.1.12")[0] == 1
        client.close()
    assert asked == [("ins-host0001", "192.168.10.10"), ("ins-host0001", "10.0.1.12")]


def test_default_reachability_is_the_running_hosts_of_the_vpc(fleet: SshFleet, hosts: list[Cvm]) -> None:
    client = connect(fleet.mapping()["10.0.1.11"])
    assert execute(client, "ping -c 1 10.0.1.12")[0] == 0
    assert execute(client, "ping -c 1 10.1.1.11")[0] == 1  # ins-other001 sits in another VPC (R-ADD-1)
    client.close()


def test_command_latency_is_a_timer_not_a_queue(demo_keys: dict[str, str]) -> None:
    """Eight sessions each waiting `latency` finish in about one latency, not eight."""
    latency = 0.4
    hosts = [make_cvm(f"ins-lat{i:05d}", f"10.0.3.{i}") for i in range(1, 9)]
    with SshFleet(hosts, seed="s", keys=demo_keys, command_latency_s=lambda: latency) as fleet:
        clients = [connect(entry) for entry in fleet.mapping().values()]
        results: list[float] = []

        def timed(client: paramiko.SSHClient) -> None:
            start = time.monotonic()
            execute(client, "hostname")
            results.append(time.monotonic() - start)

        started = time.monotonic()
        threads = [threading.Thread(target=timed, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        elapsed = time.monotonic() - started
        for client in clients:
            client.close()
    assert len(results) == 8 and min(results) >= latency * 0.95
    assert elapsed < 2 * latency, f"8 parallel commands took {elapsed:.2f}s with latency {latency}s"


def test_shell_requests_are_refused_and_only_exec_is_served(fleet: SshFleet) -> None:
    client = connect(fleet.mapping()["10.0.1.11"])
    channel = client.get_transport().open_session()  # type: ignore[union-attr]
    with pytest.raises(paramiko.SSHException):
        channel.invoke_shell()
    client.close()


def test_hundreds_of_hosts_cost_one_accept_thread(demo_keys: dict[str, str]) -> None:
    before = threading.active_count()
    many = [make_cvm(f"ins-many{i:04d}", f"10.0.{4 + i // 250}.{i % 250 + 1}") for i in range(150)]
    with SshFleet(many, seed="s", keys=demo_keys) as fleet:
        assert len(fleet.mapping()) == 150
        # one accept thread and the fleet's clock, not a thread per host (other tests' threads may come and go)
        assert threading.active_count() - before < 10
        assert sum(t.name == "twin-ssh-accept" for t in threading.enumerate()) >= 1
        assert execute(connect(fleet.mapping()["10.0.4.150"]), "uname -r")[0] == 0


def test_demo_world_helper_matches_the_contract_ips() -> None:
    assert [c.private_ip for c in demo_hosts()] == ["10.0.1.11", "10.0.1.12", "10.0.1.13", "10.0.1.14",
                                                      "10.0.1.21", "10.1.1.11"]


def test_add_and_remove_serve_cvms_outside_the_world_source(fleet: SshFleet) -> None:
    extra = make_cvm("ins-extra001", "10.0.1.77")
    fleet.add(extra)
    entry = fleet.mapping()["10.0.1.77"]
    assert execute(connect(entry), "hostname")[1] == "VM-1-77-tencentos\n"
    fleet.remove("ins-extra001")
    assert "10.0.1.77" not in fleet.mapping()
    assert _refused(int(entry["port"]))


def test_rekey_on_reinstall_changes_the_host_key_like_a_real_reinstall_r_add_2(hosts: list[Cvm],
                                                                              demo_keys: dict[str, str]) -> None:
    with SshFleet(hosts, seed="s", keys=demo_keys) as fleet:  # on by default, as real TKE (issue 14 item 7)
        before = fleet.mapping()["10.0.1.11"]
        hosts[0].os_install_count += 1  # what the cloud twin does when it reinstalls the OS
        after = fleet.mapping()["10.0.1.11"]
        assert after["host_key"] != before["host_key"] and after["port"] == before["port"]
        with pytest.raises(paramiko.BadHostKeyException):
            connect(after, known=before)
        assert execute(connect(after), "hostname")[0] == 0
    with SshFleet(hosts, seed="s", keys=demo_keys, rekey_on_reinstall=False) as steady:
        assert steady.mapping()["10.0.1.11"]["host_key"] == steady.host_key("ins-host0001")
        kept = steady.mapping()["10.0.1.11"]["host_key"]
        hosts[0].os_install_count += 1
        assert steady.mapping()["10.0.1.11"]["host_key"] == kept  # off: stable across reinstalls
