"""The ``flask toucan`` command group; the commands themselves load when the CLI runs.

``init_app`` adds this group to ``app.cli`` and the ``flask.commands`` entry
point names it too (so ``flask toucan keygen`` works even when the app fails
to load: the key must exist before an app in signed mode starts). The
commands' bodies (:mod:`flask_toucan.commands`: key tools, the live check and
what they import) load only when the group is asked for a command, like
click's documented lazy group, so a web worker's start-up never pays for them.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

#: ``flask toucan <name>`` -> the command's name in :mod:`flask_toucan.commands`.
COMMANDS = {
    "check": "check",
    "jwks": "jwks_command",
    "keygen": "keygen",
    "mint": "mint",
    "sessions": "sessions_group",
}


class _ToucanGroup(AppGroup):
    """The ``flask toucan`` group: each command is imported when asked for.

    ``sandbox`` comes from the optional sandbox extra (``flask-toucan[sandbox]``:
    joserfc, its own Flask app, ~25 ms of imports) and is listed only when
    that extra is installed.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = {*super().list_commands(ctx), *COMMANDS}
        return sorted({*names, "sandbox"}) if _sandbox_command() is not None else sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        if cmd_name in COMMANDS:
            from . import commands  # deliberate: start-up time (see the module docstring)

            command: click.Command = getattr(commands, COMMANDS[cmd_name])
            return command
        return _sandbox_command() if cmd_name == "sandbox" else None


def _sandbox_command() -> click.Command | None:
    """``flask toucan sandbox``, or ``None`` without the sandbox extra."""
    try:
        from .sandbox.cli import sandbox_command
    except ImportError:  # the sandbox extra is not installed
        return None
    return sandbox_command


toucan_cli = _ToucanGroup("toucan", help="flask-toucan: signing keys, JWKS, debug tokens.")
