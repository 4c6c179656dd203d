"""SSH for every twin CVM: one local port per CVM, one accept thread for all of them.

The cloud twin builds one ``SshFleet`` over its world's CVMs and serves ``fleet.mapping()`` as
``GET /_twin/ssh``; tkeflow's SSH client (tkeflow/clients/ssh.py) uses that map as its only
twin-specific setting. Hosts are read live from the world (never copied): a CVM that appears gets a
port, one that is not RUNNING refuses connections (its port stays reserved, so the address does not
change when it comes back), one that disappears loses its port. The world is re-read every
``poll_interval_s`` by the accept thread and whenever ``sync()`` or ``mapping()`` is called.

Why one thread: a twin of 100+ hosts must not cost 100 listening threads; a selector watches every
listening socket and each accepted connection becomes a paramiko Transport (server.py).
"""

from __future__ import annotations

import ipaddress
import logging
import selectors
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import paramiko

from twin.clock import Clock
from twin.ssh.hostkeys import derive_host_key, host_key_line
from twin.ssh.server import serve_connection
from twin.world.hosts import Cvm

log = logging.getLogger(__name__)

CvmSource = Callable[[], Iterable[Cvm]] | Mapping[str, Cvm] | Iterable[Cvm]
KeySource = Callable[[], Mapping[str, str]] | Mapping[str, str]


@dataclass(eq=False)
class _Host:
    cvm: Cvm
    port: int
    listener: socket.socket | None = None  # set while the CVM is RUNNING
    reservation: socket.socket | None = None  # bound, not listening: refuses and keeps the port
    transports: set[paramiko.Transport] = field(default_factory=set)


def _bound_socket(bind_host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind_host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _reset(conn: socket.socket) -> None:
    """Drop a connection with RST, as a host that just went away does."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class SshFleet:
    """SSH servers for every CVM of a world, on ``bind_host`` (127.0.0.1).

    ``cvms``: a callable returning the world's CVMs, a mapping instance ID -> Cvm, or a list (read
    again on every sync). ``keys``: key pair ID -> public key line (``ssh-ed25519 AAAA... comment``),
    or a callable returning it. ``reachable(cvm, ip)`` answers ping; by default a host reaches the
    RUNNING CVMs of its own VPC. ``command_latency_s`` (a number or a callable such as
    ``lambda: world.timings.ssh_command_latency_s``) delays the reply to each exec request (one
    round trip: a line of ``;``-joined commands counts once) via the clock
    (the twin's shared Clock when given, else the fleet's own). ``rekey_on_reinstall``: a real OS
    reinstall (AddExistedInstances, R-ADD-2; a reset upgrade, R-UPG-3) regenerates the host keys, as
    real TKE does: on by default (issue 14 item 7), the key also depends on ``Cvm.os_install_count``,
    so clients pinned to the old key see it change. Off: keys stable across reinstalls.
    """

    def __init__(self, cvms: CvmSource, seed: str, reachable: Callable[[Cvm, str], bool] | None = None, *,
                 keys: KeySource | None = None, clock: Clock | None = None,
                 command_latency_s: float | Callable[[], float] = 0.0, poll_interval_s: float = 0.2,
                 bind_host: str = "127.0.0.1", rekey_on_reinstall: bool = True):
        self._cvms = cvms
        self.seed = seed
        self._reachable = reachable
        self._keys: KeySource = keys if keys is not None else {}
        self._clock = clock
        self._own_clock = clock is None
        self.command_latency_s = command_latency_s
        self._poll_interval_s = poll_interval_s
        self._bind_host = bind_host
        self._rekey_on_reinstall = rekey_on_reinstall
        self._hosts: dict[str, _Host] = {}  # instance ID -> host
        self._added: dict[str, Cvm] = {}  # CVMs given to add(), served even if the world omits them
        self._lock = threading.RLock()
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> SshFleet:
        if self._thread is not None:
            return self
        if self._clock is None:
            self._clock = Clock()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self.sync()
        self._thread = threading.Thread(target=self._serve, name="twin-ssh-accept", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for instance_id in list(self._hosts):
                self._drop(instance_id)
        for closable in (self._selector, self._wake_r, self._wake_w):
            if closable is not None:
                closable.close()
        if self._own_clock and self._clock is not None:
            self._clock.stop()

    def __enter__(self) -> SshFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the world -------------------------------------------------------------------------------

    def _world_cvms(self) -> list[Cvm]:
        source = self._cvms
        if isinstance(source, Mapping):
            return list(source.values())
        if callable(source):
            return list(source())
        return list(source)

    def sync(self) -> None:
        """Match the served hosts to the world: new CVMs get a port, gone ones lose it, state applies."""
        cvms = {cvm.instance_id: cvm for cvm in self._world_cvms() if cvm.private_ip}
        with self._lock:
            if self._stopping.is_set() or self._selector is None:
                return
            cvms.update(self._added)
            for instance_id in [i for i in self._hosts if i not in cvms]:
                self._drop(instance_id)
            for instance_id, cvm in cvms.items():
                host = self._hosts.get(instance_id)
                if host is None:
                    self._hosts[instance_id] = host = self._new_host(cvm)
                # a reset or restored world holds new Cvm objects for the same hosts: they keep their
                # ports (a host's address does not move; twin/snapshot.py), the state is applied below
                host.cvm = cvm
                self._apply_state(host)
                host.transports = {t for t in host.transports if t.is_active()}

    def add(self, cvm: Cvm) -> None:
        """Serve a CVM the world source does not list (until ``remove``); applied now if started."""
        with self._lock:
            self._added[cvm.instance_id] = cvm
        self.sync()

    def remove(self, instance_id: str) -> None:
        """Stop serving a CVM given to ``add`` (a CVM of the world follows the world instead)."""
        with self._lock:
            self._added.pop(instance_id, None)
        self.sync()

    def _new_host(self, cvm: Cvm) -> _Host:
        reservation = _bound_socket(self._bind_host, 0)
        return _Host(cvm, reservation.getsockname()[1], reservation=reservation)

    def _apply_state(self, host: _Host) -> None:
        running = host.cvm.state == "RUNNING"
        if running and host.listener is None:
            self._listen(host)
        elif not running and host.listener is not None:
            self._refuse(host)

    def _listen(self, host: _Host) -> None:
        try:
            listener = _bound_socket(self._bind_host, host.port)
        except OSError:  # someone took the port while the host was down: take another one
            log.warning("twin ssh: port %s of %s was taken; moving it", host.port, host.cvm.instance_id)
            listener = _bound_socket(self._bind_host, 0)
            host.port = listener.getsockname()[1]
        listener.listen(128)
        listener.setblocking(False)
        if host.reservation is not None:
            host.reservation.close()
            host.reservation = None
        host.listener = listener
        assert self._selector is not None, "listeners open only once the fleet started"
        self._selector.register(listener, selectors.EVENT_READ, host)
        self._wake()

    def _refuse(self, host: _Host) -> None:
        """The CVM stopped (or is being reinstalled): connections refused, open sessions dropped."""
        if host.listener is not None and self._selector is not None:
            self._selector.unregister(host.listener)
            host.listener.close()
            host.listener = None
        try:
            host.reservation = _bound_socket(self._bind_host, host.port)
        except OSError:
            log.warning("twin ssh: could not keep port %s of %s", host.port, host.cvm.instance_id)
        for transport in host.transports:
            transport.close()
        host.transports.clear()

    def _drop(self, instance_id: str) -> None:
        host = self._hosts.pop(instance_id, None)
        if host is None:
            return
        self._refuse(host)
        if host.reservation is not None:
            host.reservation.close()
            host.reservation = None

    # -- what clients and the cloud twin read ----------------------------------------------------

    def mapping(self) -> dict[str, dict[str, object]]:
        """private IP -> {"host", "port", "host_key", "instance_id"}: the body of GET /_twin/ssh.

        Two CVMs with the same private IP (different VPCs) cannot both be mapped; the RUNNING one
        wins, then the lowest instance ID.
        """
        if self._thread is not None:
            self.sync()
        with self._lock:
            hosts = sorted(self._hosts.values(), key=lambda h: (h.cvm.state != "RUNNING", h.cvm.instance_id))
            out: dict[str, dict[str, object]] = {}
            for host in hosts:
                out.setdefault(host.cvm.private_ip, {
                    "host": self._bind_host, "port": host.port,
                    "host_key": self.host_key(host.cvm.instance_id), "instance_id": host.cvm.instance_id,
                })
        return out

    def host_key(self, instance_id: str) -> str:
        """The public host key of a CVM as ``<type> <base64>`` (what known_hosts holds)."""
        with self._lock:
            host = self._hosts.get(instance_id)
        return host_key_line(self._host_key(host.cvm if host else None, instance_id))

    def _host_key(self, cvm: Cvm | None, instance_id: str) -> paramiko.PKey:
        if self._rekey_on_reinstall and cvm is not None:
            return derive_host_key(self.seed, f"{instance_id}/install-{cvm.os_install_count}")
        return derive_host_key(self.seed, instance_id)

    def connections(self, instance_id: str) -> int:
        """Open SSH connections to a CVM (tests and benchmarks check that clients reuse them)."""
        with self._lock:
            host = self._hosts.get(instance_id)
            return sum(1 for t in host.transports if t.is_active()) if host else 0

    def address(self, instance_id: str) -> tuple[str, int]:
        with self._lock:
            return self._bind_host, self._hosts[instance_id].port

    # -- FleetView, for server.py ----------------------------------------------------------------

    def authorized_keys(self, cvm: Cvm) -> list[str]:
        keys = self._keys() if callable(self._keys) else self._keys
        with cvm.lock:
            key_ids = list(cvm.key_ids)
        return [keys[k] for k in key_ids if k in keys]

    def reaches(self, cvm: Cvm, ip: str) -> bool:
        if self._reachable is not None:
            return self._reachable(cvm, ip)
        if ip == cvm.private_ip or ipaddress.ip_address(ip).is_loopback:
            return True
        with self._lock:
            others = [h.cvm for h in self._hosts.values()]
        return any(o.private_ip == ip and o.vpc_id == cvm.vpc_id and o.state == "RUNNING" for o in others)

    def command_latency(self) -> float:
        latency = self.command_latency_s
        return float(latency() if callable(latency) else latency)

    def call_later(self, delay: float, fn: Callable[[], None]) -> object:
        assert self._clock is not None, "start() the fleet first"
        return self._clock.call_later(delay, fn)

    # -- the accept thread -----------------------------------------------------------------------

    def _wake(self) -> None:
        try:
            if self._wake_w is not None:
                self._wake_w.send(b"\0")
        except OSError:  # closed during stop, or the pipe is full: the loop is awake anyway
            pass

    def _serve(self) -> None:
        selector, wake_r = self._selector, self._wake_r
        assert selector is not None and wake_r is not None
        while not self._stopping.is_set():
            try:
                events = selector.select(timeout=self._poll_interval_s)
            except (OSError, ValueError):  # selector closed by stop()
                return
            for key, _ in events:
                if key.data is None:
                    wake_r.recv(4096)
                else:
                    self._accept(key.data)
            try:
                self.sync()
            except Exception:  # a broken world callable must not kill every host's SSH
                log.exception("twin ssh: reading the world's CVMs failed")

    def _accept(self, host: _Host) -> None:
        with self._lock:
            listener = host.listener
            if listener is None:
                return
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, OSError):
                return
            if host.cvm.state != "RUNNING":
                _reset(conn)
                self._refuse(host)
                return
            host_key = self._host_key(host.cvm, host.cvm.instance_id)
        try:
            transport = serve_connection(conn, host.cvm, host_key, self)
        except (OSError, paramiko.SSHException):
            log.debug("twin ssh: connection to %s failed at start", host.cvm.instance_id)
            conn.close()
            return
        with self._lock:
            host.transports.add(transport)
