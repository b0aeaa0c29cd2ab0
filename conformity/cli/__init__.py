"""The ``usine`` command line: one group, one module per user's job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from conformity import __version__
from conformity.cli.agency_cmds import agency, label
from conformity.cli.catalog_cmds import coverage_cmd, referentials, validate, wave
from conformity.cli.driver_cmds import driver
from conformity.cli.pay_cmds import pay
from conformity.cli.run_cmd import run
from conformity.cli.sandbox_cmds import sandbox
from conformity.cli.submit_cmd import submit_cmd
from conformity.errors import UsineError


class UsineGroup(click.Group):
    """Turns usine's own errors into a clear message and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsineError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=UsineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="usine")
@click.option("--catalog", "catalog_root", type=click.Path(file_okay=False, path_type=Path), envvar="USINE_CATALOG",
              help="Catalog root holding referentials/ and waves/ (default: the embedded catalog).")
@click.pass_context
def cli(ctx: click.Context, catalog_root: Path | None) -> None:
    """usine — usine à labelliser: referentials, waves, conformity runs, labels and payments."""
    ctx.ensure_object(dict)
    ctx.obj["catalog_root"] = catalog_root


for command in (validate, referentials, wave, coverage_cmd, driver, sandbox, run, submit_cmd, pay, agency, label):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="usine")


if __name__ == "__main__":  # pragma: no cover
    main()
