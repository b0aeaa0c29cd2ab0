"""Shared helpers of the CLI: catalog loading from the context, output to a file or the terminal."""

from __future__ import annotations

from pathlib import Path

import click

from conformity.catalog import Catalog, load_catalog
from conformity.catalog.crosscheck import Registered
from conformity.checks.packs import registered
from conformity.errors import InputError
from conformity.files import writable_output, write_atomic


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


def _option(param: click.Parameter) -> str:
    """How the user gave ``param``: its options (``-o/--output``), or an argument's name (``FOLDER``)."""
    return "/".join(param.opts) if isinstance(param, click.Option) else param.human_readable_name


def output_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Click callback of an option naming a file to write: refused before any work, naming the option and the path,
    when no file can be made there (a folder in its place, a file on the way); nothing created."""
    return None if value is None else writable_output(value, option=_option(param))


def output_folder(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Click callback of an option naming a folder to write into: as :func:`output_file`, for a folder (a file or a
    link to no folder in its place is refused too); a missing folder is made later, by the command."""
    return None if value is None else writable_output(value, option=_option(param), folder=True)


output_option = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), callback=output_file,
                             help="Write to this file instead of standard output.")


def emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomic(output, text, shared=True)  # a specification, a diff, a listing: for others to read
        click.echo(f"wrote {output}", err=True)


def check_listen(host: str, port: int) -> None:
    """Refuse, before anything is started or written, an address a server cannot listen on: the port taken, a
    privileged port without the privilege, a host that is not this machine's (a server that binds it later may still
    lose a race: uvicorn then says so itself)."""
    import errno
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise InputError(f"cannot listen on {host!r}: not a host name or address ({exc})", where="--host") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a port in TIME_WAIT is free
        try:
            sock.bind(address)
        except OSError as exc:
            why = {errno.EADDRINUSE: "address already in use (another process listens there: stop it or give "
                                     "another --port)",
                   errno.EACCES: "permission denied (a port below 1024 needs privileges: give --port 1024 or above, "
                                 "behind a reverse proxy)",
                   errno.EADDRNOTAVAIL: "not an address of this machine (give --host one of its addresses, or "
                                        "0.0.0.0)"}.get(exc.errno or 0, exc.strerror or str(exc))
            raise InputError(f"cannot listen on {host}:{port}: {why}", where="--port") from None


def check_tls(cert: Path | None, key: Path | None, options: tuple[str, str] = ("--tls-cert", "--tls-key")) -> None:
    """Refuse a certificate and key that TLS cannot serve with (not PEM, a key of another certificate, an encrypted
    key), naming both files and their ``options``, before anything is started or written."""
    if cert is None or key is None:
        return
    import ssl

    def no_password() -> bytes:
        raise InputError(f"{key}: the private key is encrypted: give it unencrypted (readable by this user only)",
                         where=options[1])

    for path, option in zip((cert, key), options, strict=True):
        try:  # OpenSSL's error for a file it cannot open names neither the file nor the option
            path.open("rb").close()
        except OSError as exc:
            raise InputError(f"{path}: cannot read it ({exc.strerror or exc})", where=option) from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=no_password)
    except ssl.SSLError as exc:
        why = ("the key is not the certificate's (KEY_VALUES_MISMATCH)" if "KEY_VALUES_MISMATCH" in str(exc) else
               f"not a PEM certificate ({options[0]}) and its PEM private key ({options[1]}): {exc.reason or exc}")
        raise InputError(f"cannot serve TLS with {cert} and {key}: {why}", where="/".join(options)) from None
