"""Shared helpers of the CLI: catalog loading from the context, atomic output files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from conformity.catalog import Catalog, load_catalog
from conformity.checks import registered_check_ids
from conformity.checks.packs import load_pack_checks


def get_catalog(ctx: click.Context, *, with_checks: bool = True) -> Catalog:
    """The catalog named by ``--catalog`` (or the embedded one), loaded once per command.

    ``with_checks``: first register every pack's checks, so that the load also proves each check id
    a requirement names is registered.
    """
    obj = ctx.find_root().obj
    if "catalog" not in obj:
        registered: set[str] | None = None
        if with_checks:
            load_pack_checks(obj.get("catalog_root"))
            registered = registered_check_ids()
        obj["catalog"] = load_catalog(obj.get("catalog_root"), registered_checks=registered)
    return obj["catalog"]


def write_atomic(path: Path, text: str) -> None:
    """Write text so that readers see the old file or the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomic(output, text)
        click.echo(f"wrote {output}", err=True)
