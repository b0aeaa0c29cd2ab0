"""Shared helpers of the CLI: catalog loading from the context, output to a file or the terminal."""

from __future__ import annotations

from pathlib import Path

import click

from conformity.catalog import Catalog, load_catalog
from conformity.catalog.crosscheck import Registered
from conformity.checks.packs import registered
from conformity.files import write_atomic


def get_catalog(ctx: click.Context, *, with_checks: bool = False) -> Catalog:
    """The catalog named by ``--catalog`` (or the embedded one), loaded once per command.

    ``with_checks`` (commands that judge: validate, run, agency): first register every pack's checks,
    so that the load also proves each check id a requirement names is registered. Commands that only
    read the data (specifications, diffs, payments) skip that import.
    """
    obj = ctx.find_root().obj
    if "catalog" not in obj:
        checks: Registered | None = registered() if with_checks else None
        obj["catalog"] = load_catalog(obj.get("catalog_root"), registered_checks=checks)
    catalog: Catalog = obj["catalog"]
    return catalog


def emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomic(output, text, shared=True)  # a specification, a diff, a listing: for others to read
        click.echo(f"wrote {output}", err=True)
