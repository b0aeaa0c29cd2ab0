"""Witnessed runs: the agency runs the harness itself against a vendor's driver endpoint (HTTPS).

A vendor asks (API or web form) with the software it declares, the wave and category, its driver's
URL and the evidence files for document and manual requirements. The agency refuses an endpoint that
is not ``https://``, that resolves to a loopback or private address (unless configured so), or whose
certificate fails verification, before anything is recorded. Otherwise the request is queued as an
upload of kind ``witnessed``; one worker thread per service process runs them one at a time, against
the agency's own sandbox with a harness token bound to the vendor's software (the sessions are
stamped with it, the traces signed with the sandbox key the agency trusts). The run's bundle then goes
through the very verification and decision an uploaded bundle does; its findings and state are what
the vendor follows. A vendor has at most one witnessed run queued or running; a run that passes its
time bound is stopped between scenarios and refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import logging
import os
import re
import shutil
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conformity import jsonio
from conformity.agency.registry import Registry, iso
from conformity.agency.service import uploads
from conformity.agency.service.accounts import Account
from conformity.agency.service.audit import record
from conformity.agency.service.config import ServiceConfig, WitnessConfig
from conformity.agency.service.deps import still_allowed
from conformity.agency.service.problems import HTTPProblem
from conformity.errors import InputError, Problem
from conformity.files import fsync_folder, move_into, private_dir, write_private
from conformity.http_problems import media_type
from conformity.naming import id_problem, owned_software_id, ownership_problem

log = logging.getLogger("usine.agency.witnessed")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_REQ = re.compile(r"^[A-Z][A-Z0-9]*-[0-9A-Za-z.-]+$")
MAX_EVIDENCE_FILES = 64
PROBE_TIMEOUT = 10.0


class RunStopped(Exception):
    """A witnessed run went past its time bound (stopped between two scenarios)."""


@dataclass(frozen=True, slots=True)
class WitnessRequest:
    """What a vendor asks the agency to run (its vendor id is its account's)."""

    wave: str
    category: str
    driver_url: str
    software: str
    version: str
    registration_id: str
    software_id: str = ""
    vendor_name: str = ""
    seed: int | None = None  # None: the sandbox draws it (a run with a chosen seed reproduces, and is never labelled)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_request(fields: dict[str, str], config: ServiceConfig) -> WitnessRequest:
    """The request from form or JSON members; 422 with every problem (nothing recorded) otherwise."""
    problems = []
    if fields.get("wave_category") and not fields.get("wave"):  # the web form's one select
        wave, _, category = str(fields["wave_category"]).partition("/")
        fields = {**fields, "wave": wave, "category": category}
    get = {k: str(fields.get(k, "")).strip() for k in ("wave", "category", "driver_url", "software", "version",
                                                       "registration_id", "software_id", "vendor_name", "seed")}
    for name in ("wave", "category", "driver_url", "software", "version", "registration_id"):
        if not get[name]:
            problems.append(f"{name}: required")
    for name in ("software", "vendor_name"):
        if len(get[name]) > 200:
            problems.append(f"{name}: at most 200 characters")
    for name in ("version", "registration_id"):
        if get[name] and not _ID.match(get[name]):
            problems.append(f"{name}: letters, digits, '.', '_' and '-' (at most 100)")
    software_id_problem = id_problem(get["software_id"]) if get["software_id"] else None
    if software_id_problem:
        problems.append(f"software_id: {software_id_problem}")
    if get["wave"] and get["wave"] not in config.catalog.waves:
        problems.append(f"wave: no wave {get['wave']!r} (waves: {', '.join(sorted(config.catalog.waves))})")
    elif get["wave"] and get["category"] and get["category"] not in config.catalog.waves[get["wave"]].categories:
        problems.append(f"category: wave {get['wave']} has no category {get['category']!r}")
    seed = get["seed"]
    if seed and (not (seed.isascii() and seed.isdigit()) or int(seed) > 2**31):  # "²" is a digit to str.isdigit
        problems.append("seed: a whole number (none by default: the sandbox draws it)")
    if problems:
        raise HTTPProblem(422, "invalid-witness-request", "; ".join(problems), problems=problems)
    return WitnessRequest(get["wave"], get["category"], get["driver_url"], get["software"], get["version"],
                          get["registration_id"], get["software_id"], get["vendor_name"], int(seed) if seed else None)


def driver_context(witness: WitnessConfig) -> ssl.SSLContext:
    """How a driver endpoint's certificate is verified: the system's anchors, and the configured ones."""
    context = ssl.create_default_context()
    if witness.driver_ca is not None:
        context.load_verify_locations(cafile=str(witness.driver_ca))
    return context


class AddressRefused(Exception):
    """A driver's host name resolves to an address the agency does not call (loopback, private, reserved)."""


def permitted_address(host: str, port: int, witness: WitnessConfig) -> str:
    """The address the agency connects to for a driver's ``host``: resolved now, every address of it public.

    Every call of a witnessed run goes to the address this returned (``DriverSpec.connect_to``), with the host
    name kept for TLS verification: a name re-bound to an internal address after the check is never followed.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(i[4][0]) for i in infos]
    private = sorted({str(a) for a in addresses if not a.is_global})
    if private and not witness.allow_private:
        raise AddressRefused(f"{host} resolves to {', '.join(private)}: the agency calls drivers on public addresses "
                             "only")
    return str(addresses[0])


def check_endpoint(url: str, witness: WitnessConfig) -> None:
    """Refuse (422, problem+json) a driver URL that is not HTTPS, not public, unreachable or badly certified."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise HTTPProblem(422, "driver-not-https", f"a witnessed run calls the driver over HTTPS only: {url[:200]!r} is "
                                               "not an https:// URL", driver_url=url[:500])
    if parts.username or parts.password:
        raise HTTPProblem(422, "driver-url-credentials", "the driver URL carries credentials: the agency sends none")
    host, port = parts.hostname, parts.port or 443
    try:
        address = permitted_address(host, port, witness)
    except socket.gaierror as exc:
        raise HTTPProblem(422, "driver-unreachable", f"cannot resolve {host!r}: {exc.strerror}", driver_url=url) from exc
    except AddressRefused as exc:
        raise HTTPProblem(422, "driver-not-public", str(exc), driver_url=url) from exc
    context = driver_context(witness)
    try:
        with socket.create_connection((address, port), timeout=PROBE_TIMEOUT) as sock, \
                context.wrap_socket(sock, server_hostname=host):
            pass
    except ssl.SSLCertVerificationError as exc:
        raise HTTPProblem(422, "driver-certificate-refused",
                      f"the certificate of {host}:{port} fails verification: {exc.verify_message or exc.reason} "
                      "(a witnessed run needs a certificate from a trusted authority, valid, for this host name)",
                      driver_url=url, tls_error=exc.verify_message or str(exc.reason)) from exc
    except ssl.SSLError as exc:
        raise HTTPProblem(422, "driver-tls-failed", f"no TLS connection with {host}:{port}: {exc.reason or exc}",
                      driver_url=url) from exc
    except OSError as exc:
        raise HTTPProblem(422, "driver-unreachable", f"cannot connect to {host}:{port}: {exc.strerror or exc}",
                      driver_url=url) from exc


def _store_evidence(folder: Path, files: list[tuple[str, str, bytes]]) -> list[tuple[str, Path]]:
    """Keep the evidence files of a request under ``FOLDER/REQ/name``, durably (each file and folder fsync'd: the run
    queued next finds them after a power cut); (requirement, path). Two files of one requirement kept under one name
    (the same name, or names equal once cleaned) are refused: one would replace the other."""
    out, taken = [], dict[tuple[str, str], str]()
    for n, (req, name, data) in enumerate(files):
        safe = uploads._clean_name(name).replace("/", "_").lstrip(".") or f"file-{n}"
        if (req, safe) in taken:
            first = taken[(req, safe)]
            raise HTTPProblem(422, "invalid-witness-request",
                              f"evidence.{req}: two files would be kept as {safe!r}"
                              + (f" (sent as {first!r} and {name!r})" if (first, name) != (safe, safe) else "")
                              + ": one would replace the other; give each file of a requirement its own name")
        taken[(req, safe)] = name
        target = private_dir(folder / req) / safe
        write_private(target, data)  # 0600, fsync'd, its folder too
        out.append((req, target))
    for kept in (folder, folder.parent):  # the requirements' folders' names, then the request's own
        fsync_folder(kept)
    return out


def _evidence_files(folder: Path) -> list[tuple[str, Path]]:
    return [(p.parent.name, p) for p in sorted(folder.glob("*/*"))] if folder.is_dir() else []


def _attach(config: ServiceConfig, req: WitnessRequest, folder: Path) -> Any:
    """The run's plan checks the evidence as ``usine run`` does (types, sizes, requirements): InputError if not,
    each problem naming a file as the vendor sent it (``REQ/name``, from ``evidence.REQ``), never where the agency
    keeps it."""
    from conformity.harness.evidence import Source, collect
    from conformity.harness.plan import make_plan

    plan = make_plan(config.catalog, req.wave, req.category)
    sources = [Source(r, path, f"evidence.{r}", strict=False) for r, path in _evidence_files(folder)]
    try:
        attached, _ = collect(config.catalog, plan, sources)
    except InputError as exc:
        kept = f"{folder}{os.sep}"
        raise InputError([Problem(p.file.removeprefix(kept), p.where, p.message.replace(kept, ""))
                          for p in exc.problems]) from exc
    return plan, attached


def request_run(config: ServiceConfig, acct: Account, req: WitnessRequest, evidence: list[tuple[str, str, bytes]],
                client: str) -> uploads.Upload:
    """Check the endpoint, then queue the run (409 when this vendor already has one queued or running)."""
    witness = config.witness
    if witness is None:
        raise HTTPProblem(503, "witnessed-runs-unavailable", "this agency does not run witnessed runs: upload a bundle "
                                                         "made against its sandbox instead")
    assert acct.vendor_id is not None
    if req.software_id and not owned_software_id(req.software_id, acct.vendor_id):
        raise HTTPProblem(422, "invalid-witness-request",
                          f"software_id: {ownership_problem(req.software_id, acct.vendor_id)}")
    bad = sorted({r for r, _, _ in evidence if not _REQ.match(r)})
    if bad or len(evidence) > MAX_EVIDENCE_FILES:
        raise HTTPProblem(422, "invalid-witness-request", f"evidence: at most {MAX_EVIDENCE_FILES} files, each named "
                      f"for a requirement id (evidence.REQ-ID){'; not requirement ids: ' + ', '.join(bad) if bad else ''}")
    ident, now = uploads.new_id(), iso(dt.datetime.now(dt.UTC))
    folder = private_dir(config.uploads) / f"{ident}.evidence"
    try:
        _store_evidence(private_dir(folder), evidence)
        _attach(config, req, folder)
        check_endpoint(req.driver_url, witness)
    except InputError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPProblem(422, "invalid-evidence", exc.render(), problems=[str(p) for p in exc.problems]) from exc
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    try:  # the token or session checked again holding the lock (a disable or reset may have committed meanwhile)
        with Registry(config.database, guard=still_allowed(acct)) as reg, reg.write() as db:
            busy = db.execute("SELECT id FROM uploads WHERE vendor_id = ? AND kind = 'witnessed' "
                              "AND state IN ('received', 'verifying')", (acct.vendor_id,)).fetchone()
            if busy is not None:
                raise HTTPProblem(409, "witnessed-run-in-progress", f"your witnessed run {busy[0]} is not finished: one "
                                                                    "at a time per vendor", running=busy[0])
            uploads.check_storage(config, acct.vendor_id, db)  # its bundle is kept for the vendor like an upload's
            db.execute("INSERT INTO uploads (id, account, vendor_id, kind, state, file_name, received, updated, "
                       "request, progress) VALUES (?, ?, ?, 'witnessed', 'received', ?, ?, ?, ?, ?)",
                       (ident, acct.id, acct.vendor_id, "witnessed-run.zip", now, now,
                        json.dumps(req.to_json() | {"evidence": sorted({r for r, _, _ in evidence})}, sort_keys=True),
                        "queued"))
            record(db, acct.login, acct.role, "witness-request", ident,
                   f"{req.software} {req.version}, {req.wave}/{req.category}, driver {req.driver_url}", client)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing recorded: its evidence is not kept
        raise
    return uploads.get(config, ident)


def _progress(config: ServiceConfig, ident: str, text: str) -> None:
    with Registry(config.database) as reg, reg.write() as db:
        db.execute("UPDATE uploads SET progress = ?, updated = ? WHERE id = ?",
                   (text[:500], iso(dt.datetime.now(dt.UTC)), ident))


def _refuse(config: ServiceConfig, ident: str, findings: list[str]) -> None:
    with Registry(config.database) as reg, reg.write() as db:
        db.execute("UPDATE uploads SET state = 'refused', updated = ?, findings = ?, progress = ? WHERE id = ?",
                   (iso(dt.datetime.now(dt.UTC)), json.dumps(findings), "stopped", ident))
        record(db, "agency", "system", "witness-refused", ident, "; ".join(findings)[:4000])


def run(config: ServiceConfig, ident: str) -> None:
    """Run one queued witnessed run to its end, then verify and decide its bundle. Never raises."""
    if not uploads._claim(config, ident):
        return
    try:
        _run(config, ident)
    except Exception as exc:  # the run is refused, with what happened; the worker goes on
        log.exception("witnessed run %s failed", ident)
        _refuse(config, ident, [f"the agency could not complete this witnessed run ({type(exc).__name__}: {exc})"[:1000]])
    finally:  # ended, made or refused: its bundle carries the evidence, nothing reads the folder again (a worker
        # killed before this line leaves it to the uploads sweep: uploads.unneeded)
        shutil.rmtree(config.uploads / f"{ident}.evidence", ignore_errors=True)


def _run(config: ServiceConfig, ident: str) -> None:
    from conformity.harness.events import RunStarted, ScenarioFinished
    from conformity.harness.outputs import run_to_end, write_outputs
    from conformity.harness.runner import Runner
    from conformity.harness.vendor import DriverSpec, Vendor

    witness = config.witness
    assert witness is not None
    up = uploads.get(config, ident)
    req = dict(up.request or {})
    software_id = req.get("software_id") or f"{up.vendor_id}.{re.sub(r'[^a-z0-9]+', '-', req['software'].lower()).strip('-')[:63]}"
    try:
        check_endpoint(req["driver_url"], witness)  # again: the endpoint may have changed since the request
        folder = config.uploads / f"{ident}.evidence"
        plan, attached = _attach(config, WitnessRequest(**{k: v for k, v in req.items() if k != "evidence"}), folder)
    except (HTTPProblem, InputError) as exc:
        _refuse(config, ident, [exc.detail if isinstance(exc, HTTPProblem) else str(p) for p in
                                ([exc] if isinstance(exc, HTTPProblem) else exc.problems)])
        return
    vendor = Vendor(vendor_id=up.vendor_id, vendor_name=req.get("vendor_name") or up.vendor_id,
                    software=req["software"], software_id=software_id, version=req["version"],
                    registration_id=req["registration_id"], category=req["category"],
                    driver=DriverSpec(url=req["driver_url"], timeout=witness.call_timeout,
                                      verify=driver_context(witness),
                                      connect_to=lambda host, port: permitted_address(host, port, witness)),
                    path=folder / "vendor.toml")
    started, total, done = time.monotonic(), 0, 0

    def on_event(event: object) -> None:
        nonlocal total, done
        if isinstance(event, RunStarted):
            total = len(event.scenarios)
        elif isinstance(event, ScenarioFinished):
            done += 1
            _progress(config, ident, f"running: {done}/{total} scenarios")
        if time.monotonic() - started > witness.timeout:
            raise RunStopped(f"the run took more than {witness.timeout:g} s and was stopped after {done} of {total} "
                             "scenarios")

    _progress(config, ident, "running: starting")
    work = Path(tempfile.mkdtemp(prefix=f"witness-{ident}-", dir=private_dir(config.uploads)))
    try:
        try:
            # the runner binds the sandbox to the vendor's software: a harness token, sessions stamped with it
            result = run_to_end(Runner(plan, vendor, req.get("seed"), witness.sandbox, attached), on_event)
        except RunStopped as exc:
            _refuse(config, ident, [str(exc)])
            return
        paths = write_outputs(work, result)
        move_into(paths["bundle.zip"], config.uploads / f"{ident}.zip")  # durable before it is verified, recorded
        summary = result.report.get("summary", {})
        _progress(config, ident, f"verifying: the run finished in {time.monotonic() - started:.0f} s "
                                 f"({done} scenarios)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    uploads.verify_claimed(config, ident)
    _progress(config, ident, f"finished: {done} scenarios in {time.monotonic() - started:.0f} s; the harness "
                             f"{'passed' if summary.get('passed') else 'did not pass'} every automated MUST")


def resume(config: ServiceConfig) -> list[str]:
    """At start: runs a stopped worker left running are refused (ask again); the queued ones, to run."""
    witness = config.witness
    stale = dt.timedelta(seconds=(witness.timeout if witness else 0) + 600)
    with Registry(config.database) as reg:
        rows = reg.db.execute("SELECT id, state FROM uploads WHERE kind = 'witnessed' AND state IN "
                              "('received', 'verifying') ORDER BY received").fetchall()
        cutoff = iso(dt.datetime.now(dt.UTC) - stale)
        left = {r[0] for r in reg.db.execute("SELECT id FROM uploads WHERE kind = 'witnessed' AND state = 'verifying' "
                                             "AND updated < ?", (cutoff,)).fetchall()}
    for ident in sorted(left):
        _refuse(config, ident, ["the agency stopped before this witnessed run finished: ask for another"])
    return [ident for ident, state in rows if state == "received"]


_witness = uploads.Background(1, "usine-witness")


def run_later(config: ServiceConfig, ident: str) -> None:
    """Queue the run on this process's witness worker (one run at a time)."""
    _witness.submit(run, config, ident)


async def read_request(request: Any, config: ServiceConfig) -> tuple[WitnessRequest, list[tuple[str, str, bytes]]]:
    """A witness request from JSON (no evidence) or multipart/form-data (fields and ``evidence.REQ-ID`` files)."""
    media = media_type(request)
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise HTTPProblem(411, "length-required", "a witness request declares its length (Content-Length)")
    if int(declared) > config.max_upload:
        raise HTTPProblem(413, "too-large", f"a witness request (with its evidence) is at most {config.max_upload} bytes",
                      max_bytes=config.max_upload)
    if media == "application/json":
        try:
            body = jsonio.loads(await request.body(), source="the request body")
        except InputError as exc:  # not UTF-8, not JSON, NaN, or nested deeper than jsonio allows
            raise HTTPProblem(400, "json-malformed", f"the body is not JSON: {exc.what()}") from exc
        if not isinstance(body, dict):
            raise HTTPProblem(422, "invalid-witness-request", "the body is a JSON object")
        return parse_request({k: str(v) for k, v in body.items() if isinstance(v, str | int)}, config), []
    if media not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise HTTPProblem(415, "unsupported-media-type", "send the request as application/json, or as "
                                                     "multipart/form-data with evidence files (evidence.REQ-ID)")
    form = await request.form(max_files=MAX_EVIDENCE_FILES, max_fields=MAX_EVIDENCE_FILES + 40)
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    evidence = []
    pairs = {k.removeprefix("evidence_requirement_"): v.strip() for k, v in fields.items()
             if k.startswith("evidence_requirement_")}
    for key, value in form.multi_items():
        if isinstance(value, str):
            continue
        requirement = key.removeprefix("evidence.") if key.startswith("evidence.") else \
            pairs.get(key.removeprefix("evidence_file_"), "") if key.startswith("evidence_file_") else None
        if requirement is None:
            raise HTTPProblem(422, "invalid-witness-request", f"unexpected file field {key!r} (evidence.REQ-ID)")
        data = await value.read()
        if not data and not requirement:
            continue  # an empty row of the web form
        if not requirement:
            raise HTTPProblem(422, "invalid-witness-request", f"the file {value.filename!r} names no requirement")
        evidence.append((requirement, value.filename or "evidence", data))
    return parse_request(fields, config), evidence
