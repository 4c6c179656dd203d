"""The commands a twin CVM answers over SSH, by program name.

Each entry maps a program to ``fn(ctx, args) -> Result`` (see base.py). twin/ssh/shell.py
looks programs up here; anything missing exits 127 as bash does for an unknown command.
"""

from __future__ import annotations

from twin.ssh.commands import content, disks, gpu, mounts, system
from twin.ssh.commands.base import Command, Context, Result

COMMANDS: dict[str, Command] = {**disks.COMMANDS, **mounts.COMMANDS, **system.COMMANDS, **content.COMMANDS,
                                **gpu.COMMANDS}

__all__ = ["COMMANDS", "Command", "Context", "Result"]
