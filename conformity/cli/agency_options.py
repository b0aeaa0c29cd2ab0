"""Options shared by the ``usine agency`` commands, declared once."""

from __future__ import annotations

from pathlib import Path

import click

trust_option = click.option(
    "--trust", "trust", multiple=True, envvar="USINE_TRUSTED_SANDBOX_KEYS", type=click.Path(path_type=Path),
    help="Trusted sandbox public key (PEM) or folder of them; repeatable "
         "(default: $USINE_HOME/agency/trusted-sandbox-keys/).")


def _registry_target(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | str | None:
    """A PostgreSQL URL stays a URL; anything else is a SQLite file's path."""
    from conformity.db.connection import is_url

    if value is None or is_url(value):
        return value
    return Path(value)


registry_option = click.option(
    "--registry", "registry_path", envvar="USINE_REGISTRY", callback=_registry_target, metavar="PATH|postgresql://…",
    help="Registry database: a SQLite file (default: $USINE_HOME/agency/registry.sqlite3) or a PostgreSQL URL.")
key_option = click.option(
    "--agency-key", "--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
    help="The agency's Ed25519 private key (PEM; default $USINE_HOME/agency/agency-key.pem, created on first use); "
         "--key is the older spelling.")
