"""tkeflow's SSH client: run a command on one host or fan out over many, host keys always checked.

Who calls it: the tasks of the add-existing-hosts flow (issue 6) inspect every host (lsblk, blkid,
findmnt, df) before the R-ADD-3 data-disk decision and check the mounts after the join;
tkeflow/clients/ssh_output.py turns that output into plain dataclasses.

Why it looks like this:
- Host keys are checked with paramiko's RejectPolicy, never AutoAdd/Warning: an unknown or changed
  host key is a PermanentError that says what to check. Real hosts are looked up in the user's
  known_hosts (``~/.ssh/known_hosts`` by default); on the twin, the ONLY twin-specific setting is
  the address map from ``GET http://$TKEFLOW_TWIN_ENDPOINT/_twin/ssh`` (private IP -> local
  address and host key), read only in explicit twin mode from a loopback twin
  (tkeflow/clients/twin_mode.py); otherwise known_hosts alone decides. The client still connects *as* the private IP, so known-host lookups and
  every message name the host the way a real run does.
- Key authentication only (R-CRT-9 prefers key pairs), from a private key file (Ed25519, RSA or
  ECDSA); an encrypted key's passphrase comes from an environment variable, never a config.
- paramiko and socket errors become TransientError (timeouts, refused/reset connections, EOF) or
  PermanentError (authentication, host keys, key files) at this boundary, chained with
  ``raise ... from e``. Key material never reaches a log or a message (fingerprints only).
- A reinstall regenerates a host's keys (real TKE does; so does the twin). ``accept_reinstalled``
  names the hosts the caller's procedure reinstalled: for those alone a CHANGED key is accepted,
  its old and new fingerprints logged and the new key written to the spec's known_hosts file;
  any other changed key stays a PermanentError (issue 14 item 7).
  On the twin, the keys of its map are pinned per process the first time they are seen (the map
  plays known_hosts), so a reinstall's new key shows as a change exactly as on a real host.
- One connection per host, reused for every command of a session; ``run_many`` runs a bounded
  thread pool in which one host's failure never stops the others.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from tkeflow import errors
from tkeflow.clients import errors as client_errors
from tkeflow.clients import ssh_hostkeys, twin_mode

log = logging.getLogger(__name__)

PASSPHRASE_ENV = "TKEFLOW_SSH_KEY_PASSPHRASE"
TWIN_ENDPOINT_ENV = twin_mode.ENDPOINT_ENV


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class _Address:
    """Where to open the TCP connection for a host, and (twin only) the host key to expect."""

    host: str
    port: int
    host_key: str | None = None  # "<type> <base64>"
    instance_id: str | None = None


class _StaleSession(Exception):
    """A reused connection turned out dead before the command started (internal: triggers a reconnect)."""


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, hostname: str, key: paramiko.PKey):
        super().__init__(f"no known host key for {hostname}")
        self.hostname = hostname
        self.key = key


class _RejectUnknownHost(paramiko.RejectPolicy):
    """RejectPolicy that raises a typed error, so the message can say which key was offered."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise _UnknownHostKey(hostname, key)


class SshClient:
    """SSH sessions to hosts addressed by private IP; use as a context manager or call ``close()``."""

    def __init__(self, private_key_file: str | os.PathLike[str] | None, *, user: str = "root", port: int = 22,
                 connect_timeout_s: float = 10.0, command_timeout_s: float = 60.0,
                 known_hosts_file: str | os.PathLike[str] | None = None,
                 passphrase_env: str = PASSPHRASE_ENV, twin_endpoint: str | None = None,
                 twin_map: Mapping[str, Mapping[str, Any]] | None = None):
        self.user = user
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self._pkey = _load_private_key(_key_path(private_key_file), os.environ.get(passphrase_env))
        self._known_hosts = Path(known_hosts_file or Path.home() / ".ssh" / "known_hosts")
        # The twin's map is trusted for host keys: only from a loopback twin, only in twin mode (twin_mode.py).
        self._twin_endpoint = twin_mode.require_loopback(twin_endpoint) if twin_endpoint else twin_mode.endpoint()
        self._twin: dict[str, _Address] | None = _twin_addresses(twin_map) if twin_map is not None else None
        self._sessions: dict[str, paramiko.SSHClient] = {}
        self._host_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._twin_lock = threading.Lock()  # one fetch of the twin's map, however many threads ask
        self._reinstalled: frozenset[str] = frozenset()
        self._record_to: Path | None = None
        self._accepted: dict[str, paramiko.PKey] = {}  # IP -> the new key of a host reinstalled here

    @classmethod
    def from_spec(cls, ssh: Any, *, twin_endpoint: str | None = None) -> SshClient:
        """From ExistingHostsSpec.ssh (user, private_key_file, port, connect/command timeouts,
        known_hosts_file); its ``concurrency`` is for ``run_many``."""
        return cls(ssh.private_key_file, user=ssh.user, port=ssh.port, connect_timeout_s=ssh.connect_timeout_s,
                   command_timeout_s=ssh.command_timeout_s, twin_endpoint=twin_endpoint,
                   known_hosts_file=getattr(ssh, "known_hosts_file", None))

    def accept_reinstalled(self, ips: Iterable[str], record_to: str | os.PathLike[str] | None = None) -> None:
        """The hosts (private IPs) the caller reinstalled: a changed host key is accepted for them
        only, logged (old and new fingerprints) and written to ``record_to`` (a known_hosts file)."""
        self._reinstalled = frozenset(ips)
        self._record_to = Path(record_to).expanduser() if record_to else None

    def __enter__(self) -> SshClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            session.close()

    # -- running commands --------------------------------------------------------------------------

    def run(self, ip: str, command: str, timeout_s: float | None = None) -> CommandResult:
        """Run ``command`` on host ``ip``; its exit status is data, not an error.

        Raises TransientError (retry) or PermanentError (fix something first), naming the host.
        """
        timeout = timeout_s or self.command_timeout_s
        try:
            return self._run_once(ip, command, timeout)
        except _StaleSession:  # the kept connection died (host rebooted, idle timeout): one fresh try
            try:
                return self._run_once(ip, command, timeout)
            except _StaleSession as e:
                raise _wrap(ip, e.__cause__ or e, "opening a session") from e.__cause__

    def _run_once(self, ip: str, command: str, timeout: float) -> CommandResult:
        with self._host_lock(ip):
            reused = ip in self._sessions
            session = self._session(ip)
        try:
            channel = _open_channel(session, timeout)
        except (paramiko.SSHException, OSError, EOFError) as e:
            self._forget(ip)
            if reused:  # the kept connection died before this command was sent: safe to reconnect
                raise _StaleSession() from e
            raise _wrap(ip, e, "opening a session") from e
        try:
            return _exec(channel, command, timeout)
        except (paramiko.SSHException, OSError, EOFError) as e:
            transport = session.get_transport()
            if transport is None or not transport.is_active():  # a slow command keeps the connection
                self._forget(ip)
            raise _wrap(ip, e, f"running {command.split()[0] if command.split() else command!r}") from e

    def run_many(self, ips: Iterable[str], command: str | Mapping[str, str], concurrency: int = 10,
                 timeout_s: float | None = None) -> dict[str, CommandResult | errors.TkeflowError]:
        """Run ``command`` (one for all, or IP -> its own) on every host, at most ``concurrency`` at
        once; failures are per host."""
        targets = list(dict.fromkeys(ips))
        if not targets:
            return {}
        commands = command if isinstance(command, Mapping) else dict.fromkeys(targets, command)
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(targets))),
                                thread_name_prefix="ssh-fanout") as pool:
            futures = {ip: pool.submit(self._run_captured, ip, commands[ip], timeout_s) for ip in targets}
            return {ip: future.result() for ip, future in futures.items()}

    def _run_captured(self, ip: str, command: str, timeout_s: float | None) -> CommandResult | errors.TkeflowError:
        try:
            return self.run(ip, command, timeout_s)
        except errors.TkeflowError as e:
            return e
        except Exception as e:  # a bug for one host must not lose the results of all the others
            log.exception("ssh to %s failed unexpectedly", ip)
            return errors.PermanentError(f"{ip}: unexpected {type(e).__name__}: {e}")

    # -- connections -------------------------------------------------------------------------------

    def _host_lock(self, ip: str) -> threading.Lock:
        with self._lock:
            return self._host_locks.setdefault(ip, threading.Lock())

    def _forget(self, ip: str) -> None:
        with self._lock:
            session = self._sessions.pop(ip, None)
        if session is not None:
            session.close()

    def _session(self, ip: str) -> paramiko.SSHClient:
        """The kept connection to ``ip``, or a new one (caller holds the host's lock)."""
        session = self._sessions.get(ip)
        transport = session.get_transport() if session else None
        if session is not None and transport is not None and transport.is_active():
            return session
        self._forget(ip)
        session = self._connect(ip)
        with self._lock:
            self._sessions[ip] = session
        return session

    def _accept_new_key(self, ip: str, old: paramiko.PKey, new: paramiko.PKey) -> None:
        """A host reinstalled by the caller presents its key: pin it, log both fingerprints, record it."""
        self._accepted[ip] = new
        if self._twin_endpoint:
            ssh_hostkeys.pin_twin_key(self._twin_endpoint, ip, f"{new.get_name()} {new.get_base64()}")
        if new == old:
            log.info("%s was reinstalled and kept its host key %s %s", ip, new.get_name(), new.fingerprint)
        else:
            log.warning("%s was reinstalled: its host key changed from %s %s to %s %s (accepted for this host only)",
                        ip, old.get_name(), old.fingerprint, new.get_name(), new.fingerprint)
        if self._record_to is not None:
            try:
                ssh_hostkeys.record_host_key(self._record_to, _known_name(ip, self.port), new)
            except OSError as e:
                raise errors.PermanentError(f"{ip}: cannot record its new host key in {self._record_to} "
                                            f"({e.strerror}): fix spec.ssh.known_hosts_file") from None

    def _known_keys(self, ip: str, address: _Address) -> list[paramiko.PKey]:
        """The keys this host may present: accepted here, the twin's (pinned), or known_hosts' (any type)."""
        if ip in self._accepted:
            return [self._accepted[ip]]
        if address.host_key:
            key_type, key_b64 = address.host_key.split()[:2]
            return [_public_key(key_type, key_b64)]
        if self._known_hosts.is_file():
            found = paramiko.HostKeys(str(self._known_hosts)).lookup(_known_name(ip, self.port))
            return list(found.values()) if found else []
        return []

    def _connect(self, ip: str) -> paramiko.SSHClient:
        address = self._address(ip)
        session = paramiko.SSHClient()
        known = self._known_keys(ip, address)
        if ip in self._reinstalled and ip not in self._accepted and known:
            # a reinstall regenerates the keys: whatever it presents is taken in this one handshake,
            # logged against the key known before (never for a host whose key was not known)
            session.set_missing_host_key_policy(ssh_hostkeys.AcceptReinstalled(lambda key: self._accept_new_key(ip, known[0], key)))
        else:
            session.set_missing_host_key_policy(_RejectUnknownHost())
            for key in known:
                session.get_host_keys().add(_known_name(ip, self.port), key.get_name(), key)
        try:
            sock = socket.create_connection((address.host, address.port), timeout=self.connect_timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small commands: no Nagle wait
            # Connect *as* the private IP: known-host lookup and messages name the real host.
            session.connect(ip, self.port, username=self.user, pkey=self._pkey, sock=sock,
                            timeout=self.connect_timeout_s, banner_timeout=self.connect_timeout_s,
                            auth_timeout=self.connect_timeout_s, allow_agent=False, look_for_keys=False)
        except (paramiko.SSHException, OSError, EOFError) as e:
            session.close()
            raise _wrap(ip, e, "connecting", address) from e
        return session

    def _address(self, ip: str) -> _Address:
        if self._twin is None and not self._twin_endpoint:
            return _Address(ip, self.port)
        with self._twin_lock:
            if self._twin is None or (ip not in self._twin and self._twin_endpoint):
                self._twin = self._fetch_twin_map()
            address = self._twin.get(ip)
        if address is None:
            raise errors.NotFoundError(f"{ip}: no twin host has this private IP (GET /_twin/ssh does not list it)")
        return self._pinned(ip, address)

    def _pinned(self, ip: str, address: _Address) -> _Address:
        """The twin's map read like known_hosts: a key first seen in this process stays expected here
        (so a reinstall's new key shows as a change, as on a real host) until accepted."""
        if not self._twin_endpoint or not address.host_key:
            return address
        known = ssh_hostkeys.twin_key_seen(self._twin_endpoint, ip, address.host_key)
        return address if known == address.host_key else dataclasses.replace(address, host_key=known)

    def _fetch_twin_map(self) -> dict[str, _Address]:
        endpoint = str(self._twin_endpoint)
        base = endpoint if endpoint.startswith(("http://", "https://")) else f"http://{endpoint}"
        url = base.rstrip("/") + "/_twin/ssh"
        try:
            with urllib.request.urlopen(url, timeout=self.connect_timeout_s) as response:  # noqa: S310 (twin URL)
                return _twin_addresses(json.load(response))
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise errors.TransientError(f"could not read the twin's SSH address map from {url}: {e}") from e


def _twin_addresses(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, _Address]:
    return {ip: _Address(str(v["host"]), int(v["port"]), str(v["host_key"]), v.get("instance_id"))
            for ip, v in raw.items()}


def _known_name(ip: str, port: int) -> str:
    return ip if port == 22 else f"[{ip}]:{port}"


def _public_key(key_type: str, key_b64: str) -> paramiko.PKey:
    return paramiko.PKey.from_type_string(key_type, base64.b64decode(key_b64))


def _key_path(given: str | os.PathLike[str] | None) -> Path:
    """The key file given, else the first of ~/.ssh/id_ed25519, id_ecdsa, id_rsa (ssh's defaults)."""
    if given is not None:
        return Path(given).expanduser()
    defaults = [Path.home() / ".ssh" / name for name in ("id_ed25519", "id_ecdsa", "id_rsa")]
    found = next((path for path in defaults if path.is_file()), None)
    if found is None:
        raise errors.PermanentError("no SSH private key file given (spec.ssh.private_key_file) and none of "
                                    + ", ".join(str(p) for p in defaults) + " exists")
    return found


def _load_private_key(path: Path, passphrase: str | None) -> paramiko.PKey:
    """Ed25519, RSA or ECDSA private key; errors name the file and what to do, never its content."""
    try:
        return paramiko.PKey.from_path(path, password=passphrase.encode() if passphrase else None)  # type: ignore[arg-type]
    except FileNotFoundError as e:
        raise errors.PermanentError(f"SSH private key file {path} does not exist") from e
    except (paramiko.PasswordRequiredException, TypeError) as e:
        # cryptography's OpenSSH loader says "password-protected" with a TypeError instead
        if isinstance(e, TypeError) and not client_errors.is_key_passphrase_missing(e):
            raise errors.PermanentError(f"SSH private key {path} could not be loaded ({e})") from e
        raise errors.PermanentError(f"SSH private key {path} is encrypted: put its passphrase in "
                                    f"${PASSPHRASE_ENV}") from e
    except (paramiko.SSHException, ValueError, OSError) as e:
        raise errors.PermanentError(f"SSH private key {path} could not be loaded ({type(e).__name__}): "
                                    "is it an Ed25519, RSA or ECDSA private key, and the passphrase right?") from e


def _open_channel(session: paramiko.SSHClient, timeout: float) -> paramiko.Channel:
    transport = session.get_transport()
    if transport is None or not transport.is_active():
        raise paramiko.SSHException("SSH session not active")
    return transport.open_session(timeout=timeout)


def _exec(channel: paramiko.Channel, command: str, timeout: float) -> CommandResult:
    deadline = time.monotonic() + timeout
    try:
        channel.exec_command(command)
        stdout = _read_to_eof(channel, channel.recv, deadline)
        stderr = _read_to_eof(channel, channel.recv_stderr, deadline)
        if not channel.status_event.wait(max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"no exit status within {timeout:g}s")
        status = channel.recv_exit_status()
        if status == -1:
            raise EOFError("the host closed the channel without an exit status")
        return CommandResult(status, stdout.decode(errors="replace"), stderr.decode(errors="replace"))
    except socket.timeout as e:
        raise TimeoutError(f"command did not finish within {timeout:g}s") from e
    finally:
        channel.close()


def _read_to_eof(channel: paramiko.Channel, recv: Any, deadline: float) -> bytes:
    chunks = []
    while True:
        channel.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _wrap(ip: str, e: BaseException, doing: str, address: _Address | None = None) -> errors.TkeflowError:
    """paramiko/socket error -> TransientError or PermanentError with what to check."""
    where = f"{ip}" + (f" ({address.instance_id})" if address and address.instance_id else "")
    if isinstance(e, paramiko.BadHostKeyException):
        return errors.PermanentError(
            f"{where}: the host key CHANGED (offered {e.key.get_name()} {e.key.fingerprint}, known "
            f"{e.expected_key.get_name()} {e.expected_key.fingerprint}). If the host was reinstalled "
            "(adding it to a cluster reinstalls the OS), update known_hosts; otherwise suspect a "
            "man-in-the-middle and do not connect.", code="HostKeyChanged")
    if isinstance(e, _UnknownHostKey):
        return errors.PermanentError(
            f"{where}: host key unknown (offered {e.key.get_name()} {e.key.fingerprint}); add the host's key to "
            "known_hosts after checking its fingerprint on the console (keys are never accepted blindly)",
            code="HostKeyUnknown")
    if isinstance(e, paramiko.AuthenticationException):
        return errors.PermanentError(
            f"{where}: authentication failed while {doing}: check that the private key matches a key pair "
            "bound to the instance and the login user", code="AuthFailed")
    if isinstance(e, (TimeoutError, socket.timeout)):
        return errors.TransientError(f"{where}: timed out while {doing}: {e}", code="Timeout")
    if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError | ConnectionError | EOFError):
        return errors.TransientError(f"{where}: connection lost or refused while {doing}: {e}", code="ConnectionError")
    return errors.TransientError(f"{where}: SSH failure while {doing}: {type(e).__name__}: {e}", code="SshError")

