"""System commands on a twin CVM: systemctl is-active, cat /etc/os-release, ping, iptables-save,
hostname, uname (nvidia-smi is gpu.py).

Flows use them for pre-flight and validation: the OS of a host (R-GPU-2), whether kubelet or a
container runtime runs, whether a host reaches another address (R-NET-3, R-NET-7: ping follows the
reachability callable the fleet was given), which GPUs a host has (R-GPU-5). Outputs follow the real
tools (systemd, iputils, NVIDIA driver, iptables 1.8); ``ping`` answers at once with the summary the
real one prints after its wait, instead of waiting ``-c``/``-W`` seconds.
"""

from __future__ import annotations

import ipaddress
import re

from twin.ssh.commands.base import Context, Result, UsageError, parse_options
from twin.world.hosts import Cvm


def systemctl(ctx: Context, args: list[str]) -> Result:
    """``systemctl is-active [--quiet] UNIT...``: exit 0 only when every unit is active, else 3."""
    quiet = any(a in ("-q", "--quiet") for a in args)
    words = [a for a in args if not a.startswith("-")]
    if not words or words[0] != "is-active":
        verb = words[0] if words else ""
        return Result(1, "", f"Unknown command verb {verb}.\n" if verb else "Too few arguments.\n")
    units = words[1:]
    if not units:
        return Result(1, "", "Too few arguments.\n")
    with ctx.cvm.lock:
        services = dict(ctx.cvm.services)
    states = [services.get(u, services.get(u.removesuffix(".service"), services.get(f"{u}.service", "inactive")))
              for u in units]
    out = "" if quiet else "".join(f"{s}\n" for s in states)
    return Result(0 if all(s == "active" for s in states) else 3, out, "")


_EL_OF_TENCENTOS = {"2": "7", "3": "8", "4": "9"}  # TencentOS major -> RHEL base
_UBUNTU_CODENAMES = {"18.04": "bionic", "20.04": "focal", "22.04": "jammy", "24.04": "noble"}


def _version(os_name: str, default: str) -> str:
    found = re.search(r"\d+(\.\d+)*", os_name)
    return found.group(0) if found else default


def os_release(cvm: Cvm) -> str:
    """/etc/os-release for the CVM's OS (TencentOS, CentOS and Ubuntu forms; others generic)."""
    name = cvm.os_name
    lower = name.lower()
    if "ubuntu" in lower:
        version = _version(name, "22.04")
        short = ".".join(version.split(".")[:2])
        codename = _UBUNTU_CODENAMES.get(short, "jammy")
        return (f'PRETTY_NAME="Ubuntu {version} LTS"\nNAME="Ubuntu"\nVERSION_ID="{short}"\n'
                f'VERSION="{version} LTS ({codename.capitalize()})"\nVERSION_CODENAME={codename}\n'
                'ID=ubuntu\nID_LIKE=debian\nHOME_URL="https://www.ubuntu.com/"\n'
                'SUPPORT_URL="https://help.ubuntu.com/"\nBUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"\n'
                f"UBUNTU_CODENAME={codename}\n")
    if "tencentos" in lower:
        version = _version(name, "3.1")
        return ('NAME="TencentOS Server"\n'
                f'VERSION="{version}"\nID="tencentos"\nID_LIKE="rhel fedora centos"\nVERSION_ID="{version}"\n'
                f'PLATFORM_ID="platform:el{_EL_OF_TENCENTOS.get(version.split(".")[0], "8")}"\n'
                f'PRETTY_NAME="{name}"\nANSI_COLOR="0;31"\nCPE_NAME="cpe:/o:tencentos:tencentos:{version}"\n'
                'HOME_URL="https://github.com/Tencent/TencentOS-kernel"\n'
                'BUG_REPORT_URL="https://github.com/Tencent/TencentOS-kernel"\n')
    if "centos" in lower:
        major = _version(name, "7").split(".")[0]
        return (f'NAME="CentOS Linux"\nVERSION="{major} (Core)"\nID="centos"\nID_LIKE="rhel fedora"\n'
                f'VERSION_ID="{major}"\nPRETTY_NAME="CentOS Linux {major} (Core)"\nANSI_COLOR="0;31"\n'
                f'CPE_NAME="cpe:/o:centos:centos:{major}"\nHOME_URL="https://www.centos.org/"\n'
                'BUG_REPORT_URL="https://bugs.centos.org/"\n')
    first = name.split()[0] if name.split() else "Linux"
    return f'NAME="{first}"\nID={first.lower()}\nPRETTY_NAME="{name}"\n'


def hostname_of(cvm: Cvm) -> str:
    """Tencent's default hostname: VM-<third octet>-<fourth octet>-<os>, e.g. VM-1-11-tencentos."""
    octets = cvm.private_ip.split(".")
    flavour = next((os for os in ("ubuntu", "tencentos", "centos") if os in cvm.os_name.lower()), "linux")
    return f"VM-{octets[2]}-{octets[3]}-{flavour}" if len(octets) == 4 else f"VM-{flavour}"


def cat(ctx: Context, args: list[str]) -> Result:
    files = {"/etc/os-release": os_release(ctx.cvm), "/usr/lib/os-release": os_release(ctx.cvm),
             "/etc/hostname": hostname_of(ctx.cvm) + "\n"}
    out, err, status = [], [], 0
    for path in args:
        if path in files:
            out.append(files[path])
        else:
            err.append(f"cat: {path}: No such file or directory\n")
            status = 1
    return Result(status, "".join(out), "".join(err))


def _ping_args(args: list[str]) -> tuple[int, str]:
    opts, operands = parse_options("ping", args, "c:W:i:qn", [])
    count = 4  # the real ping runs until interrupted without -c; the twin stops after 4 (documented)
    for opt, arg in opts:
        if opt == "-c":
            if not arg.isdigit() or int(arg) < 1:
                raise UsageError(f"ping: invalid argument: '{arg}': out of range: 1 <= value <= 9223372036854775807\n", 1)
            count = int(arg)
    if not operands:
        raise UsageError("ping: usage error: Destination address required\n", 2)
    return count, operands[-1]


def ping(ctx: Context, args: list[str]) -> Result:
    """``ping -c N -W T IP``: replies when ``ctx.reachable(IP)``, else 100% loss and exit 1."""
    try:
        count, target = _ping_args(args)
        ipaddress.ip_address(target)
    except UsageError as e:
        return Result(e.status, "", e.message)
    except ValueError:
        return Result(2, "", f"ping: {target}: Name or service not known\n")
    head = f"PING {target} ({target}) 56(84) bytes of data.\n"
    elapsed_ms = (count - 1) * 1000 + 2
    if not ctx.reachable(target):
        return Result(1, f"{head}\n--- {target} ping statistics ---\n"
                         f"{count} packets transmitted, 0 received, 100% packet loss, time {elapsed_ms}ms\n\n", "")
    times = [0.180 + 0.011 * ((seq * 7) % 5) for seq in range(1, count + 1)]
    lines = "".join(f"64 bytes from {target}: icmp_seq={seq} ttl=64 time={t:.3f} ms\n"
                    for seq, t in enumerate(times, start=1))
    avg = sum(times) / count
    mdev = (sum((t - avg) ** 2 for t in times) / count) ** 0.5
    return Result(0, f"{head}{lines}\n--- {target} ping statistics ---\n"
                     f"{count} packets transmitted, {count} received, 0% packet loss, time {elapsed_ms}ms\n"
                     f"rtt min/avg/max/mdev = {min(times):.3f}/{avg:.3f}/{max(times):.3f}/{mdev:.3f} ms\n", "")


def iptables_save(ctx: Context, args: list[str]) -> Result:
    """Empty ACCEPT filter table; a cluster node also shows kube-proxy's nat entry chains."""
    stamp = "Fri Nov 27 08:00:00 2026"
    out = [f"# Generated by iptables-save v1.8.4 on {stamp}\n"]
    if ctx.cvm.cluster_id:
        out += ["*nat\n", ":PREROUTING ACCEPT [0:0]\n", ":INPUT ACCEPT [0:0]\n", ":OUTPUT ACCEPT [0:0]\n",
                ":POSTROUTING ACCEPT [0:0]\n", ":KUBE-SERVICES - [0:0]\n", ":KUBE-POSTROUTING - [0:0]\n",
                '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n',
                '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n',
                '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING\n',
                "COMMIT\n", f"# Completed on {stamp}\n", f"# Generated by iptables-save v1.8.4 on {stamp}\n"]
    out += ["*filter\n", ":INPUT ACCEPT [0:0]\n", ":FORWARD ACCEPT [0:0]\n", ":OUTPUT ACCEPT [0:0]\n",
            "COMMIT\n", f"# Completed on {stamp}\n"]
    return Result(0, "".join(out), "")


def hostname(ctx: Context, args: list[str]) -> Result:
    return Result(0, hostname_of(ctx.cvm) + "\n", "")


def kernel_release(cvm: Cvm) -> str:
    lower = cvm.os_name.lower()
    if "ubuntu" in lower:
        return {"18.04": "4.15.0-213-generic", "20.04": "5.4.0-182-generic",
                "24.04": "6.8.0-31-generic"}.get(_version(cvm.os_name, "22.04")[:5], "5.15.0-107-generic")
    if "centos" in lower and "tencentos" not in lower:
        return "4.18.0-348.7.1.el8_5.x86_64" if _version(cvm.os_name, "7").startswith("8") else "3.10.0-1160.119.1.el7.x86_64"
    if "tencentos" in lower and _version(cvm.os_name, "3.1").startswith("2"):
        return "4.14.105-19-0024"
    return "5.4.119-19.0009.44"


def uname(ctx: Context, args: list[str]) -> Result:
    fields = {"-s": "Linux", "-n": hostname_of(ctx.cvm), "-r": kernel_release(ctx.cvm), "-m": "x86_64"}
    if args == ["-a"]:
        text = f"Linux {fields['-n']} {fields['-r']} #1 SMP x86_64 x86_64 x86_64 GNU/Linux"
    else:
        chosen = args or ["-s"]
        unknown = [a for a in chosen if a not in fields]
        if unknown:
            return Result(1, "", f"uname: invalid option -- '{unknown[0].lstrip('-')}'\nTry 'uname --help' for more information.\n")
        text = " ".join(fields[a] for a in chosen)
    return Result(0, text + "\n", "")


COMMANDS = {"systemctl": systemctl, "cat": cat, "ping": ping, "iptables-save": iptables_save,
            "hostname": hostname, "uname": uname}
