"""The ``usine`` command line: one group, one module per user's job."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click

from conformity import __version__
from conformity.errors import EXIT_INPUT, UsineError

#: each command: its module and object, imported when the command is asked for, so that a command pays for its own
#: imports only (``usine validate`` loads neither DuckDB nor the agency's web stack: 0.3-0.5 s of each start)
COMMANDS = {
    "validate": ("conformity.cli.catalog_cmds", "validate"),
    "referentials": ("conformity.cli.catalog_cmds", "referentials"),
    "wave": ("conformity.cli.catalog_cmds", "wave"),
    "coverage": ("conformity.cli.catalog_cmds", "coverage_cmd"),
    "driver": ("conformity.cli.driver_cmds", "driver"),
    "sandbox": ("conformity.cli.sandbox_cmds", "sandbox"),
    "run": ("conformity.cli.run_cmd", "run"),
    "submit": ("conformity.cli.submit_cmd", "submit_cmd"),
    "pay": ("conformity.cli.pay_cmds", "pay"),
    "agency": ("conformity.cli.agency_cmds", "agency"),
    "label": ("conformity.cli.label_cmds", "label"),
}


class UsineGroup(click.Group):
    """Turns usine's own errors into a clear message and their exit code; imports a command when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module, name = COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(module), name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsineError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:  # Ctrl-C: 128 + SIGINT, as shells say it, never 1 (which is a failed MUST)
            click.echo("\ninterrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:  # the reader went away (``usine … | head``): nothing to say, as a tool killed by SIGPIPE
            _silence_stdout()
            ctx.exit(EXIT_BROKEN_PIPE)
        except OSError as exc:  # a path the command was given that cannot be read or written: said, not a traceback
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(EXIT_INPUT)


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush of what is left does not fail again
    on the closed pipe (Python's documentation, "Note on SIGPIPE")."""
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


#: the exit code of a command whose output pipe closed: 128 + SIGPIPE, as shells report a tool the signal ended
EXIT_BROKEN_PIPE = 141

#: the exit code of a command interrupted by Ctrl-C
EXIT_INTERRUPTED = 130


@click.group(cls=UsineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="usine")
@click.option("--catalog", "catalog_root", type=click.Path(file_okay=False, path_type=Path), envvar="USINE_CATALOG",
              help="Catalog root holding referentials/ and waves/ (default: the embedded catalog).")
@click.pass_context
def cli(ctx: click.Context, catalog_root: Path | None) -> None:
    """usine — usine à labelliser: referentials, waves, conformity runs, labels and payments."""
    ctx.ensure_object(dict)
    ctx.obj["catalog_root"] = catalog_root


def main() -> None:
    from conformity.paths import keep_hypothesis_cache_aside

    keep_hypothesis_cache_aside()  # nothing of Hypothesis's left in the folder a command runs in
    cli(prog_name="usine")


if __name__ == "__main__":  # pragma: no cover
    main()
