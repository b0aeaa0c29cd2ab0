"""``usine agency serve`` (the agency as a web service) and its accounts: ``usine agency account add|token``."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conformity.cli.agency_options import key_option, same_person_option, trust_option
from conformity.cli.params import BEARER_TOKEN, LedgerPath

if TYPE_CHECKING:
    from conformity.agency.service.accounts import Actor
    from conformity.db.connection import Database

database_option = click.option(
    "--database", "database", envvar="USINE_REGISTRY", metavar="PATH|postgresql://…",
    help="The registry: a SQLite file (default $USINE_HOME/agency/registry.sqlite3) or a PostgreSQL URL "
         "(postgresql://user:password@host/db; the password may come from ~/.pgpass or $PGPASSWORD).")


def _database(database: str | None) -> Database:
    from conformity.agency.submit import default_registry
    from conformity.db.connection import Database

    return Database(database or default_registry())


def _existing(database: str | None) -> Database:
    """The registry an account command acts on, which must be there: a mistyped --database made a new, empty one
    (folders, file and schema), or wrote the schema into an empty file, then said there was no such account."""
    from conformity.agency.submit import registry_exists
    from conformity.errors import InputError

    db = _database(database)
    if not registry_exists(db) or (db.path is not None and db.path.stat().st_size == 0):  # empty: SQLite's new one
        raise InputError("no registry here: give --database the registry the accounts are in (usine agency account "
                         "add creates one)", file=str(db), where="--database")
    return db


@click.command("serve")
@database_option
@trust_option
@key_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8400, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=int,
              help="Worker processes (several share the database; put them behind a reverse proxy terminating TLS).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Uploads and decision files (default $USINE_HOME/agency/service).")
@click.option("--ledger", type=LedgerPath(),
              help="The payment ledger (SQLite), for the progress funnel.")
@click.option("--max-upload-mib", default=64, show_default=True, type=click.IntRange(1, 4096))
@click.option("--vendor-storage-mib", default=2048, show_default=True, type=click.IntRange(1, 1 << 30),
              help="The bytes of one vendor's uploads the agency keeps (an upload past it: 413 vendor-storage-full).")
@click.option("--refused-kept-days", default=30, show_default=True, type=click.IntRange(1, 3650),
              help="Days the bundle of a refused upload is kept before it is deleted (its findings stay).")
@same_person_option
@click.option("--insecure-cookies", is_flag=True,
              help="Send session cookies over plain HTTP too (development only; behind TLS never use it).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), help="Serve HTTPS with this certificate.")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), help="…and this private key.")
@click.option("--witness-sandbox", metavar="URL",
              help="Offer witnessed runs, run against this sandbox of the agency's (its trace key among --trust).")
@click.option("--witness-sandbox-token", envvar="USINE_WITNESS_SANDBOX_TOKEN", metavar="TOKEN", type=BEARER_TOKEN,
              help="The sandbox's admin token (mints a harness token per run); or $USINE_WITNESS_SANDBOX_TOKEN.")
@click.option("--witness-sandbox-ca", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The CA certificate of that sandbox's TLS server, when not a public one.")
@click.option("--witness-driver-ca", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="More trust anchors for vendors' driver endpoints (beside the system's).")
@click.option("--witness-timeout", default=1800, show_default=True, type=click.IntRange(60, 86400),
              help="Seconds a witnessed run may take.")
@click.option("--witness-private-addresses", is_flag=True,
              help="Let driver endpoints resolve to loopback or private addresses (one-site setups, tests).")
@click.pass_context
def serve_cmd(ctx: click.Context, database: str | None, trust: tuple[Path, ...], key_path: Path | None, host: str,
              port: int, workers: int, data_dir: Path | None, ledger: Path | None, max_upload_mib: int,
              vendor_storage_mib: int, refused_kept_days: int, same_person: dt.timedelta, insecure_cookies: bool,
              tls_cert: Path | None,
              tls_key: Path | None, witness_sandbox: str | None,
              witness_sandbox_token: str | None, witness_sandbox_ca: Path | None, witness_driver_ca: Path | None,
              witness_timeout: int, witness_private_addresses: bool) -> None:
    """Serve the agency: vendors' uploads and API, reviewers' and deciders' pages, the public registry.

    One command on the embedded default (SQLite); --database postgresql://… and --workers N for
    production, behind a reverse proxy that terminates TLS. OpenAPI at /openapi.json.
    """
    import uvicorn

    from conformity.cli.agency_cmds import _catalog
    from conformity.cli.common import check_listen, check_tls

    catalog = _catalog(ctx)  # checked now: a bad catalog stops here, not in a worker
    if (tls_cert is None) != (tls_key is None):  # else uvicorn stops on OpenSSL's "PEM lib", naming neither
        from conformity.errors import InputError

        raise InputError("--tls-cert and --tls-key go together: give the certificate and its private key",
                         where="--tls-cert/--tls-key")
    check_tls(tls_cert, tls_key)
    check_listen(host, port)
    settings = _settings(database, trust, key_path, data_dir, ledger, max_upload_mib, insecure_cookies)
    if vendor_storage_mib < max_upload_mib:
        from conformity.errors import InputError

        raise InputError(f"{vendor_storage_mib} MiB is less than one bundle (--max-upload-mib {max_upload_mib}): no "
                         "vendor could upload", where="--vendor-storage-mib")
    settings |= {"vendor_storage": str(vendor_storage_mib * 1024 * 1024), "refused_kept_days": str(refused_kept_days),
                 "same_person_days": str(same_person.days)}
    if not witness_sandbox:  # the witness options given on the command line, without it, would be silently ignored
        given = [f"--{name.replace('_', '-')}" for name in ("witness_sandbox_token", "witness_sandbox_ca",
                                                           "witness_driver_ca", "witness_timeout",
                                                           "witness_private_addresses")
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"{', '.join(given)} configure witnessed runs, which only --witness-sandbox URL "
                                   "offers: give it too, or leave them out")
    if witness_sandbox:
        if not witness_sandbox_token:
            raise click.UsageError("--witness-sandbox needs --witness-sandbox-token (or USINE_WITNESS_SANDBOX_TOKEN)")
        settings |= {"witness_sandbox": witness_sandbox, "witness_token": witness_sandbox_token,
                     "witness_sandbox_ca": str(witness_sandbox_ca or ""), "witness_driver_ca": str(witness_driver_ca or ""),
                     "witness_timeout": str(witness_timeout),
                     "witness_private": "1" if witness_private_addresses else "0"}
    if ledger is not None:  # else the progress page failed on each request
        from conformity.agency.progress import check_ledger

        check_ledger(ledger)
    from conformity.agency.registry import Registry

    _usable_files(Path(settings["key"]), Path(settings["data"]))  # before the registry is made: a refusal leaves none
    with Registry(_database(database)):  # migrated now: a database that cannot be used stops here, not in a worker
        pass
    if witness_sandbox:  # reached now too: unreachable, a worker died at start and uvicorn started another, for ever
        from conformity.agency.service.factory import witness_from_env
        from conformity.files import trust_anchor

        witness_from_env(settings)
        if witness_driver_ca is not None:  # else read at each witnessed run's first call
            trust_anchor(witness_driver_ca, "--witness-driver-ca")
    os.environ.update({f"USINE_SERVE_{k.upper()}": v for k, v in settings.items()})
    root = ctx.find_root().obj.get("catalog_root") if ctx.find_root().obj else None
    if root:
        os.environ["USINE_CATALOG"] = str(root)
    del catalog
    scheme = "https" if tls_cert else "http"
    click.echo(f"usine agency service on {scheme}://{host}:{port}/ (database {_database(database)}, {workers} "
               f"worker(s)); Ctrl-C stops it", err=True)
    uvicorn.run("conformity.agency.service.factory:app_from_env", factory=True, host=host, port=port, workers=workers,
                ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
                proxy_headers=True, log_level="warning")


def _usable_files(key: Path, data: Path) -> None:
    """The agency's key (created if missing) and the data folder, usable now: a key that cannot be read or created
    failed every worker's start, and with several workers uvicorn started another, for ever; a data folder that
    cannot be written failed each upload."""
    import tempfile

    from conformity.agency.submit import agency_signing_key
    from conformity.errors import InputError
    from conformity.files import private_dir

    agency_signing_key(key)
    try:
        private_dir(data)
        fd, probe = tempfile.mkstemp(prefix=".usine-probe.", dir=data)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{data}: cannot write there ({exc.strerror or exc})", where="--data") from exc


def _settings(database: str | None, trust: tuple[Path, ...], key_path: Path | None, data_dir: Path | None,
              ledger: Path | None, max_upload_mib: int, insecure_cookies: bool) -> dict[str, str]:
    from conformity.agency.submit import agency_dir, default_agency_key, default_registry, trusted_sandbox_keys

    trusted_sandbox_keys(trust)  # refused now when there is none
    return {"database": str(database or default_registry()),
            "trust": os.pathsep.join(str(t) for t in trust) if trust else "",
            "key": str(key_path or default_agency_key()), "data": str(data_dir or agency_dir() / "service"),
            "ledger": str(ledger or ""), "max_upload": str(max_upload_mib * 1024 * 1024),
            "secure_cookies": "0" if insecure_cookies else "1"}


def _cli_actor() -> Actor:
    """Who the server's command line acts as, in the audit log."""
    from conformity.agency.service.accounts import OPERATOR

    return OPERATOR


@click.group("account")
def account() -> None:
    """Accounts of the agency service: vendors (API tokens) and staff (reviewer, decider, admin)."""


@account.command("add")
@click.argument("login")
@click.option("--name", required=True, help="The person's or vendor's name (reviews are signed with it).")
@click.option("--role", type=click.Choice(["vendor", "reviewer", "decider", "admin"]), required=True)
@click.option("--vendor", "vendor_id", help="The vendor id (vendor accounts only).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (staff must have one).")
@click.option("--temporary", is_flag=True, help="The password is for someone else: they change it at their first "
                                                "sign-in, before anything else (the web admin page always does so).")
@database_option
def account_add(login: str, name: str, role: str, vendor_id: str | None, password_stdin: bool, temporary: bool,
                database: str | None) -> None:
    """Create an account. Exit 0 created, 2 refused (nothing written)."""
    from conformity.agency.registry import Registry
    from conformity.agency.service import accounts

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with Registry(_database(database)) as reg:
        acct = accounts.create_account(reg.db, login, name, role, vendor_id=vendor_id, password=password,
                                       temporary=temporary, by=_cli_actor())
    click.echo(f"account {acct.login} ({acct.role}{', vendor ' + vendor_id if vendor_id else ''}) created")


@account.command("token")
@click.argument("login")
@click.option("--name", "token_name", default="api", show_default=True, help="What the token is for.")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(["submit", "read", "review", "decide", "admin"]),
              help="Repeatable (default: every scope of the account's role: vendor submit and read; reviewer "
                   "review; decider decide; admin review, decide and admin).")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1, 3650))
@database_option
def account_token(login: str, token_name: str, scopes: tuple[str, ...], days: int, database: str | None) -> None:
    """Issue an API token (vendor: uploads; staff: /api/v1/staff actions); printed once (only its hash is kept)."""
    from conformity.agency.registry import Registry
    from conformity.agency.service import accounts
    from conformity.errors import InputError

    with Registry(_existing(database)) as reg:
        acct = accounts.account(reg.db, login)
        if acct is None:
            raise InputError(f"no active account {login!r}", where="LOGIN")
        token = accounts.create_token(reg.db, acct, token_name, tuple(scopes) or None, days, by=_cli_actor())
    click.echo(token)


@account.command("reset-password")
@click.argument("login")
@click.option("--password-stdin", is_flag=True, required=True,
              help="Read the temporary password from standard input (never an argument: the process list shows those).")
@database_option
def account_reset_password(login: str, password_stdin: bool, database: str | None) -> None:
    """Set a temporary password for an account whose owner lost theirs, an admin's included (the web admin page sets
    no admin's): its sessions end, its API tokens are revoked, its owner changes it at the next sign-in. Exit 0 set,
    2 refused (nothing changed)."""
    from conformity.agency.registry import Registry
    from conformity.agency.service import accounts

    password = sys.stdin.readline().rstrip("\n")
    with Registry(_existing(database)) as reg:
        what = accounts.set_temporary_password(reg.db, login, password, _cli_actor(), protected_too=True)
    click.echo(f"{login}: {what}")


@account.command("disable")
@click.argument("login")
@database_option
def account_disable(login: str, database: str | None) -> None:
    """Disable an account, an admin's included (the web admin page disables any but one's own): its sessions end,
    its API tokens are revoked. Exit 0 done (or already disabled), 2 no such account."""
    _set_disabled(login, True, database)


@account.command("enable")
@click.argument("login")
@database_option
def account_enable(login: str, database: str | None) -> None:
    """Enable a disabled account again (an admin every other admin disabled too): its former API tokens stay
    revoked. Exit 0 done (or already enabled), 2 no such account."""
    _set_disabled(login, False, database)


def _set_disabled(login: str, disabled: bool, database: str | None) -> None:
    from conformity.agency.registry import Registry
    from conformity.agency.service import accounts

    with Registry(_existing(database)) as reg:
        what = accounts.set_disabled(reg.db, login, disabled, _cli_actor())
    click.echo(f"{login}: {what}")


@click.group("webhook")
def webhook() -> None:
    """Webhooks for the payment agency: label events POSTed, signed (Standard Webhooks), retried."""


@webhook.command("add")
@click.argument("url")
@database_option
def webhook_add(url: str, database: str | None) -> None:
    """Register a receiver; its signing secret is printed once (give it to the receiver)."""
    from conformity.agency.registry import Registry
    from conformity.agency.service import audit
    from conformity.agency.service.webhooks import add_webhook

    with Registry(_database(database)) as reg:
        ident, secret = add_webhook(reg.db, url)
        audit.record(reg.db, "cli", "admin", "webhook-added", str(ident), url, "command line")
    click.echo(f"webhook {ident}: {url}", err=True)
    click.echo(secret)
