"""Options shared by the ``usine agency`` commands, declared once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from conformity.agency.persons import SAME_PERSON_PERIOD

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


def _days(ctx: click.Context, param: click.Parameter, value: int) -> dt.timedelta:
    return dt.timedelta(days=value)


#: the four-eyes rule's same-person period (``conformity.agency.persons``), the same for the service and the command
#: line: a review or decision made with ``usine agency review|decide`` counts people as the service counts them
same_person_option = click.option(
    "--same-person-days", "same_person", default=SAME_PERSON_PERIOD.days, show_default=True,
    type=click.IntRange(0, 3650), callback=_days,
    help="Days an account and the admin who set its password (reset or creation) count as one person for the "
         "four-eyes rule (0: never); the same for `usine agency serve`, `review` and `decide` on one registry.")
