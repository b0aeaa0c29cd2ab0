"""The JSON API (``/api/v1``): vendors' submissions (token), the public registry, signed documents, label events."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from conformity.agency import feed
from conformity.agency.registry import Registry
from conformity.agency.service import public, uploads, witnessed
from conformity.agency.service.deps import client, config_of, vendor
from conformity.agency.service.problems import HTTPProblem
from conformity.errors import InputError
from conformity.paths import schema_path

router = APIRouter(prefix="/api/v1")
JWS_JSON = "application/jose+json"
PUBLIC_SCHEMAS = ("registry-export", "label", "revocations", "decision")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _signing_key(request: Request) -> Any:
    return request.app.state.signing_key


def start(request: Request, background: BackgroundTasks, up: uploads.Upload) -> uploads.Upload:
    """Verify an upload now (configured so) or after answering."""
    cfg = config_of(request)
    if cfg.background:
        background.add_task(uploads.process_later, cfg, up.id)
        return up
    uploads.process(cfg, up.id)
    return uploads.get(cfg, up.id)


@router.post("/submissions", status_code=202, tags=["vendors"],
             summary="Upload an evidence bundle (the zip as the request body)",
             responses={202: {"description": "received; verified in the background (poll Location)"},
                        401: {"description": "no or bad token"}, 413: {"description": "too large"},
                        415: {"description": "not a zip"}},
             openapi_extra={"requestBody": {"required": True,
                                            "content": {"application/zip": {"schema": {"type": "string",
                                                                                       "format": "binary"}}}}})
async def submit(request: Request, background: BackgroundTasks,
                 name: str = Query("bundle.zip", max_length=200, description="the bundle's file name")) -> Response:
    acct = vendor(request, "submit")
    cfg = config_of(request)
    assert acct.vendor_id is not None
    length = request.headers.get("content-length")
    declared = int(length) if length and length.isdigit() else None
    with uploads.streaming.slot(acct.vendor_id, cfg.uploads_in_flight):
        with Registry(cfg.database) as reg:  # before the body is read (and again when it is recorded)
            uploads.check_room(cfg, acct.vendor_id, reg.db,
                               declared if declared and declared <= cfg.max_upload else None)
        incoming, sha, size = await uploads.receive(request.stream(), cfg, declared)
        try:  # again once the body is in: the token revoked or the account disabled while it streamed takes nothing in
            acct = vendor(request, "submit")
        except BaseException:
            incoming.unlink(missing_ok=True)
            raise
        up = uploads.register(cfg, acct, incoming, sha, size, name, client(request))
    up = start(request, background, up)
    doc = up.to_json(uploads.submission_of(cfg, up), _now())
    return JSONResponse(doc, status_code=202, headers={"Location": f"/api/v1/submissions/{up.id}"})


async def start_witnessed(request: Request, up: uploads.Upload) -> None:
    """Run a witnessed run on this worker's witness thread (or now, when configured to work before answering)."""
    cfg = config_of(request)
    if cfg.background:
        witnessed.run_later(cfg, up.id)
    else:
        await run_in_threadpool(witnessed.run, cfg, up.id)


@router.post("/witnessed-runs", status_code=202, tags=["vendors"],
             summary="Ask the agency to run the harness against your driver endpoint (HTTPS)",
             description="The agency checks the endpoint (https://, a certificate that verifies, a public address), "
                         "queues the run (one at a time per vendor), runs every scenario of the wave and category "
                         "against its own sandbox, then verifies and decides the bundle it made like an upload. "
                         "Poll Location: `witnessed.progress`, then the submission's state and findings.",
             responses={202: {"description": "queued (poll Location)"}, 401: {"description": "no or bad token"},
                        409: {"description": "a witnessed run of yours is queued or running"},
                        422: {"description": "bad request, evidence or driver endpoint (not HTTPS, certificate "
                                               "refused, unreachable, not public)"},
                        503: {"description": "this agency runs no witnessed runs"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "object", "required": [
                     "wave", "category", "driver_url", "software", "version", "registration_id"], "properties": {
                     **{k: {"type": "string"} for k in ("wave", "category", "driver_url", "software", "version",
                                                        "registration_id", "software_id", "vendor_name", "seed")}},
                     "additionalProperties": {"type": "string", "format": "binary",
                                              "description": "evidence.REQ-ID: an evidence file"}}},
                 "application/json": {"schema": {"type": "object"}}}}})
async def request_witnessed(request: Request) -> Response:
    acct = vendor(request, "submit")
    cfg = config_of(request)
    if cfg.witness is None:
        raise HTTPProblem(503, "witnessed-runs-unavailable", "this agency does not run witnessed runs: upload a bundle "
                                                         "made against its sandbox instead")
    req, evidence = await witnessed.read_request(request, cfg)
    acct = vendor(request, "submit")  # again once the body is in (a token revoked, an account disabled meanwhile)
    up = await run_in_threadpool(witnessed.request_run, cfg, acct, req, evidence, client(request))
    await start_witnessed(request, up)
    up = uploads.get(cfg, up.id)
    return JSONResponse(up.to_json(uploads.submission_of(cfg, up), _now()), status_code=202,
                        headers={"Location": f"/api/v1/submissions/{up.id}"})


@router.get("/submissions", tags=["vendors"], summary="Your submissions, newest first")
def my_submissions(request: Request) -> dict[str, Any]:
    acct = vendor(request, "read")
    cfg, now = config_of(request), _now()
    assert acct.vendor_id is not None
    return {"vendor": acct.vendor_id,
            "submissions": [u.to_json(uploads.submission_of(cfg, u), now) for u in uploads.of_vendor(cfg, acct.vendor_id)]}


@router.get("/submissions/{ident}", tags=["vendors"],
            summary="One of your submissions: state, findings, reviewers' reasons, label")
def my_submission(request: Request, ident: str) -> dict[str, Any]:
    acct = vendor(request, "read")
    cfg = config_of(request)
    up = uploads.get(cfg, ident, acct.vendor_id)
    sub = uploads.submission_of(cfg, up)
    doc = up.to_json(sub, _now())
    if sub is not None:
        with Registry(cfg.database) as reg:
            doc["reviews"] = [r.to_json() | {"id": r.requirement} for r in reg.reviews(sub.id)]
            doc["current_decision"] = sub.decision.current()
    return doc


def _jws_attachment(signed: dict[str, Any], filename: str, headers: dict[str, str] | None = None) -> Response:
    """A signed document (JWS JSON) as a download named ``filename``."""
    return Response(json.dumps(signed, indent=2) + "\n", media_type=JWS_JSON,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})})


@router.get("/labels/{label_id}", tags=["public"], summary="A label as issued (a JWS signed by the agency)")
def label(request: Request, label_id: str) -> Response:
    with Registry(config_of(request).database) as reg:
        try:
            signed = reg.label_signed(label_id)
        except InputError as exc:
            raise HTTPProblem(404, "no-such-label", f"no label {label_id!r}") from exc
    return _jws_attachment(signed, f"label-{label_id}.json")


@router.get("/registry", tags=["public"], summary="The registry as open data (usine.registry-export/2), filtered")
def registry_json(request: Request, wave: str = "", category: str = "", vendor: str = "", state: str = "",
                  q: str = Query("", max_length=200)) -> dict[str, Any]:
    with Registry(config_of(request).database) as reg:
        return public.registry_data(reg, _signing_key(request), public.Filters(wave, category, vendor, state, q), _now())


@router.get("/registry.csv", tags=["public"], summary="The registry as CSV (one row per label), filtered")
def registry_csv(request: Request, wave: str = "", category: str = "", vendor: str = "", state: str = "",
                 q: str = Query("", max_length=200)) -> Response:
    data = registry_json(request, wave, category, vendor, state, q)
    return PlainTextResponse(public.registry_csv(data), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="labelled.csv"'})


@router.get("/export", tags=["public"], summary="The signed export (labelled.json: a JWS over the open data)")
def export(request: Request) -> Response:
    with Registry(config_of(request).database) as reg:
        signed = public.signed_export(reg, _signing_key(request))
    return _jws_attachment(signed, "labelled.json")


@router.get("/revocations", tags=["public"], summary="The current signed revocation list (with next_update)")
def revocations(request: Request) -> Response:
    with Registry(config_of(request).database) as reg:
        signed = public.revocation_list(reg, _signing_key(request))
    return _jws_attachment(signed, "revocations.json", {"Cache-Control": "no-cache"})


@router.get("/agency-key", tags=["public"], summary="The agency's public key (PEM) that verifies every signed document")
def agency_key(request: Request) -> Response:
    return PlainTextResponse(_signing_key(request).verify_key.pem(), media_type="application/x-pem-file")


@router.get("/schemas/{name}", tags=["public"], summary="The JSON Schema of a published format")
def schema(name: str) -> Response:
    name = name.removesuffix(".schema.json").removesuffix(".json")
    if name not in PUBLIC_SCHEMAS:
        raise HTTPProblem(404, "no-such-schema", f"published schemas: {', '.join(PUBLIC_SCHEMAS)}")
    return Response(schema_path(name).read_text(encoding="utf-8"), media_type="application/schema+json")


@router.get("/events", tags=["payment agency"],
            summary="Label events (CloudEvents 1.0, issued and revoked), oldest first, after a cursor")
def events(request: Request, after: int = Query(0, ge=0, le=2**63 - 1), limit: int = Query(100, ge=1, le=1000)) -> Response:
    with Registry(config_of(request).database) as reg:
        batch = feed.read_events(reg.db, after, limit)
        last = feed.last_seq(reg.db)
    cursor = batch[-1][0] if batch else after
    body = {"events": [e for _, e in batch], "cursor": cursor, "more": cursor < last}
    return JSONResponse(body, headers={"Link": f'</api/v1/events?after={cursor}&limit={limit}>; rel="next"'})
