"""``usine driver init``: write a driver skeleton a vendor copies to start."""

from __future__ import annotations

from pathlib import Path

import click

from conformity.cli.common import get_catalog, output_folder


@click.group()
def driver() -> None:
    """Your software's driver: a skeleton to start from."""


@driver.command("init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), callback=output_folder)
@click.option("--lang", type=click.Choice(["python", "javascript"]), required=True, help="The driver's language.")
@click.option("--wave", "wave_id", help="Declare the actions of this wave (default: every action of the catalog).")
@click.option("--category", "-c", help="With --wave: the category whose actions to declare, written into vendor.toml (default: every "
                   "category's actions, the category left to fill in).")
@click.option("--force", is_flag=True, help="Overwrite files the folder already has.")
@click.pass_context
def driver_init(ctx: click.Context, folder: Path, lang: str, wave_id: str | None, category: str | None,
                force: bool) -> None:
    """Write a working stdio driver into FOLDER: every action answers "not implemented" until you write it.

    Run it at once (usine run --wave W --vendor FOLDER/vendor.toml): every requirement judged by a test is error or
    not-exercised, its first finding saying which action is not implemented — your to-do list; none is a conformity
    failure.
    """
    from conformity.driverkit import skeleton, write_skeleton

    if category and not wave_id:
        raise click.UsageError("--category needs --wave (the wave whose category's actions to declare)")
    catalog = get_catalog(ctx)
    if wave_id:
        wave = catalog.wave(wave_id)
        # no category: every category's actions, and the category left to fill in (never a guess the runs would test)
        cats = [category] if category else list(wave.categories)
        named = {a.name: a for cat in cats for a in catalog.specification(wave_id, cat).actions}
        actions = list(named.values())
        cat = category or "CATEGORY"
    else:
        latest = [catalog.referential(rid) for rid in sorted({rid for rid, _ in catalog.referentials})]
        actions = [a for ref in latest for a in ref.actions]
        cat = category or "CATEGORY"
    paths = write_skeleton(folder, skeleton(lang, actions, cat), force=force)
    for p in paths:
        click.echo(f"wrote {p}")
    click.echo(f"{len(actions)} action(s) declared, each answering 'not implemented': "
               + ", ".join(a.name for a in actions))
    if not category:
        click.echo(f"fill in the category in {folder / 'vendor.toml'} (or give --category next time)"
                   + (f": one of {', '.join(catalog.wave(wave_id).categories)}" if wave_id else ""))
    click.echo(f"next: edit {folder / 'vendor.toml'}, then usine run --wave {wave_id or 'WAVE'} "
               f"--vendor {folder / 'vendor.toml'} --only REFERENTIAL")


@driver.command("serve-http")
@click.option("--vendor", "vendor_path", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The vendor manifest whose (stdio) driver to serve.")
@click.option("--cert", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The server's certificate chain (PEM), issued for the host name the agency calls.")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Its private key (PEM).")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8443, show_default=True, type=click.IntRange(0, 65535))
def serve_http(vendor_path: Path, cert: Path, key_path: Path, host: str, port: int) -> None:
    """Serve your stdio driver as an HTTPS JSON-RPC endpoint, for the agency's witnessed runs.

    Each connection gets its own driver process. Give the agency https://HOST:PORT/rpc; the certificate must
    verify for that host name.
    """
    from conformity.cli.common import check_listen, check_tls
    from conformity.driverkit.http_bridge import make_server
    from conformity.harness.vendor import load_vendor

    vendor = load_vendor(vendor_path)
    check_tls(cert, key_path, ("--cert", "--key"))
    check_listen(host, port)
    server = make_server(vendor.driver, host, port, str(cert), str(key_path))
    click.echo(f"driver of {vendor_path} on https://{host}:{server.server_port}/rpc; Ctrl-C stops it", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.close_drivers()
