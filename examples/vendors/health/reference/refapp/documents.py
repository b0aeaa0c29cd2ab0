"""Actions document.submit, document.replace, document.delete, document.list: RefApp and the shared record.

RefApp submits only for a qualified identity (DOCSHARE-005), only the allowed types (DOCSHARE-010),
keeps every document it produced so that a resubmission sends the very same bytes (DOCSHARE-020),
retries a 503 after its Retry-After with the same submission at most 3 times (DOCSHARE-021), and
reports a refusal with the service's problem code (DOCSHARE-024).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
from collections.abc import Mapping
from typing import Any

import httpx

from refapp import cda, defects
from refapp.actions import action
from refapp.app import Application
from refapp.identity import normalised

MAX_RETRIES = 3
MAX_WAIT = 10.0
#: answers after which the same submission is sent again
RETRIED = (429, 503)

NEW_ID_ON_RETRY = defects.register("duplicates-on-retry", "on a 503 it produces the document again, with a new "
                                                          "uniqueId, instead of resending the same submission")
NO_WAIT = defects.register("retries-at-once", "retries a failed submission at once when the answer gives no "
                                              "Retry-After (or when there was no answer)")
INS_WHEN_KNOWN = defects.register("ins-of-unqualified", "carries the INS whenever one is recorded (recovered "
                                                        "identities too), instead of only for qualified identities")


class Refused(Exception):
    """The action ends without success: status (refused or error) and the message shown to the user."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message[:500]


# ---------------------------------------------------------------------------------------------
# local data: patients, the practitioner, the site, value sets


def patient_record(app: Application, patient: dict[str, Any]) -> dict[str, Any]:
    """The local record named by ``{"ref"}`` or ``{"traits"}`` (Refused when there is none)."""
    if "ref" in patient:
        record = app.patients.get(patient["ref"])
    else:
        wanted = normalised(patient["traits"])
        record = next((r for r in app.patients.values() if normalised(r["traits"]) == wanted
                       or normalised(r.get("typed", r["traits"])) == wanted), None)
    if record is None:
        raise Refused("refused", "unknown patient: look the identity up first")
    return record


def carries_ins(record: dict[str, Any]) -> bool:
    """Whether the INS may be written for this patient: only a qualified identity (PATIENTID-010)."""
    if defects.active(INS_WHEN_KNOWN):
        return bool(record.get("ins"))
    return record.get("status") == "qualified" and bool(record.get("ins"))


def require_qualified(record: dict[str, Any]) -> None:
    if not carries_ins(record):
        raise Refused("refused", f"identity of patient {record['ref']} is {record.get('status', 'provisional')}, "
                                 "not qualified: its INS cannot be used in a shared document")


def author(app: Application) -> dict[str, Any]:
    """The logged-in practitioner as a document author (login on first use)."""
    app.access_token()
    assert app.practitioner is not None
    info = app.practitioner.userinfo
    return {"national_id": app.practitioner.national_id, "given_name": info.get("given_name", ""),
            "family_name": info.get("family_name", ""), "profession": info.get("profession") or {},
            "specialty": info.get("specialty") or {}}


def site(app: Application) -> dict[str, Any]:
    """The care site the software is installed at, with its organisation in the directory fixtures."""
    site_id = str(app.ctx.fixtures.get("site", {}).get("site_id", ""))
    org: dict[str, Any] = next((o for o in app.ctx.fixtures.get("organisations", []) if o.get("finess") == site_id), {})
    return {"finess": site_id, "name": org.get("name") or app.ctx.fixtures.get("site", {}).get("name", ""),
            "type_code": org.get("type_code", "")}


def dmp_url(app: Application, path: str) -> str:
    return app.ctx.endpoints["dmp"].rstrip("/") + path


def value_sets(app: Application) -> dict[str, Any]:
    """The value sets the shared record publishes (read once per session)."""
    if "value_sets" not in app.ctx.state:
        with app.ctx.http() as http:
            r = http.get(dmp_url(app, "/value-sets"), headers=app.auth_headers())
        r.raise_for_status()
        app.ctx.state["value_sets"] = r.json()
    return app.ctx.state["value_sets"]


def coded_metadata(app: Application, who: Mapping[str, Any], where: Mapping[str, Any]) -> dict[str, str]:
    """facility type, practice setting, author role and specialty, from the published value sets."""
    vs = value_sets(app)
    role = str(who["profession"].get("code", ""))
    specialty = str(who["specialty"].get("code", ""))
    setting = vs["practice_setting_by_specialty"].get(specialty) or vs["practice_setting_by_profession"].get(role)
    out = {"facility_type": vs["facility_type_by_organisation"].get(where["type_code"], "SA01"),
           "practice_setting": setting or "ETABLISSEMENT", "language_code": "fr-FR", "author_role": role}
    if specialty:
        out["author_specialty"] = specialty
    return out


# ---------------------------------------------------------------------------------------------
# submissions


def content_key(record: dict[str, Any], data: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two requests the same document (for a resubmission with the same uniqueId)."""
    return (record["ref"], data["document_type"], data.get("template_id"), data["title"], data["body"],
            repr(data.get("results", ())))


def produce(app: Application, record: dict[str, Any], data: dict[str, Any], **ids: Any) -> cda.Content:
    """A new document's content (not yet built) for a patient, by the logged-in practitioner."""
    return cda.Content(type_code=data["document_type"], title=data["title"], body=data["body"],
                       patient=record, author=author(app), custodian=site(app), results=data.get("results") or (),
                       template_id=data.get("template_id"), **ids)


def submission(app: Application, content: cda.Content) -> dict[str, Any]:
    """The JSON body of a submission: metadata, software, site and the base64 document."""
    document = cda.build(content)
    who, where = content.author, content.custodian
    metadata = {
        "unique_id": content.unique_id,
        "patient_id": cda.patient_id(content.patient["ins"], content.patient["oid"]),
        "author_id": who["national_id"], "type_code": cda.loinc_code(content.type_code),
        "class_code": cda.TYPES[content.type_code].class_code, "confidentiality": "N",
        "format": content.format_code,
        "creation_time": content.effective.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hash": hashlib.sha1(document).hexdigest(), "size": len(document), "title": cda.xml_text(content.title),
    } | coded_metadata(app, who, where)
    return {"metadata": metadata, "software": dict(app.ctx.software), "site": {"id": where["finess"]},
            "document": base64.b64encode(document).decode("ascii")}


def problem(r: httpx.Response) -> str:
    """``code: detail`` of a problem answer."""
    try:
        body = r.json()
    except ValueError:
        return f"http-{r.status_code}: {r.reason_phrase}"
    if isinstance(body, dict) and body.get("code"):
        return f"{body['code']}: {body.get('detail', '')}"
    return f"http-{r.status_code}: {r.reason_phrase}"


def retry_delay(r: httpx.Response | None) -> float:
    """Retry-After (bounded), or 1 s when the answer gives none or there was no answer."""
    if r is None or "retry-after" not in r.headers:
        return 0.0 if defects.active(NO_WAIT) else 1.0
    try:
        return min(max(float(r.headers["retry-after"]), 0.0), MAX_WAIT)
    except ValueError:
        return 1.0


def post(app: Application, path: str, body: dict[str, Any], rebuild: Any = None) -> dict[str, Any]:
    """POST a submission; on 503 or 429, or a connection lost before the answer, wait (Retry-After, else 1 s) and
    send the same body again, at most 3 times: the record keeps one copy of a uniqueId it already holds."""
    with app.ctx.http() as http:
        for attempt in range(MAX_RETRIES + 1):
            r: httpx.Response | None = None
            try:
                r = http.post(dmp_url(app, path), json=body, headers=app.auth_headers())
            except httpx.TransportError as exc:
                if attempt == MAX_RETRIES:
                    raise Refused("error", f"shared record unreachable: {type(exc).__name__}") from exc
            if r is not None and r.status_code in (200, 201):
                return r.json()
            if r is not None and (r.status_code not in RETRIED or attempt == MAX_RETRIES):
                raise Refused("refused" if 400 <= r.status_code < 500 and r.status_code != 429 else "error", problem(r))
            time.sleep(retry_delay(r))
            if rebuild is not None and defects.active(NEW_ID_ON_RETRY):
                body = rebuild()
    raise AssertionError("unreachable")


def remember(app: Application, content: cda.Content, body: dict[str, Any], key: tuple[Any, ...]) -> None:
    app.documents[content.unique_id] = {"content": content, "body": body, "key": key}


def refused(exc: Refused) -> dict[str, Any]:
    return {"status": exc.status, "error": exc.message}


@action("document.submit")
def document_submit(app: Application, data: dict[str, Any]) -> dict[str, Any]:
    try:
        record = patient_record(app, data["patient"])
        require_qualified(record)
        if data["document_type"] not in cda.TYPES:
            raise Refused("refused", f"document type {data['document_type']} is not one RefApp may send to the "
                                     f"shared record (allowed: {', '.join(cda.TYPES)})")
        key = content_key(record, data)
        known = app.documents.get(data.get("unique_id", ""))
        if data.get("unique_id") and known is None:  # DOCSHARE-019: uniqueIds come from this software's own root
            raise Refused("refused", f"uniqueId {data['unique_id']} names no document this software produced")
        if known is not None and known["key"] != key:
            raise Refused("refused", f"uniqueId {data['unique_id']} already names another document")
        if known is not None:
            content, body = known["content"], known["body"]  # the same document again: the same bytes
        else:
            ids = {"unique_id": data["unique_id"]} if data.get("unique_id") else {}
            content = produce(app, record, data, **ids)
            body = submission(app, content)

        def rebuild() -> dict[str, Any]:
            nonlocal content
            content = produce(app, record, data)
            return submission(app, content)

        entry = post(app, "/documents", body, rebuild)
        remember(app, content, body, key)
    except Refused as exc:
        return refused(exc)
    return {"status": "accepted", "document_id": entry["unique_id"], "unique_id": entry["unique_id"]}


@action("document.replace")
def document_replace(app: Application, data: dict[str, Any]) -> dict[str, Any]:
    try:
        old = app.documents.get(data["document_id"])
        if old is None:
            raise Refused("refused", f"document {data['document_id']} was not produced by this software")
        previous: cda.Content = old["content"]
        require_qualified(previous.patient)  # type: ignore[arg-type]  # previous.patient is set for every stored submission
        spec = {"document_type": previous.type_code, "title": data["title"], "body": data["body"],
                "results": data.get("results") or previous.results, "template_id": previous.template_id}
        record = dict(previous.patient)
        content = produce(app, record, spec, set_id=previous.set_id or previous.unique_id,
                          version=previous.version + 1, replaces=previous.unique_id)
        body = submission(app, content)
        entry = post(app, f"/documents/{previous.unique_id}/replace", body)
        remember(app, content, body, content_key(record, spec))
    except Refused as exc:
        return refused(exc)
    return {"status": "accepted", "document_id": entry["unique_id"], "unique_id": entry["unique_id"]}


@action("document.delete")
def document_delete(app: Application, data: dict[str, Any]) -> dict[str, Any]:
    try:
        with app.ctx.http() as http:
            r = http.delete(dmp_url(app, f"/documents/{data['document_id']}"), headers=app.auth_headers())
    except httpx.HTTPError as exc:
        return {"status": "error", "error": f"shared record unreachable: {type(exc).__name__}"}
    if r.status_code == 200:
        return {"status": "deleted"}
    return {"status": "refused" if 400 <= r.status_code < 500 else "error", "error": problem(r)[:500]}


def author_name(app: Application, national_id: str) -> str:
    """The author as the directory names them, or their national id when the directory has no entry."""
    from refapp.directory import directory

    found = directory(app).get("/practitioners", {"national_id": national_id})
    if found:
        return f"{found[0]['given_name']} {found[0]['family_name']}"
    return national_id


@action("document.list")
def document_list(app: Application, data: dict[str, Any]) -> dict[str, Any]:
    try:
        record = patient_record(app, data["patient"])
        require_qualified(record)
        with app.ctx.http() as http:
            r = http.get(dmp_url(app, f"/patients/{record['ins']}/documents"), headers=app.auth_headers())
    except Refused as exc:
        return {"status": "error", "documents": [], "error": exc.message}
    except httpx.HTTPError as exc:
        return {"status": "error", "documents": [], "error": f"shared record unreachable: {type(exc).__name__}"}
    if r.status_code != 200:
        return {"status": "error", "documents": [], "error": problem(r)[:500]}
    shown = []
    for entry in r.json().get("documents", []):
        meta = entry["metadata"]
        item = {"document_id": entry["unique_id"], "unique_id": entry["unique_id"], "document_type": meta["type_code"],
                "title": meta["title"], "created": meta["creation_time"], "author": author_name(app, meta["author_id"])}
        if entry.get("hidden"):
            item["hidden"] = True  # hidden by the patient (DOCSHARE-031); the flag exists from DOCSHARE 2.0 on
        shown.append(item)
    return {"status": "ok", "documents": shown}
