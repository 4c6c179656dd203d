"""The probe and command forms the twin's kubelet understands (twin/kube/controllers/commands.py)."""

from __future__ import annotations

import pytest

from twin.kube.controllers.commands import Probe, behaviour


@pytest.mark.parametrize(("container", "probe"), [
    ({"command": ["nc", "-z", "-w", "2", "10.0.0.1", "80"]}, Probe("nc", "10.0.0.1", 80)),
    ({"command": ["nc", "-zv", "-w2", "web.nsa", "6379"]}, Probe("nc", "web.nsa", 6379)),
    ({"command": ["nc", "-vzu", "-w", "1", "1.2.3.4", "53"]}, Probe("nc", "1.2.3.4", 53, "UDP")),
    ({"args": ["nc", "-z", "1.1.1.1", "443"]}, Probe("nc", "1.1.1.1", 443)),
    ({"command": ["wget", "-T", "2", "-q", "-O-", "http://1.2.3.4:8080/x"]}, Probe("wget", "1.2.3.4", 8080)),
    ({"command": ["wget", "--spider", "-q", "http://web"]}, Probe("wget", "web", 80)),
    ({"command": ["curl", "-s", "-m", "2", "-o", "/dev/null", "https://api.example"]}, Probe("curl", "api.example", 443)),
    ({"command": ["ping", "-c", "1", "-W", "2", "192.168.10.10"]}, Probe("ping", "192.168.10.10", 0, "ICMP")),
    ({"command": ["/agnhost", "connect", "10.0.0.9:6379", "--timeout=2s"]}, Probe("agnhost", "10.0.0.9", 6379)),
    ({"command": ["/bin/sh", "-c", "busybox nc -z -w 2 10.1.1.1 22"]}, Probe("nc", "10.1.1.1", 22)),
])
def test_probe_forms(container: dict, probe: Probe) -> None:
    found = behaviour(container)
    assert found.kind == "exits" and found.probes == (probe,)


@pytest.mark.parametrize(("script", "code"), [
    ("false || echo ok", 0), ("false; echo", 0), ("false", 1), ("true && exit 3", 3),
    ("false && exit 3", 1), ("exit 0; false", 0), ("nc -z 10.9.9.9 80 || exit 2", 2),
    ("nc -z 10.9.9.9 80 && echo reachable", 1),
])
def test_shell_exit_status_with_unreachable_probes(script: str, code: int) -> None:
    assert behaviour({"command": ["sh", "-c", script]}).exit_code(lambda probe: False) == code


@pytest.mark.parametrize("container", [
    {}, {"args": ["--port=8080"]}, {"command": ["sleep", "infinity"]}, {"command": ["tail", "-f", "/dev/null"]},
    {"command": ["sh", "-c", "while true; do echo hi; sleep 1; done"]},
])
def test_servers_and_sleepers_run_forever(container: dict) -> None:
    assert behaviour(container).kind == "forever"


def test_a_probe_in_a_loop_is_a_long_running_probe() -> None:
    found = behaviour({"command": ["sh", "-c", "while true; do nc -z -w 2 10.0.0.1 6379; sleep 5; done"]})
    assert found.kind == "probe-loop" and found.probes == (Probe("nc", "10.0.0.1", 6379),)


def test_sleep_adds_to_the_run_time() -> None:
    found = behaviour({"command": ["sh", "-c", "sleep 2 && nc -z 10.0.0.1 80"]})
    assert found.seconds == 2 and found.exit_code(lambda probe: True) == 0
