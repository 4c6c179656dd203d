"""tkeflow.clients.ssh against the twin's SSH hosts (issue 2 "ssh", issue 4 "SSH hosts", issue 6).

Host keys are always checked (RejectPolicy): a changed key is a PermanentError naming the host,
an unknown one too. Errors are tkeflow's own (TransientError to retry, PermanentError to fix),
chained from paramiko's, and carry no key material. run_many fans out in bounded waves. The output
parsers alone are in test_ssh_output.py.
"""

from __future__ import annotations

import inspect
import json
import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.twin.ssh.ssh_twin_helpers import DEMO_KEY, DEMO_KEY_ID, demo_hosts, make_cvm
from tkeflow import errors
from tkeflow.clients import ssh, ssh_output
from twin.ssh import SshFleet, derive_host_key, host_key_line
from twin.world.hosts import Cvm

DEMO_PUB = DEMO_KEY.with_suffix(".pub").read_text().strip()


@pytest.fixture
def hosts() -> list[Cvm]:
    return demo_hosts()


@pytest.fixture
def fleet(hosts: list[Cvm]) -> Iterator[SshFleet]:
    with SshFleet(hosts, seed="client-tests", keys={DEMO_KEY_ID: DEMO_PUB}) as running:
        yield running


@pytest.fixture
def client(fleet: SshFleet) -> Iterator[ssh.SshClient]:
    with ssh.SshClient(DEMO_KEY, twin_map=fleet.mapping(), connect_timeout_s=5, command_timeout_s=5) as c:
        yield c


def _write_key(path: Path, private: object, passphrase: bytes | None = None) -> str:
    """Write an OpenSSH private key file; returns its public line."""
    encryption = (serialization.PrivateFormat.OpenSSH.encryption_builder().kdf_rounds(2).build(passphrase)
                  if passphrase else serialization.NoEncryption())  # few bcrypt rounds: a fast test
    path.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,  # type: ignore[attr-defined]
                                           encryption))
    return private.public_key().public_bytes(serialization.Encoding.OpenSSH,  # type: ignore[attr-defined]
                                             serialization.PublicFormat.OpenSSH).decode()


def test_run_returns_the_command_result_and_reuses_the_connection(client: ssh.SshClient, fleet: SshFleet) -> None:
    result = client.run("10.0.1.12", "lsblk -J -b -o NAME,SIZE,TYPE,FSTYPE,MOUNTPOINT,UUID")
    assert result.ok and result.stderr == ""
    vdb = next(d for d in ssh_output.parse_lsblk_json(result.stdout) if d.name == "vdb")
    assert (vdb.size_bytes, vdb.fstype, vdb.mountpoint, vdb.path) == (200 * 1024**3, "ext4", "/data", "/dev/vdb")
    assert client.run("10.0.1.12", "systemctl is-active kubelet") == ssh.CommandResult(3, "inactive\n", "")
    assert client.run("10.0.1.12", "no-such-tool").exit_status == 127
    assert fleet.connections("ins-host0002") == 1


def test_a_formatted_disk_is_seen_on_the_next_command_r_add_3(client: ssh.SshClient, hosts: list[Cvm]) -> None:
    assert ssh_output.parse_blkid(client.run("10.0.1.11", "blkid").stdout).get("/dev/vdb") is None
    hosts[0].data_disks[0].format("ext4", "11111111-2222-4333-8444-555555555555", "/var/lib/docker")
    mounts = ssh_output.parse_findmnt_json(client.run("10.0.1.11", "findmnt -J --target /var/lib/docker").stdout)
    assert mounts == [ssh_output.Mount("/var/lib/docker", "/dev/vdb", "ext4", "rw,relatime")]
    assert ssh_output.parse_blkid(client.run("10.0.1.11", "blkid").stdout)["/dev/vdb"]["TYPE"] == "ext4"


def test_a_changed_host_key_is_permanent_and_names_the_host(hosts: list[Cvm]) -> None:
    with SshFleet(hosts, seed="before-reinstall", keys={DEMO_KEY_ID: DEMO_PUB}) as before:
        pinned = before.mapping()
    with SshFleet(hosts, seed="after-reinstall", keys={DEMO_KEY_ID: DEMO_PUB}) as after:
        now = after.mapping()
        stale = {ip: {**entry, "host_key": pinned[ip]["host_key"]} for ip, entry in now.items()}
        with ssh.SshClient(DEMO_KEY, twin_map=stale) as client, pytest.raises(errors.PermanentError) as caught:
            client.run("10.0.1.11", "hostname")
    message = str(caught.value)
    assert "10.0.1.11 (ins-host0001)" in message and "host key CHANGED" in message and "known_hosts" in message
    assert caught.value.code == "HostKeyChanged"
    assert isinstance(caught.value.__cause__, paramiko.BadHostKeyException)
    for key in (pinned["10.0.1.11"]["host_key"], now["10.0.1.11"]["host_key"]):
        assert str(key).split()[1] not in message  # fingerprints only, never key material


def test_a_reinstalled_host_s_new_key_is_accepted_logged_and_recorded_only_for_it(
        hosts: list[Cvm], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 14 item 7: a reinstall regenerates host keys; the caller names the hosts it reinstalled,
    and only for those a changed key is accepted (old and new fingerprints logged, new key recorded)."""
    with SshFleet(hosts, seed="s", keys={DEMO_KEY_ID: DEMO_PUB}, rekey_on_reinstall=True) as fleet:
        pinned = fleet.mapping()
        hosts[0].os_install_count += 1  # ins-host0001 (10.0.1.11) and ins-host0002 (10.0.1.12) reinstalled
        hosts[1].os_install_count += 1
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text("10.0.1.11 ssh-ed25519 AAAAold\nother-host ssh-ed25519 AAAAkeep\n")
        with ssh.SshClient(DEMO_KEY, twin_map=pinned) as client:
            client.accept_reinstalled(["10.0.1.11"], record_to=known_hosts)
            with caplog.at_level("WARNING", logger="tkeflow.clients.ssh"):
                assert client.run("10.0.1.11", "hostname").stdout == "VM-1-11-tencentos\n"
                assert client.run("10.0.1.11", "hostname").ok  # the same session, no second acceptance
            with pytest.raises(errors.PermanentError) as caught:  # changed too, but not reinstalled by us
                client.run("10.0.1.12", "hostname")
            assert caught.value.code == "HostKeyChanged"
        new_key = fleet.mapping()["10.0.1.11"]["host_key"]
    old = paramiko.PKey.from_type_string(*_split(pinned["10.0.1.11"]["host_key"]))
    new = paramiko.PKey.from_type_string(*_split(new_key))
    messages = [r.getMessage() for r in caplog.records if "reinstalled" in r.getMessage()]
    assert len(messages) == 1 and old.fingerprint in messages[0] and new.fingerprint in messages[0]
    assert known_hosts.read_text().splitlines() == ["other-host ssh-ed25519 AAAAkeep", f"10.0.1.11 {new_key}"]


def _split(line: object) -> tuple[str, bytes]:
    import base64

    key_type, key_b64 = str(line).split()[:2]
    return key_type, base64.b64decode(key_b64)


def test_real_hosts_use_known_hosts_and_refuse_unknown_keys(fleet: SshFleet, tmp_path: Path) -> None:
    entry = fleet.mapping()["10.0.1.13"]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    real = ssh.SshClient(DEMO_KEY, port=int(entry["port"]), known_hosts_file=known_hosts, twin_endpoint=None)
    with real, pytest.raises(errors.PermanentError, match="host key unknown") as caught:
        real.run("127.0.0.1", "hostname")
    assert caught.value.code == "HostKeyUnknown"
    known_hosts.write_text(f"[127.0.0.1]:{entry['port']} {entry['host_key']}\n")
    with ssh.SshClient(DEMO_KEY, port=int(entry["port"]), known_hosts_file=known_hosts) as trusted:
        assert trusted.run("127.0.0.1", "hostname").stdout == "VM-1-13-tencentos\n"


def test_a_key_not_bound_to_the_instance_fails_authentication_r_crt_9(fleet: SshFleet, tmp_path: Path) -> None:
    key_file = tmp_path / "stranger"
    _write_key(key_file, ed25519.Ed25519PrivateKey.generate())
    with ssh.SshClient(key_file, twin_map=fleet.mapping()) as stranger, pytest.raises(errors.PermanentError) as caught:
        stranger.run("10.0.1.11", "hostname")
    assert caught.value.code == "AuthFailed" and "10.0.1.11" in str(caught.value)
    assert key_file.read_text().splitlines()[1] not in str(caught.value)


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_rsa_and_ecdsa_keys_log_in_and_passphrases_come_from_env(kind: str, hosts: list[Cvm], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    private = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / f"id_{kind}"
    public = _write_key(key_file, private, passphrase=b"open sesame")
    hosts[0].key_ids.append("skey-other001")
    with SshFleet(hosts, seed="s", keys={DEMO_KEY_ID: DEMO_PUB, "skey-other001": public}) as fleet:
        monkeypatch.delenv(ssh.PASSPHRASE_ENV, raising=False)
        with pytest.raises(errors.PermanentError, match=ssh.PASSPHRASE_ENV):
            ssh.SshClient(key_file, twin_map=fleet.mapping())
        monkeypatch.setenv(ssh.PASSPHRASE_ENV, "open sesame")
        with ssh.SshClient(key_file, twin_map=fleet.mapping()) as client:
            assert client.run("10.0.1.11", "hostname").ok


def test_missing_key_file_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(errors.PermanentError, match="does not exist"):
        ssh.SshClient(tmp_path / "nope")


def test_a_stopped_host_is_transient_and_does_not_stop_the_others(client: ssh.SshClient, hosts: list[Cvm],
                                                                   fleet: SshFleet) -> None:
    hosts[1].state = "STOPPED"
    fleet.sync()
    results = client.run_many([c.private_ip for c in hosts], "hostname", concurrency=3)
    assert list(results) == [c.private_ip for c in hosts]
    failed = results["10.0.1.12"]
    assert isinstance(failed, errors.TransientError) and "10.0.1.12" in str(failed)
    assert all(isinstance(r, ssh.CommandResult) and r.ok for ip, r in results.items() if ip != "10.0.1.12")


def test_a_kept_connection_that_died_is_replaced(client: ssh.SshClient, hosts: list[Cvm], fleet: SshFleet) -> None:
    assert client.run("10.0.1.11", "hostname").ok
    hosts[0].state = "STOPPED"
    fleet.sync()  # drops the session, as a reboot does
    hosts[0].state = "RUNNING"
    fleet.sync()
    assert client.run("10.0.1.11", "hostname").ok


def test_a_slow_command_times_out_as_transient(hosts: list[Cvm]) -> None:
    with SshFleet(hosts, seed="s", keys={DEMO_KEY_ID: DEMO_PUB}, command_latency_s=2.0) as fleet, \
            ssh.SshClient(DEMO_KEY, twin_map=fleet.mapping()) as client:
        started = time.monotonic()
        with pytest.raises(errors.TransientError, match="within 0.2s") as caught:
            client.run("10.0.1.11", "hostname", timeout_s=0.2)
        assert time.monotonic() - started < 1.5
        assert caught.value.code == "Timeout" and caught.value.__cause__ is not None


def test_run_many_runs_in_waves_of_the_concurrency() -> None:
    """30 hosts, concurrency 8, latency L: about ceil(30/8) = 4 waves of L, never 1 and never 30."""
    latency = 0.3
    world = [make_cvm(f"ins-fan{i:05d}", f"10.0.5.{i}") for i in range(1, 31)]
    with SshFleet(world, seed="s", keys={DEMO_KEY_ID: DEMO_PUB}, command_latency_s=latency) as fleet, \
            ssh.SshClient(DEMO_KEY, twin_map=fleet.mapping()) as client:
        started = time.monotonic()
        results = client.run_many([c.private_ip for c in world], "findmnt -J", concurrency=8)
        elapsed = time.monotonic() - started
    ideal = math.ceil(30 / 8) * latency
    assert all(isinstance(r, ssh.CommandResult) and r.ok for r in results.values())
    assert ideal * 0.95 <= elapsed < 2 * ideal, f"{elapsed:.2f}s for an ideal of {ideal:.2f}s"


def test_the_twin_map_is_fetched_from_the_endpoint_and_refreshed_for_new_hosts(
        hosts: list[Cvm], monkeypatch: pytest.MonkeyPatch) -> None:
    world = {c.instance_id: c for c in hosts}
    with SshFleet(world, seed="s", keys={DEMO_KEY_ID: DEMO_PUB}) as fleet:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = json.dumps(fleet.mapping()).encode() if self.path == "/_twin/ssh" else b"{}"
                self.send_response(200 if self.path == "/_twin/ssh" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            monkeypatch.setenv(ssh.TWIN_ENDPOINT_ENV, f"127.0.0.1:{server.server_address[1]}")
            monkeypatch.setenv("TKEFLOW_TWIN", "1")  # explicit twin mode (issue 14 item 6)
            with ssh.SshClient(DEMO_KEY) as client:
                assert client.run("10.0.1.21", "nvidia-smi -L").stdout.startswith("GPU 0: Tesla T4")
                world["ins-late0001"] = make_cvm("ins-late0001", "10.0.1.99")
                assert client.run("10.0.1.99", "hostname").stdout == "VM-1-99-tencentos\n"
                with pytest.raises(errors.NotFoundError, match="10.9.9.9"):
                    client.run("10.9.9.9", "hostname")
        finally:
            server.shutdown()
            server.server_close()


def test_an_unreachable_twin_endpoint_is_transient(tmp_path: Path) -> None:
    with ssh.SshClient(DEMO_KEY, twin_endpoint="127.0.0.1:1") as client, pytest.raises(errors.TransientError):
        client.run("10.0.1.11", "hostname")


# -- the error boundary (STYLE.md 4): no paramiko/socket exception leaks out of SshClient ------------

FOREIGN_MODULES = ("paramiko", "socket", "ssl", "urllib", "cryptography")


def _assert_wrapped(outcome: object) -> None:
    assert isinstance(outcome, errors.TkeflowError), f"{type(outcome).__module__}.{type(outcome).__name__} leaked"
    for cls in type(outcome).__mro__:
        assert not cls.__module__.startswith(FOREIGN_MODULES), f"{cls} is a third-party type"
    assert outcome.__cause__ is not None or isinstance(outcome, errors.NotFoundError)


def test_every_failure_of_run_and_run_many_is_a_tkeflow_error(hosts: list[Cvm], tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    _write_key(stranger, ed25519.Ed25519PrivateKey.generate())
    hosts[2].state = "STOPPED"
    with SshFleet(hosts, seed="s", keys={DEMO_KEY_ID: DEMO_PUB}, command_latency_s=1.0) as fleet:
        good = fleet.mapping()
        bad_key = {ip: {**e, "host_key": host_key_line(derive_host_key("other", str(e["instance_id"])))}
                   for ip, e in good.items()}
        cases = [
            (ssh.SshClient(DEMO_KEY, twin_map=bad_key), "10.0.1.11", None),  # changed host key
            (ssh.SshClient(stranger, twin_map=good), "10.0.1.11", None),  # authentication
            (ssh.SshClient(DEMO_KEY, twin_map=good), "10.0.1.13", None),  # refused (stopped CVM)
            (ssh.SshClient(DEMO_KEY, twin_map=good), "10.0.1.11", 0.05),  # command timeout
            (ssh.SshClient(DEMO_KEY, twin_map=good), "10.9.9.9", None),  # unknown host
            (ssh.SshClient(DEMO_KEY, twin_endpoint="127.0.0.1:1"), "10.0.1.11", None),  # no twin map
        ]
        for client, ip, timeout in cases:
            with client:
                with pytest.raises(Exception) as caught:
                    client.run(ip, "hostname", timeout_s=timeout)
                _assert_wrapped(caught.value)
                _assert_wrapped(client.run_many([ip], "hostname", timeout_s=timeout)[ip])
    public = {name for name, _ in inspect.getmembers(ssh.SshClient, inspect.isfunction) if not name.startswith("_")}
    # accept_reinstalled only sets what run/run_many accept (tested on its own, its errors through run)
    assert public == {"run", "run_many", "close", "accept_reinstalled"}, "a new public method needs a case above"


def test_from_spec_takes_the_existing_hosts_ssh_settings(fleet: SshFleet, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    from tkeflow.specs.existing_hosts import SshSettings

    settings = SshSettings(private_key_file=str(DEMO_KEY), connect_timeout_s=3, command_timeout_s=4)
    with ssh.SshClient.from_spec(settings) as client:
        assert (client.user, client.port, client.connect_timeout_s, client.command_timeout_s) == ("root", 22, 3, 4)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/id_* there
    with pytest.raises(errors.PermanentError, match="no SSH private key file given"):
        ssh.SshClient.from_spec(SshSettings())


def test_a_timed_out_command_keeps_the_connection_for_the_next_one(hosts: list[Cvm]) -> None:
    latency = {"s": 1.0}
    with SshFleet(hosts, seed="s", keys={DEMO_KEY_ID: DEMO_PUB}, command_latency_s=lambda: latency["s"]) as fleet, \
            ssh.SshClient(DEMO_KEY, twin_map=fleet.mapping()) as client:
        with pytest.raises(errors.TransientError):
            client.run("10.0.1.11", "hostname", timeout_s=0.1)
        latency["s"] = 0.0
        assert client.run("10.0.1.11", "hostname").ok
        assert fleet.connections("ins-host0001") == 1
