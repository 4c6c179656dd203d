"""SSH on every twin CVM (issue 4, "SSH hosts"): what the flows see when they log into a host.

``SshFleet`` (fleet.py) serves each CVM of the world on its own port of 127.0.0.1 with a stable
host key (hostkeys.py), key-only login (server.py) and the commands the flows run, answered from the
world model (shell.py, commands/). The cloud twin owns one fleet and serves ``fleet.mapping()`` as
``GET /_twin/ssh``.
"""

from twin.ssh.fleet import SshFleet
from twin.ssh.hostkeys import derive_host_key, host_key_line

__all__ = ["SshFleet", "derive_host_key", "host_key_line"]
