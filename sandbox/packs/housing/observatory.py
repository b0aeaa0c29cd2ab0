"""DPE observatory (ADEME-like): DPE documents checked, in test mode or filed for real with a DPE number.

Session role (``/s/{sid}/observatory``, an access token of the session, i.e. a logged-in diagnostician):

* ``POST /dpe?mode=test`` — body ``application/xml``: the document is parsed safely and validated against
  the model schema (v2.6), then the coherence checks run: ``{"mode": "test", "receivable": bool,
  "controle_coherence": [...]}`` where each finding has ``type`` (``erreur_logiciel``, ``erreur_saisie``,
  ``warning_logiciel``, ``warning_saisie``), ``thematique``, ``message``, ``objets_concerne``. Nothing filed.
* ``POST /dpe?mode=real`` — the same checks; a blocking finding refuses it (422 ``dpe-not-receivable`` with
  the findings), else the DPE is filed: 201 ``{"numero_dpe": "2393E0000360N"-like, "warnings": [...]}``.
* ``GET /dpe/{numero_dpe}`` — a filed DPE's record (status, date, the findings it was filed with).

Production role (``/prod/observatory``, installation token): ``POST /dpe`` files for real; each filed DPE
emits one data-received event (kind ``dpe``).

Problem codes: ``dpe-not-xml`` (400: not well-formed, DTD or entities, too large or deep — hostile XML is
refused before anything reads it), ``dpe-schema-invalid`` (422, ``errors``), ``dpe-not-receivable`` (422,
``controle_coherence``), ``mode-invalid`` (422), ``unsupported-media-type`` (415), ``dpe-unknown`` (404),
``service-unavailable`` (503, fault ``observatory.unavailable``) and the token codes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from conformity.http_problems import media_type
from conformity.packs.housing.dpe import DpeInvalid, blocking, coherence, parse_dpe, read_dpe
from sandbox.deps import Caller, raise_if_unavailable, require_access_token, require_installation, store_of
from sandbox.events import data_received
from sandbox.problems import HTTPProblem, set_outcome

SERVICE = "observatory"
COLLECTION = "housing-dpe"
PROD = "prod"
XML_TYPES = ("application/xml", "text/xml")
router = APIRouter(tags=["observatory"])
prod_router = APIRouter(tags=["observatory (production)"])

_BODY = {"requestBody": {"required": True, "content": {"application/xml": {"schema": {"type": "string"}}}}}


async def _document(request: Request) -> tuple[bytes, dict[str, Any], list[dict[str, Any]]]:
    media = media_type(request)
    if media not in XML_TYPES:
        raise HTTPProblem(415, "unsupported-media-type", f"a DPE is sent as application/xml, not {media or 'untyped'}")
    body = await request.body()
    try:
        root = parse_dpe(body)
    except DpeInvalid as exc:
        if exc.errors and str(exc) != exc.errors[0]:
            errors = [{"where": e.partition(": ")[0] if e.startswith("line ") else "body",
                       "message": e.partition(": ")[2] if e.startswith("line ") else e} for e in exc.errors]
            raise HTTPProblem(422, "dpe-schema-invalid", str(exc), errors=errors) from None
        raise HTTPProblem(400, "dpe-not-xml", f"the body is not a safe XML document: {exc}") from None
    values = read_dpe(root)
    return body, values, coherence(values)


def _number(scope: str, count: int, body: bytes) -> str:
    """A 13-character DPE number (``^\\d{4}[A-Z]\\d{7}[A-Z]$``), unique in its scope."""
    digest = hashlib.sha256(scope.encode() + body).digest()
    letter = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return (
        f"{27 + count // 10_000_000:02d}{digest[0] % 100:02d}E{count % 10_000_000:07d}{letter[digest[1] % len(letter)]}"
    )


def _file(
    request: Request, scope: str, body: bytes, values: dict[str, Any], findings: list[dict[str, Any]], filed_by: str
) -> dict[str, Any]:
    store = store_of(request)
    count = len(store.list_records(COLLECTION, scope)) + 1
    numero = _number(scope, count, body)
    record = {
        "numero_dpe": numero,
        "status": "filed",
        "filed": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "filed_by": filed_by,
        "sha256": hashlib.sha256(body).hexdigest(),
        "bytes": len(body),
        "energy_class": values.get("energy_class"),
        "rnb_id": values.get("rnb_id"),
        "warnings": [f for f in findings if f["type"].startswith("warning")],
    }
    store.put_record(COLLECTION, scope, numero, record)
    return record


@router.post("/dpe", summary="Check a DPE (mode=test) or file it (mode=real)", openapi_extra=_BODY)
async def post_dpe(
    request: Request, session_id: str, mode: str = "", caller: Caller = Depends(require_access_token)
) -> JSONResponse:
    raise_if_unavailable(request, caller.session, SERVICE, "the DPE observatory")
    if mode not in ("test", "real"):
        raise HTTPProblem(422, "mode-invalid", "mode is test (checks only) or real (checks, then filing)")
    body, values, findings = await _document(request)
    refused = blocking(findings)
    if mode == "test":
        set_outcome(request, "dpe-tested", receivable=not refused, findings=[f["type"] for f in findings])
        return JSONResponse({"mode": "test", "receivable": not refused, "controle_coherence": findings})
    if refused:
        raise HTTPProblem(
            422,
            "dpe-not-receivable",
            "the DPE has blocking coherence findings: it is not filed",
            controle_coherence=findings,
        )
    record = _file(request, session_id, body, values, findings, str(caller.token.get("sub", "")))
    set_outcome(request, "dpe-filed", numero_dpe=record["numero_dpe"])
    return JSONResponse({"numero_dpe": record["numero_dpe"], "warnings": record["warnings"]}, status_code=201)


@router.get("/dpe/{numero_dpe}", summary="A filed DPE's record")
def get_dpe(
    request: Request, session_id: str, numero_dpe: str, caller: Caller = Depends(require_access_token)
) -> dict[str, Any]:
    record = store_of(request).get_record(COLLECTION, session_id, numero_dpe)
    if record is None:
        raise HTTPProblem(404, "dpe-unknown", f"no DPE {numero_dpe!r} filed in this session")
    set_outcome(request, "dpe-read")
    return record


@prod_router.post("/dpe", status_code=201, summary="File a DPE from an installed software", openapi_extra=_BODY)
async def prod_post_dpe(request: Request, installation: dict[str, Any] = Depends(require_installation)) -> JSONResponse:
    body, values, findings = await _document(request)
    refused = blocking(findings)
    if refused:
        raise HTTPProblem(
            422,
            "dpe-not-receivable",
            "the DPE has blocking coherence findings: it is not filed",
            controle_coherence=findings,
        )
    record = _file(request, PROD, body, values, findings, installation["id"])
    source = f"{request.app.state.config.installation_event_source}:{SERVICE}"
    request.app.state.event_log.append(
        data_received(
            installation,
            source=source,
            kind="dpe",
            document_type=None,
            size=len(body),
            sha256=record["sha256"],
            reference=record["numero_dpe"],
        )
    )
    set_outcome(request, "dpe-filed", numero_dpe=record["numero_dpe"])
    return JSONResponse({"numero_dpe": record["numero_dpe"], "warnings": record["warnings"]}, status_code=201)
