"""The twin host's answer to an SSH exec request: parse the command line, run emulated commands.

Called by the SSH server (twin/ssh/server.py) once per exec channel. It is not a shell: it
understands one program with arguments (shell quoting honoured, a leading ``sudo`` dropped since
the twin logs in as root), and sequences joined by ``&&``, ``||`` and ``;``. Pipes, redirections,
subshells, globbing and variables are not emulated: such a line exits 2 with a message saying so,
so a flow that needs them fails loudly on the twin instead of silently differing from a real host.
An unknown program exits 127 with bash's "command not found".
"""

from __future__ import annotations

import logging
import shlex

from twin.ssh.commands import COMMANDS, Context, Result

log = logging.getLogger(__name__)

_SEQUENCE_OPERATORS = {"&&", "||", ";"}


def _tokenize(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _unsupported(tokens: list[str], line: str) -> str | None:
    for token in tokens:
        if token in _SEQUENCE_OPERATORS:
            continue
        if token and set(token) <= set("();<>|&"):
            return f"twin ssh: '{token}' is not emulated (only single commands joined by &&, || or ;)"
    if "$" in line or "`" in line or "*" in line:
        return "twin ssh: variables, command substitution and globbing are not emulated"
    return None


def _run_simple(argv: list[str], ctx: Context) -> Result:
    while argv and argv[0] == "sudo":
        argv = [a for a in argv[1:] if a not in ("-n", "-E")] if len(argv) > 1 else []
    if not argv:
        return Result(0)
    program = argv[0].rsplit("/", 1)[-1]
    command = COMMANDS.get(program)
    if command is None:
        return Result(127, "", f"bash: {argv[0]}: command not found\n")
    try:
        return command(ctx, argv[1:])
    except Exception:  # an emulation bug must answer like a crashing tool, not kill the session
        log.exception("twin ssh command %r failed", program)
        return Result(1, "", f"{program}: internal error in the twin\n")


def run_command_line(line: str, ctx: Context) -> Result:
    """Run ``line`` against ``ctx.cvm`` and return what the real host would have answered."""
    try:
        tokens = _tokenize(line)
    except ValueError as e:  # unbalanced quotes
        return Result(2, "", f"bash: -c: line 1: syntax error: {e}\n")
    problem = _unsupported(tokens, line)
    if problem:
        return Result(2, "", problem + "\n")
    stdout, stderr, status = [], [], 0
    operator = ";"
    argv: list[str] = []
    for token in tokens + [";"]:
        if token not in _SEQUENCE_OPERATORS:
            argv.append(token)
            continue
        should_run = operator == ";" or (operator == "&&") == (status == 0)
        if argv and should_run:
            result = _run_simple(argv, ctx)
            stdout.append(result.stdout)
            stderr.append(result.stderr)
            status = result.exit_status
        operator, argv = token, []
    return Result(status, "".join(stdout), "".join(stderr))
