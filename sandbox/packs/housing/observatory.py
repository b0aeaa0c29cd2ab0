"""DPE observatory (ADEME-like): DPE documents checked, in test mode or filed for real with a DPE number.

Session role (``/s/{sid}/observatory``, an access token of the session, i.e. a logged-in diagnostician):

* ``POST /dpe?mode=test`` — body ``application/xml``: the document is parsed safely and validated against
  the model schema (v2.6), then the coherence checks run: ``{"mode": "test", "receivable": bool,
  "controle_coherence": [...]}`` where each finding has ``type`` (``erreur_logiciel``, ``erreur_saisie``,
  ``warning_logiciel``, ``warning_saisie``), ``thematique``, ``message``, ``objets_concerne``. Nothing filed.
* ``POST /dpe?mode=real`` — the same checks; a blocking finding refuses it (422 ``dpe-not-receivable`` with
  the findings), else the DPE is filed: 201 ``{"numero_dpe": "2393E0000360N"-like, "warnings": [...],
  "duplicate": false}``.
* ``GET /dpe/{numero_dpe}`` — a filed DPE's record (status, date, the findings it was filed with).

A DPE is filed once. Its identity is its meaning, not its bytes (:func:`conformity.packs.housing.dpe.identity`:
every element and value as the schema types them, whatever the declaration, encoding, indentation, comments, number
spelling (exact: -0 is 0, no rounding), runs of white space or Unicode normal form of a text, timezone of a date or
year, order of its heating installations, or attributes the model does not declare (``xsi:*``), and without its
``numero_dpe``; a value is its whole text, a comment inside does not cut it). Filing again a DPE already filed
answers 200 with the number it was filed under and ``"duplicate": true``: nothing new is filed. A document that
carries a ``numero_dpe`` names the DPE filed under that number: it must be that very DPE (else 409
``dpe-number-conflict``: a filed DPE is never changed, a new diagnostic is a new DPE) and a number the observatory
assigned (else 422 ``dpe-number-unknown``).

Production role (``/prod/observatory``, installation token): ``POST /dpe`` files for real; each DPE filed for the
first time emits one data-received event (kind ``dpe``), a duplicate none. The installation must be of a category
whose label covers DPEs in its wave (else 403 ``kind-not-covered``, :func:`sandbox.deps.require_covered`), and the
DPE must name the installation's software: ``usr_logiciel_id`` its registration id, ``version_logiciel`` its
version (else 403 ``dpe-other-software``: a DPE is filed by the software that made it).

Problem codes: ``dpe-not-xml`` (400: not well-formed, DTD or entities, too large or deep — hostile XML is
refused before anything reads it), ``dpe-schema-invalid`` (422, ``errors``), ``dpe-not-receivable`` (422,
``controle_coherence``), ``dpe-number-unknown`` (422), ``dpe-number-conflict`` (409), ``dpe-other-software`` (403,
``expected`` and ``got``), ``kind-not-covered`` (403), ``mode-invalid`` (422), ``unsupported-media-type`` (415),
``dpe-unknown`` (404), ``service-unavailable`` (503, fault ``observatory.unavailable``) and the token codes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from conformity.http_problems import media_type
from conformity.packs.housing.dpe import DpeInvalid, blocking, coherence, identity, parse_dpe, read_dpe
from sandbox.deps import (
    Caller,
    raise_if_unavailable,
    require_access_token,
    require_covered,
    require_installation,
    store_of,
)
from sandbox.events import data_received
from sandbox.problems import HTTPProblem, set_outcome
from sandbox.store import Store

SERVICE = "observatory"
COLLECTION = "housing-dpe"
#: identity of a filed DPE (:func:`conformity.packs.housing.dpe.identity`) → its number
IDENTITIES = "housing-dpe-identity"
#: how many DPEs a scope filed (one record, key ``filed``): a new DPE's number is drawn from it
COUNTS = "housing-dpe-count"
#: the data kind a filed DPE is (pack.toml ``data_kinds``)
KIND = "dpe"
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
    values = read_dpe(root) | {"identity": identity(root)}
    return body, values, coherence(values)


def _number(scope: str, count: int, body: bytes) -> str:
    """A 13-character DPE number (``^\\d{4}[A-Z]\\d{7}[A-Z]$``), unique in its scope."""
    digest = hashlib.sha256(scope.encode() + body).digest()
    letter = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return (
        f"{27 + count // 10_000_000:02d}{digest[0] % 100:02d}E{count % 10_000_000:07d}{letter[digest[1] % len(letter)]}"
    )


def _file(
    request: Request, scope: str, body: bytes, values: dict[str, Any], findings: list[dict[str, Any]], filed_by: str,
    installation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """File a DPE in ``scope``, once: the record, with ``duplicate`` true when that DPE was filed already. Checked and
    written under the store's lock of the scope, which every worker process sharing the store takes: the same DPE sent
    twice at once to two workers is one filing (one number, one event).

    ``installation`` (production): the filing's data-received event is appended under that lock, the record marked
    with its ``event_id`` after; a record whose event was never written (the append failed: a full disk) has it
    written when its installation files the DPE again — one event, never none, never two."""
    store = store_of(request)
    name = f"{COLLECTION}\n{scope}"
    if installation is None:  # a test session's: one commit, before the lock is let go
        with store.locked_batch(name):
            return _file_locked(store, scope, body, values, findings, filed_by)
    with store.lock(name):  # the event is appended between the record's writes, never inside one commit
        record = _file_locked(store, scope, body, values, findings, filed_by, pending=True)
        if record.get("event_id", "") is None and record.get("filed_by") == installation["id"]:
            event = data_received(installation, source=f"{request.app.state.config.installation_event_source}:{SERVICE}",
                                  kind=KIND, document_type=None, size=record["bytes"], sha256=record["sha256"],
                                  reference=record["numero_dpe"])
            request.app.state.event_log.append(event)
            record["event_id"] = event["id"]
            store.put_record(COLLECTION, scope, record["numero_dpe"],
                             {k: v for k, v in record.items() if k != "duplicate"})
        return record


def _file_locked(store: Store, scope: str, body: bytes, values: dict[str, Any], findings: list[dict[str, Any]],
                 filed_by: str, *, pending: bool = False) -> dict[str, Any]:
    """:func:`_file`'s check and writes, its lock held; ``pending``: the new record awaits its event (``event_id``
    None)."""
    given = values.get("numero_dpe")
    known = store.get_record(IDENTITIES, scope, values["identity"])
    if given:
        filed = store.get_record(COLLECTION, scope, given)
        if filed is None:
            raise HTTPProblem(422, "dpe-number-unknown", f"numero_dpe {given} was not assigned by the observatory: a "
                                                         "number is given when a DPE is first filed (a new DPE has none)")
        if filed.get("identity") != values["identity"]:
            raise HTTPProblem(409, "dpe-number-conflict", f"DPE {given} was filed with another content: a filed DPE "
                                                          "is never changed (a new diagnostic is a new DPE)")
    if known is not None:
        return dict(store.get_record(COLLECTION, scope, known["numero_dpe"]) or {}) | {"duplicate": True}
    count = _next_count(store, scope)
    numero = _number(scope, count, body)
    record = {
        "numero_dpe": numero,
        "status": "filed",
        "filed": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "filed_by": filed_by,
        "sha256": hashlib.sha256(body).hexdigest(),
        "identity": values["identity"],
        "bytes": len(body),
        "energy_class": values.get("energy_class"),
        "rnb_id": values.get("rnb_id"),
        "warnings": [f for f in findings if f["type"].startswith("warning")],
    } | ({"event_id": None} if pending else {})
    store.put_record(COLLECTION, scope, numero, record)
    store.put_record(IDENTITIES, scope, values["identity"], {"numero_dpe": numero})
    return record


def _next_count(store: Store, scope: str) -> int:
    """The scope's count of filed DPEs, this one included, kept in one record (its lock held): counting the filed
    records read every DPE of the scope at each filing — production is one scope, so a filing cost grew with every
    DPE ever filed. A store from before the record counts its records once."""
    kept = store.get_record(COUNTS, scope, "filed")
    count = (kept["count"] if kept is not None else len(store.list_records(COLLECTION, scope))) + 1
    store.put_record(COUNTS, scope, "filed", {"count": count})
    return count


def _not_receivable(findings: list[dict[str, Any]]) -> HTTPProblem:
    """The 422 refusing a DPE with blocking coherence ``findings`` (it is not filed)."""
    return HTTPProblem(
        422, "dpe-not-receivable", "the DPE has blocking coherence findings: it is not filed", controle_coherence=findings
    )


def _filed(record: dict[str, Any]) -> JSONResponse:
    duplicate = bool(record.get("duplicate"))
    return JSONResponse({"numero_dpe": record["numero_dpe"], "warnings": record["warnings"], "duplicate": duplicate},
                        status_code=200 if duplicate else 201)


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
        raise _not_receivable(findings)
    record = _file(request, session_id, body, values, findings, str(caller.token.get("sub", "")))
    set_outcome(request, "dpe-duplicate" if record.get("duplicate") else "dpe-filed", numero_dpe=record["numero_dpe"])
    return _filed(record)


@router.get("/dpe/{numero_dpe}", summary="A filed DPE's record")
def get_dpe(
    request: Request, session_id: str, numero_dpe: str, caller: Caller = Depends(require_access_token)
) -> dict[str, Any]:
    record = store_of(request).get_record(COLLECTION, session_id, numero_dpe)
    if record is None:
        raise HTTPProblem(404, "dpe-unknown", f"no DPE {numero_dpe!r} filed in this session")
    set_outcome(request, "dpe-read")
    return record


def _made_by(values: dict[str, Any], installation: dict[str, Any]) -> None:
    """403 unless the DPE names the installation's software (usr_logiciel_id: its registration id; version_logiciel:
    its version), the software whose label pays for it."""
    software = installation["software"]
    expected = (software.get("registration_id") or "", software["version"])
    named = (values.get("software_id") or "", values.get("software_version") or "")
    if not expected[0]:
        raise HTTPProblem(403, "dpe-other-software", f"installation {installation['id']} names no registration id for "
                                                     f"its software {software['id']}: a DPE names the software that "
                                                     "made it by its registration id (usr_logiciel_id)")
    if named != expected:
        raise HTTPProblem(
            403,
            "dpe-other-software",
            f"the DPE names software {named[0]} version {named[1]} (usr_logiciel_id, version_logiciel), but installation "
            f"{installation['id']} runs {expected[0]} version {expected[1]}: a DPE is filed by the software that made it",
            expected={"usr_logiciel_id": expected[0], "version_logiciel": expected[1]},
            got={"usr_logiciel_id": named[0], "version_logiciel": named[1]},
        )


@prod_router.post("/dpe", status_code=201, summary="File a DPE from an installed software", openapi_extra=_BODY)
async def prod_post_dpe(request: Request, installation: dict[str, Any] = Depends(require_installation)) -> JSONResponse:
    require_covered(installation, KIND)
    body, values, findings = await _document(request)
    _made_by(values, installation)
    refused = blocking(findings)
    if refused:
        raise _not_receivable(findings)
    record = _file(request, PROD, body, values, findings, installation["id"], installation)
    set_outcome(request, "dpe-duplicate" if record.get("duplicate") else "dpe-filed", numero_dpe=record["numero_dpe"])
    return _filed(record)
