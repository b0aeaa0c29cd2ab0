"""``usine sandbox``: serve the sandbox, write its OpenAPI description."""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
from pathlib import Path

import click

from conformity.cli.common import check_listen, check_tls, emit, output_folder, output_option
from conformity.cli.params import BEARER_TOKEN, Bound, Seconds

DAY = 86400
#: why each bound option of ``sandbox serve`` takes the range it takes (said with the refusal of a value outside it)
TTL_WHY = "a session is served this long after it was created: a minute at least for a scenario to be played, 30 days at most"
RETENTION_WHY = ("an expired session's trace, documents and messages are kept this long for its harness to export "
                 "them, and so that a request still in flight when it expired is refused, never written after the "
                 "sweep deleted the session: an hour at least, 400 days at most")
COUNT_WHY = "0 would refuse every vendor's software everything (the admin token is never bounded)"
SESSION_BYTES_WHY = ("a session must keep at least a few exchanges, and its trace is read and signed in memory when it "
                     "is exported: 1 KiB to 1 TiB")
VENDOR_BYTES_WHY = "a vendor's software must keep at least a session's first exchanges: 1 KiB to 1 PiB"


@click.group()
def sandbox() -> None:
    """The sandbox: the national infrastructure imitated."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=click.IntRange(0, 65535))
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM certificate (HTTPS).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM private key (HTTPS).")
@click.option("--test-pki", "test_pki", type=click.Path(file_okay=False, path_type=Path),
              help="Serve HTTPS with this test PKI (created if missing), plus one listener per bad server software "
                   "must refuse (self-signed, untrusted root, expired, not yet valid, wrong host, incomplete chain, "
                   "weak key or signature, TLS 1.0/1.1, weak cipher suites), published at /admin/listeners; give its "
                   "ca.pem to the harness (--sandbox-ca).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="State folder (database, keys, events). Default: a new temporary folder.")
@click.option("--admin-token", envvar="USINE_SANDBOX_ADMIN_TOKEN", type=BEARER_TOKEN, help="Admin API token (default: generated).")
@click.option("--schema", "schemas", multiple=True, metavar="NAME[=PATH]",
              help="An official schema a pack's services also validate against (repeatable): NAME=PATH, or NAME for "
                   "the copy the pack finds (../shared/schemas or $USINE_SHARED_SCHEMAS). The installed packs' "
                   "schemas are listed by `usine sandbox schemas`.")
@click.option("--seal-every", type=click.IntRange(1, 1_000_000), default=1000, show_default=True,
              help="Data-received events per signed segment (also sealed every --seal-seconds, on "
                   "POST /admin/events/seal and at shutdown).")
@click.option("--seal-seconds", type=Seconds(DAY, minimum=0.1), default=60.0, show_default=True,
              help="Longest time an emitted event waits for its signed segment.")
@click.option("--retry-after", type=click.IntRange(0, 3600), default=1, show_default=True,
              help="Seconds an injected 429/503 announces in Retry-After when the test session's fault does not say "
                   "(a 1 s wait proves the software waits as announced just as well as 5 s).")
@click.option("--session-ttl", type=Bound(60, 30 * DAY, TTL_WHY), default=6 * 3600, show_default=True,
              help="Seconds a test session is served after it was created (then 410 session-expired; it counts "
                   "among its vendor's live sessions until then, unless closed before).")
@click.option("--session-retention", type=Bound(3600, 400 * DAY, RETENTION_WHY), default=7 * 86400, show_default=True,
              help="Seconds an expired session's data (trace, documents, messages, tokens) is kept: then swept.")
@click.option("--vendor-live-sessions", type=Bound(1, 100_000, COUNT_WHY), default=32, show_default=True,
              help="Live test sessions (open, unexpired) one vendor's software may hold at once (harness tokens; "
                   "beyond: 429 with Retry-After). The runner drives 6 at once.")
@click.option("--vendor-runs-per-hour", type=Bound(1, 100_000, COUNT_WHY), default=30, show_default=True,
              help="Runs one vendor's software may create in an hour (beyond: 429 with Retry-After).")
@click.option("--vendor-runs-per-day", type=Bound(1, 1_000_000, COUNT_WHY), default=200, show_default=True,
              help="Runs one vendor's software may create in a day (beyond: 429 with Retry-After).")
@click.option("--session-recorded-bytes", type=Bound(1024, 2**40, SESSION_BYTES_WHY), default=64 * 1024 * 1024, show_default=True,
              help="Bytes one test session may make the sandbox keep (trace, documents, messages); beyond, its "
                   "requests and notes are refused 413 session-recording-full, unrecorded.")
@click.option("--vendor-recorded-bytes", type=Bound(1024, 2**50, VENDOR_BYTES_WHY), default=4 * 1024 * 1024 * 1024,
              show_default=True, help="Bytes one vendor's software's sessions may make the sandbox keep until they "
                                      "are swept; beyond, it opens no new session (429).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes serving the test sessions on the port (more than one needs --database: a "
                   "vendor's requests may reach any of them). With several, the production role (installations, "
                   "data-received events) answers 503: serve it from a one-worker sandbox.")
@click.option("--threads", type=click.IntRange(1, 256),
              help="Threads each worker hands blocking work to (the store's PostgreSQL round trips, plain-function "
                   "routes); default: 4 with --database, anyio's 40 on SQLite (where the store's calls need none). "
                   "More only helps when PostgreSQL is far away: a thread waits for one round trip at a time.")
@click.option("--database", envvar="USINE_SANDBOX_DATABASE",
              help="The shared store, postgresql://USER:PASSWORD@HOST/DB (default: SQLite in the state folder, one "
                   "process).")
def serve(host: str, port: int, tls_cert: Path | None, tls_key: Path | None, test_pki: Path | None,
          data_dir: Path | None, admin_token: str | None, schemas: tuple[str, ...], seal_every: int,
          seal_seconds: float, retry_after: int, session_ttl: int, session_retention: int, vendor_live_sessions: int,
          vendor_runs_per_hour: int, vendor_runs_per_day: int, session_recorded_bytes: int,
          vendor_recorded_bytes: int, workers: int, threads: int | None,
          database: str | None) -> None:
    """Serve the sandbox until interrupted."""
    import uvicorn

    from sandbox import plugins
    from sandbox.app import create_app
    from sandbox.config import SandboxConfig
    from sandbox.schemas import chosen
    from sandbox.server import Listeners, add_test_listeners, serve_workers, uvicorn_config
    from sandbox.tls import make_test_pki

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if test_pki and tls_cert:
        raise click.UsageError("--test-pki brings its own certificate: do not also give --tls-cert")
    from conformity.db.connection import is_url

    if database is not None and not is_url(database):
        raise click.UsageError(f"--database takes a postgresql:// URL, not {database!r} (SQLite is the default: "
                               "the state folder's sandbox.sqlite3)")
    if workers > 1 and database is None:
        raise click.UsageError(f"--workers {workers} needs a store the worker processes share: --database "
                               "postgresql://… (SQLite, the default, serves one process)")
    try:
        official = chosen(schemas, plugins.schemas())
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--schema") from None
    check_tls(tls_cert, tls_key)
    check_listen(host, port)
    temporary = data_dir is None
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="usine-sandbox-"))
    from conformity.files import hold_exclusive

    try:
        # one process serves a state folder: its events log is written by one writer, which keeps the chain of signed
        # segments in memory (two served the same folder: both answered 201, and the segments they sealed over each
        # other's lines were refused by the payment run, the events left unpaid)
        hold_exclusive(data_dir / "serve.lock", f"the sandbox state folder {data_dir}")
        config = SandboxConfig(data_dir=data_dir, admin_token=admin_token or secrets.token_urlsafe(24),
                               schemas=official, seal_every=seal_every, seal_seconds=seal_seconds,
                               retry_after=retry_after, database=database, workers=workers, threads=threads,
                               session_ttl=session_ttl, session_retention=session_retention,
                               vendor_live_sessions=vendor_live_sessions,
                               vendor_runs_per_hour=vendor_runs_per_hour, vendor_runs_per_day=vendor_runs_per_day,
                               session_recorded_bytes=session_recorded_bytes,
                               vendor_recorded_bytes=vendor_recorded_bytes)
        app = create_app(config)
        pki = make_test_pki(test_pki) if test_pki else None
    except BaseException:
        if temporary:  # the temporary state folder of a sandbox that never served: nothing in it to keep
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    if pki is not None:
        tls_cert, tls_key = pki.server_cert, pki.server_key
    scheme = "https" if tls_cert else "http"
    listeners = Listeners({"trusted": f"{scheme}://{host}:{port}"})
    if pki is not None:
        add_test_listeners(app, host, pki, listeners)
    app.state.listeners = dict(listeners.urls)
    from conformity.db.connection import redact

    store = f"PostgreSQL {redact(database)}" if database else "SQLite"
    click.echo(f"usine sandbox on {listeners.urls['trusted']}  ({workers} worker(s), store: {store}, state: {data_dir})",
               err=True)
    from sandbox.tls import CLASSES

    for name, url in listeners.urls.items():
        if name != "trusted":
            click.echo(f"  {name:<18} {url}  ({CLASSES[name].what})", err=True)
    if pki is not None:
        click.echo(f"  trust anchor for the harness: --sandbox-ca {pki.ca_cert}", err=True)
    click.echo(f"  trace signing key: {config.trace_key_path.with_name('trace-signing.pub.pem')}", err=True)
    click.echo(f"  events: {config.events_path} (signed segments beside it; infrastructure keys: "
               f"{config.infrastructure_keys_path})", err=True)
    if not admin_token:
        click.echo(f"admin token: {config.admin_token}", err=True)
    try:
        if workers > 1:
            serve_workers(config, host, port, dict(listeners.urls), tls_cert, tls_key)
        else:
            uvicorn.Server(uvicorn_config(app, host, port, tls_cert, tls_key)).run()
    finally:
        listeners.stop()


@sandbox.command("harness-token")
@click.option("--sandbox", "sandbox_url", required=True, help="The sandbox's URL.")
@click.option("--admin-token", envvar="USINE_SANDBOX_ADMIN_TOKEN", required=True, type=BEARER_TOKEN,
              help="The sandbox's admin token (env USINE_SANDBOX_ADMIN_TOKEN; `usine sandbox serve` prints it at start).")
@click.option("--sandbox-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CA certificate of the sandbox when it serves HTTPS with a private CA.")
@click.option("--vendor", "vendor_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The vendor manifest (vendor.toml) of the software the token is for.")
@click.option("--days", default=90, show_default=True, type=click.IntRange(1, 400))
def harness_token(sandbox_url: str, admin_token: str, sandbox_ca: Path | None, vendor_path: Path, days: int) -> None:
    """Issue a harness token bound to one vendor's software (printed on stdout).

    Sessions created with it are stamped with that vendor and software inside the signed traces;
    the token cannot see other vendors' sessions, installations or events.
    """
    import ssl

    from conformity.files import trust_anchor
    from conformity.harness.sandbox_access import SandboxAccess, SandboxUnavailable
    from conformity.harness.vendor import load_vendor

    vendor = load_vendor(vendor_path)
    verify: ssl.SSLContext | bool = trust_anchor(sandbox_ca, "--sandbox-ca") if sandbox_ca else True
    access = SandboxAccess(base_url=sandbox_url.rstrip("/"), token=admin_token, verify=verify)
    body = access.issue_harness_token(vendor.vendor_id, vendor.software_id, days)
    if body is None:
        raise SandboxUnavailable(f"the sandbox at {sandbox_url} refused: 403, the token given is not its admin token "
                                 "(only the admin token issues harness tokens)")
    click.echo(f"harness token for {vendor.vendor_id} / {vendor.software_id}, valid until {body['expires']}", err=True)
    click.echo(body["token"])


@sandbox.command("openapi")
@output_option
def openapi(output: Path | None) -> None:
    """Print the sandbox's OpenAPI description (kept in the repo as sandbox/openapi.json)."""
    from sandbox.app import create_app
    from sandbox.config import SandboxConfig

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(SandboxConfig(data_dir=Path(tmp), admin_token="x"))
        doc = app.openapi()
        app.state.store.close()
    emit(json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n", output)


@sandbox.command("schemas")
def schemas_cmd() -> None:
    """List the official schemas the installed packs' services can validate against (serve --schema NAME[=PATH])."""
    from sandbox import plugins

    for schema in plugins.schemas().values():
        found = schema.locate()
        click.echo(f"{schema.name}\t{found if found else 'not found locally: give --schema ' + schema.name + '=PATH'}"
                   f"\t{schema.what}")


@sandbox.command("pki")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              callback=output_folder, help="Folder for the PEM files (created if needed).")
@click.option("--force", is_flag=True, help="Regenerate even if the folder already holds a usable test PKI.")
def pki(out_dir: Path, force: bool) -> None:
    """Write a test CA, a server certificate it signs, and one bad certificate per class software must refuse
    (test material only)."""
    from sandbox.tls import make_test_pki

    made = make_test_pki(out_dir, force=force)
    for role, path in made.files().items():
        click.echo(f"{role:15} {path}")
    click.echo(f"serve with: usine sandbox serve --tls-cert {made.server_cert} --tls-key {made.server_key}", err=True)
