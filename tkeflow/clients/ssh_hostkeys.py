"""Host keys the SSH client learns during a run: reinstalled hosts' new keys, and the twin's pinned ones.

Who calls it: tkeflow/clients/ssh.py only. Why apart: it is the one place where a key is taken that
was not known before, so it stays small and readable (issue 14 item 7):
- ``AcceptReinstalled``: the paramiko policy for a host the caller reinstalled (a reinstall
  regenerates host keys); it hands the presented key to the client, which logs it against the key
  known before and pins it. Never used for any other host.
- ``record_host_key``: the new key written to the known_hosts file the spec names.
- ``twin_key_seen`` / ``pin_twin_key``: the twin's /_twin/ssh map read like known_hosts, per
  process: a key first seen stays expected until accepted, so a reinstall shows as a change there
  exactly as on a real host.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import paramiko

_record_lock = threading.Lock()
_twin_keys: dict[tuple[str, str], str] = {}  # (twin endpoint, IP) -> "<type> <base64>"
_twin_keys_lock = threading.Lock()


class AcceptReinstalled(paramiko.MissingHostKeyPolicy):
    """For a host the caller reinstalled: hand the presented key to ``accept`` (which pins and logs it)."""

    def __init__(self, accept: Callable[[paramiko.PKey], None]):
        self.accept = accept

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.accept(key)


def record_host_key(path: Path, name: str, key: paramiko.PKey) -> None:
    """Put ``name``'s key in the known_hosts file at ``path``, replacing any line for that name."""
    with _record_lock:
        lines = path.read_text().splitlines() if path.is_file() else []
        kept = [line for line in lines if line.split(" ", 1)[0] != name]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([*kept, f"{name} {key.get_name()} {key.get_base64()}"]) + "\n")


def twin_key_seen(endpoint: str, ip: str, offered: str) -> str:
    """The key this process expects of a twin host: the first one it saw (or accepted), else ``offered``."""
    with _twin_keys_lock:
        return _twin_keys.setdefault((endpoint, ip), offered)


def pin_twin_key(endpoint: str, ip: str, key_line: str) -> None:
    with _twin_keys_lock:
        _twin_keys[(endpoint, ip)] = key_line
