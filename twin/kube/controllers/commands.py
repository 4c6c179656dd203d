"""What a twin container's command does: run forever, exit with a code, or probe the network.

The kubelet (kubelet.py) asks ``behaviour(container)`` when a pod turns Ready. Accepted forms
(the busybox/agnhost tools the network-policy verification and interconnect tests use):

- ``nc -z [-v] [-u] [-w SECONDS] HOST PORT`` (flags may be combined: ``-zv``, ``-vzw 2``)
- ``wget [-q] [-T SECONDS|--timeout=S] [-O FILE|-O-] [--spider] http://HOST[:PORT][/path]``
- ``curl [-s] [-f] [-m S|--max-time S|--connect-timeout S] [-o FILE] http(s)://HOST[:PORT][/path]``
- ``ping -c N [-W S] HOST`` (ICMP: no port; a policy that lists ports does not admit it)
- ``/agnhost connect HOST:PORT [--timeout=2s] [--protocol=tcp|udp]``
- any of these inside ``sh -c "..."`` (also bash/ash, ``/bin/sh``) joined by ``&&``, ``||`` or ``;``,
  together with ``true``, ``false``, ``exit N``, ``echo ...`` (printed to the pod's log, as ``nc -v``'s
  open / timed out and wget's failure are), ``sleep N``,
  ``nvidia-smi`` (exit 127 "not found" unless the container has an nvidia.com/gpu limit, R-GPU-3);
  ``sleep infinity``, ``tail -f ...``, ``while``/``for`` loops and the image's own entrypoint (no
  command) run forever. A loop containing probes is a *long-running probe*: the kubelet records its
  result in the pod's annotations (see kubelet.py). Other commands exit 0.

HOST is an IP, a Service name (``svc``, ``svc.ns``, ``svc.ns.svc``, ``svc.ns.svc.cluster.local``)
or a StatefulSet pod's DNS name; resolution and reachability are reachability.py's business.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

SHELLS = {"sh", "bash", "ash", "dash"}
KNOWN_PROGRAMS = SHELLS | {"nc", "netcat", "wget", "curl", "ping", "agnhost", "busybox", "sleep", "true",
                           "false", "echo", "exit", "tail"}
_SHELL_KEYWORDS = {"do", "then", "else", "if", "while", "until", "{", "("}
_NC_VALUE_FLAGS = set("wWiqsp")


@dataclass(frozen=True)
class Probe:
    tool: str
    host: str
    port: int
    protocol: str = "TCP"  # TCP, UDP or ICMP
    verbose: bool = field(default=False, compare=False)  # nc -v: says open / timed out (the pod's log)

    def describe(self) -> str:
        return f"{self.host}:{self.port}/{self.protocol}" if self.port else f"{self.host}/{self.protocol}"

    def output(self, reached: bool) -> str:
        """What busybox's tool prints (stdout and stderr both reach ``kubectl logs``)."""
        if self.tool == "nc" and self.verbose:
            where = f"{self.host} ({self.host}:{self.port})"
            return f"{where} open\n" if reached else f"nc: {where}: Connection timed out\n"
        if self.tool == "wget" and not reached:
            return "wget: download timed out\n"
        return ""


@dataclass(frozen=True)
class Step:
    joiner: str  # how it follows the previous step: ";", "&&" or "||"
    kind: str  # "probe", "status" (a command's exit status), "exit" (the shell exits), "sleep"
    probe: Probe | None = None
    code: int = 0
    seconds: float = 0.0
    text: str = ""  # what the step prints (echo), for pods/log


@dataclass(frozen=True)
class Behaviour:
    kind: str  # "forever", "exits", "probe-loop"
    steps: tuple[Step, ...] = ()
    probes: tuple[Probe, ...] = field(default=())

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps if s.kind == "sleep")

    def exit_code(self, reach: Callable[[Probe], bool]) -> int:
        return self.run(reach)[0]

    def run(self, reach: Callable[[Probe], bool]) -> tuple[int, str]:
        """Run the steps with shell semantics; ``reach`` answers each probe. (exit code, what it printed)."""
        status = 0
        printed: list[str] = []
        for index, step in enumerate(self.steps):
            if index and ((step.joiner == "&&" and status != 0) or (step.joiner == "||" and status == 0)):
                continue
            printed.append(step.text)
            if step.kind == "probe" and step.probe is not None:
                reached = reach(step.probe)
                printed.append(step.probe.output(reached))
                status = 0 if reached else 1
            elif step.kind == "exit":
                return step.code, "".join(printed)  # the shell's own exit ends the script
            elif step.kind == "status":
                status = step.code
            else:
                status = 0
        return status, "".join(printed)


FOREVER = Behaviour("forever")


def behaviour(container: dict[str, Any]) -> Behaviour:
    gpus = _gpus(container)
    argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    if not argv:
        return FOREVER
    base = argv[0].rsplit("/", 1)[-1]
    if not container.get("command") and base not in KNOWN_PROGRAMS:
        return FOREVER  # args for the image's own entrypoint (e.g. a server's flags)
    if base in SHELLS and "-c" in argv[1:]:
        position = argv.index("-c")
        script = argv[position + 1] if position + 1 < len(argv) else ""
        return _script_behaviour(script, gpus)
    return _script_behaviour(shlex.join(argv), gpus)


def _gpus(container: dict[str, Any]) -> bool:
    """Whether the container was given GPUs (nvidia.com/gpu limit > 0): nvidia-smi works only then."""
    limits = (container.get("resources") or {}).get("limits") or {}
    try:
        return float(str(limits.get("nvidia.com/gpu", "0"))) > 0
    except ValueError:
        return False


def _script_behaviour(script: str, gpus: bool = False) -> Behaviour:
    try:
        lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return Behaviour("exits", (Step(";", "exit", code=2),))  # sh: syntax error
    commands = [(joiner, _strip_keywords(cmd)) for joiner, cmd in _split(tokens)]
    commands = [(joiner, cmd) for joiner, cmd in commands if cmd]
    words = set(tokens)
    probes = tuple(p for _, cmd in commands if (p := parse_probe(cmd)) is not None)
    if words & {"while", "until", "for"}:
        return Behaviour("probe-loop", probes=probes) if probes else FOREVER
    steps: list[Step] = []
    for joiner, cmd in commands:
        step = _step(joiner, cmd, gpus)
        if step is None:
            return Behaviour("probe-loop", probes=probes) if probes else FOREVER
        steps.append(step)
    return Behaviour("exits", tuple(steps), probes)


def _split(tokens: list[str]) -> list[tuple[str, list[str]]]:
    commands: list[tuple[str, list[str]]] = []
    joiner, current = ";", []
    for token in tokens:
        if token in (";", "&&", "||", "&", "|"):
            if current:
                commands.append((joiner, current))
            joiner, current = (";" if token in ("&", "|") else token), []
        else:
            current.append(token)
    if current:
        commands.append((joiner, current))
    return commands


def _strip_keywords(cmd: list[str]) -> list[str]:
    while cmd and cmd[0] in _SHELL_KEYWORDS:
        cmd = cmd[1:]
    return [word for word in cmd if word not in ("done", "fi", "}", ")")]


def _step(joiner: str, cmd: list[str], gpus: bool = False) -> Step | None:
    """One simple command; None when it never ends."""
    name = cmd[0].rsplit("/", 1)[-1]
    probe = parse_probe(cmd)
    if probe is not None:
        return Step(joiner, "probe", probe=probe)
    if name == "sleep":
        arg = cmd[1] if len(cmd) > 1 else "0"
        if arg in ("infinity", "inf"):
            return None
        try:
            return Step(joiner, "sleep", seconds=float(arg.rstrip("s")))
        except ValueError:
            return Step(joiner, "status", code=1)
    if name == "tail" and "-f" in cmd:
        return None
    if name == "false":
        return Step(joiner, "status", code=1)
    if name == "echo":
        newline = "" if cmd[1:2] == ["-n"] else "\n"
        return Step(joiner, "status", text=" ".join(w for w in cmd[1:] if w != "-n") + newline)
    if name == "nvidia-smi" and not gpus:  # the device plugin mounts the driver's tools only with a GPU
        return Step(joiner, "status", code=127, text="sh: nvidia-smi: not found\n")
    if name == "exit":
        code = int(cmd[1]) if len(cmd) > 1 and cmd[1].lstrip("-").isdigit() else 0
        return Step(joiner, "exit", code=code)
    return Step(joiner, "status", code=0)


def parse_probe(cmd: list[str]) -> Probe | None:
    if not cmd:
        return None
    name = cmd[0].rsplit("/", 1)[-1]
    if name == "busybox" and len(cmd) > 1:
        return parse_probe(cmd[1:])
    parser = {"nc": _nc, "netcat": _nc, "wget": _wget, "curl": _curl, "ping": _ping, "agnhost": _agnhost}.get(name)
    return parser(cmd[1:]) if parser else None


def _nc(args: list[str]) -> Probe | None:
    positional: list[str] = []
    protocol = "TCP"
    verbose = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and len(arg) > 1:
            flags = arg[1:]
            verbose = verbose or "v" in flags
            if "u" in flags:
                protocol = "UDP"
            if flags[-1] in _NC_VALUE_FLAGS and not any(c.isdigit() for c in flags):
                i += 1  # the flag's value is the next word
        else:
            positional.append(arg)
        i += 1
    if len(positional) < 2 or not positional[1].isdigit():
        return None
    return Probe("nc", positional[0], int(positional[1]), protocol, verbose)


def _url_probe(tool: str, url: str) -> Probe | None:
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return Probe(tool, parts.hostname, port)


def _last_url(args: list[str], value_flags: set[str]) -> str | None:
    url = None
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in value_flags:
            skip = True
        elif not arg.startswith("-"):
            url = arg
    return url


def _wget(args: list[str]) -> Probe | None:
    url = _last_url(args, {"-T", "-O", "-o", "-U", "--header", "-t", "-P"})
    return _url_probe("wget", url) if url else None


def _curl(args: list[str]) -> Probe | None:
    url = _last_url(args, {"-m", "--max-time", "--connect-timeout", "-o", "--output", "-H", "--header",
                           "-X", "--request", "-w", "--write-out", "-d", "--data", "-A", "-u", "--retry"})
    return _url_probe("curl", url) if url else None


def _ping(args: list[str]) -> Probe | None:
    host = _last_url(args, {"-c", "-W", "-w", "-i", "-s", "-I", "-t"})
    return Probe("ping", host, 0, "ICMP") if host else None


def _agnhost(args: list[str]) -> Probe | None:
    if not args or args[0] != "connect" or len(args) < 2:
        return None
    target = next((a for a in args[1:] if not a.startswith("-")), "")
    host, _, port = target.rpartition(":")
    protocol = "TCP"
    for arg in args[1:]:
        if arg.startswith("--protocol="):
            protocol = arg.split("=", 1)[1].upper()
    if not host or not port.isdigit():
        return None
    return Probe("agnhost", host.strip("[]"), int(port), protocol)
