"""One SSH connection to a twin CVM: paramiko's server side, key auth, exec channels with latency.

The fleet (fleet.py) accepts a TCP connection for a CVM and hands it to ``serve_connection``, which
starts a paramiko Transport (its own thread, as every paramiko connection has). Only public-key
authentication with a key pair bound to the CVM succeeds (R-CRT-9, R-ADD-5: the flows log in by key);
passwords are refused. Each exec request is answered from the world by shell.py, and the reply is
sent after the fleet's command latency by the twin clock, so a slow command never blocks another
session and 100 sessions waiting cost no thread each.

paramiko sends the "exec accepted" reply only after ``check_channel_exec_request`` returns, and a
reply that closed the channel before that reply would make the client fail ("Channel closed"). So
the command runs in a hook called right after paramiko has sent the reply: ``_HostTransport``
wraps paramiko's channel-request handler (a class-level dispatch table) to call it.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

import paramiko
from paramiko.common import MSG_CHANNEL_REQUEST

from twin.ssh.commands import Context, Result
from twin.ssh.shell import run_command_line
from twin.world.hosts import Cvm

log = logging.getLogger(__name__)

_BANNER_TIMEOUT_S = 15.0
_AUTH_TIMEOUT_S = 15.0


class FleetView(Protocol):
    """What a connection needs from the fleet (kept narrow so server.py stays testable alone)."""

    def authorized_keys(self, cvm: Cvm) -> list[str]: ...
    def reaches(self, cvm: Cvm, ip: str) -> bool: ...
    def command_latency(self) -> float: ...
    def call_later(self, delay: float, fn: Callable[[], None]) -> object: ...


def login_users(cvm: Cvm) -> set[str]:
    """Who may log in: root, except on Ubuntu images whose default login is ``ubuntu`` (Tencent's)."""
    return {"ubuntu"} if "ubuntu" in cvm.os_name.lower() else {"root"}


class _HostServer(paramiko.ServerInterface):
    def __init__(self, fleet: FleetView, cvm: Cvm):
        self._fleet = fleet
        self._cvm = cvm
        self._user = "root"
        self._pending: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_password(self, username: str, password: str) -> int:
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        offered = (key.get_name(), key.get_base64())
        for line in self._fleet.authorized_keys(self._cvm):
            fields = line.split()
            if len(fields) >= 2 and (fields[0], fields[1]) == offered and username in login_users(self._cvm):
                self._user = username
                return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        with self._lock:
            self._pending[channel.get_id()] = command
        return True

    def run_pending(self, channel: paramiko.Channel) -> None:
        """Answer the exec request of ``channel`` (called once paramiko has accepted it)."""
        with self._lock:
            command = self._pending.pop(channel.get_id(), None)
        if command is None:
            return
        line = command.decode("utf-8", errors="replace")
        ctx = Context(self._cvm, lambda ip: self._fleet.reaches(self._cvm, ip), self._user)
        result = run_command_line(line, ctx)
        latency = self._fleet.command_latency()
        if latency > 0:
            self._fleet.call_later(latency, lambda: _reply(channel, result))
        else:
            _reply(channel, result)


def _reply(channel: paramiko.Channel, result: Result) -> None:
    """Send what the command printed, its exit status, EOF and close, as sshd does."""
    try:
        if result.stdout:
            channel.sendall(result.stdout.encode())
        if result.stderr:
            channel.sendall_stderr(result.stderr.encode())
        channel.send_exit_status(result.exit_status)
        channel.shutdown_write()
        channel.close()
    except (OSError, EOFError, paramiko.SSHException):
        log.debug("twin ssh: client left before the reply to channel %s", channel.get_id())


def _handle_request_then_run(channel: paramiko.Channel, message: paramiko.Message) -> None:
    paramiko.Channel._handle_request(channel, message)  # sends SUCCESS/FAILURE to the client
    server = channel.transport.server_object
    if isinstance(server, _HostServer):
        server.run_pending(channel)


class _HostTransport(paramiko.Transport):
    _channel_handler_table: Mapping[int, Callable[..., None]] = {
        **paramiko.Transport._channel_handler_table,
        MSG_CHANNEL_REQUEST: _handle_request_then_run,
    }


def serve_connection(conn: socket.socket, cvm: Cvm, host_key: paramiko.PKey, fleet: FleetView) -> paramiko.Transport:
    """Start the SSH server side on an accepted socket; returns at once (the transport has a thread)."""
    conn.setblocking(True)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small replies: no Nagle delay
    transport = _HostTransport(conn)
    transport.banner_timeout = _BANNER_TIMEOUT_S
    transport.auth_timeout = _AUTH_TIMEOUT_S
    transport.add_server_key(host_key)
    transport.start_server(event=threading.Event(), server=_HostServer(fleet, cvm))
    return transport
