"""Checks: what each submission to the shared record carries (DOCSHARE ``docshare.*``): metadata
consistent with the document, coded from the value sets, hash and size, software and care site; each
document type accepted; the patient's documents listed as served. Multi-step behaviours are in
:mod:`conformity.packs.health.checks.docshare_flows`.

The evidence is what the shared record recorded: each submission's metadata, software and site
members and its document, its answer and its listings, and the driver's answer to each step.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import quote
from conformity.checks.model import Finding, Verdict, about, failed, not_exercised, passed
from conformity.checks.registry import check
from conformity.checks.trace import TraceView
from conformity.packs.health.checks.cda import DOCUMENTS, V2_CONTENT, precise_time, verdict
from conformity.packs.health.checks.evidence import (
    Submitted,
    claims_at,
    creation_instant,
    distinct,
    documents,
    first,
    ins_ids,
    listed,
    no_submission,
    output,
    problem_code,
    served_documents,
    step_label,
    step_named,
    submissions,
)

UNIQUE_ID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+(\^[A-Za-z0-9.\-_]{1,60})?$")
FINESS = re.compile(r"^[0-9]{2}[0-9AB][0-9]{6}$")
FINESS_ROOT = "1.2.250.1.71.4.2.2"
VALUE_SET_FIELDS = (("class_code", "class_codes"), ("format", "format_codes"), ("facility_type", "facility_types"),
                    ("practice_setting", "practice_settings"), ("language_code", "language_codes"),
                    ("author_role", "author_roles"), ("author_specialty", "author_specialties"))


# ---------------------------------------------------------------------------------------------
# DOCSHARE-004/006/007/009: metadata consistent with the document


def consistency_findings(s: Submitted) -> list[Finding]:
    """Where the metadata says something else than the document (nothing to compare: no finding); each finding
    names the one requirement whose field disagrees."""
    root = s.root
    assert root is not None
    meta, out = s.metadata, []
    ids = ins_ids(root)
    if ids:
        expected = f"{ids[0].get('extension')}^^^&{ids[0].get('root')}&ISO^NH"
        if meta.get("patient_id") != expected:
            out.append(quote(s.exchange, f"{s.label()}: patientId differs from the document's INS",
                             where="metadata.patient_id", expected=expected, got=meta.get("patient_id"))
                       .about("DOCSHARE-004"))
    authors = [el.get("extension") for el in root.xpath("v3:author/v3:assignedAuthor/v3:id[@root='1.2.250.1.71.4.2.1']",
                                                         namespaces={"v3": "urn:hl7-org:v3"})]
    if authors and meta.get("author_id") not in authors:
        out.append(quote(s.exchange, f"{s.label()}: the submission's author is not the document's author",
                         where="metadata.author_id", expected=authors, got=meta.get("author_id")).about("DOCSHARE-006"))
    effective = first(root, "v3:effectiveTime")
    instant = precise_time(effective.get("value", "")) if effective is not None else None
    if instant is not None:
        created = creation_instant(str(meta.get("creation_time", "")))
        utc = instant.astimezone(dt.UTC)
        if created is None or created.replace(microsecond=0) != utc:
            out.append(quote(s.exchange, f"{s.label()}: creationTime is not the document's effectiveTime in UTC",
                             where="metadata.creation_time", expected=utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             got=meta.get("creation_time")).about("DOCSHARE-007"))
    code = first(root, "v3:code")
    if code is not None and meta.get("type_code") != code.get("code"):
        out.append(quote(s.exchange, f"{s.label()}: typeCode differs from the document code",
                         where="metadata.type_code", expected=code.get("code"), got=meta.get("type_code"))
                   .about("DOCSHARE-009"))
    return out


@check("docshare.metadata_consistent", verifies=["DOCSHARE-004", "DOCSHARE-006", "DOCSHARE-007", "DOCSHARE-009"],
       scenario=DOCUMENTS, reads_all=True)
def metadata_consistent(trace: TraceView, ctx: EvalContext) -> Verdict:
    """patientId, author, creationTime and typeCode of each submission say what its document says."""
    found = list(documents(submissions(trace), with_metadata=True))
    if not found:
        return not_exercised(no_submission("ClinicalDocument"))
    findings = [f for s, _ in found for f in consistency_findings(s)]
    return verdict(findings, len(found), "submission(s)")


# ---------------------------------------------------------------------------------------------
# DOCSHARE-011..014, -030: each document type accepted


def accepted_type(trace: TraceView, type_code: str, template_id: str) -> Verdict:
    """A submission of this type (document code and templateId) that the shared record accepted."""
    asked = {n.seq for n in trace.performed("document.submit")
             if n.data.get("input", {}).get("document_type") == type_code}
    candidates = [(s, root) for s, root in documents(submissions(trace)) if s.replaces is None
                  and ((s.step is not None and s.step.seq in asked) or _code_of(root) == type_code)]
    if not candidates:
        note = next((n for n in trace.performed("document.submit") if n.seq in asked), None)
        if note is None:  # never asked: the situation is absent; asked and nothing sent: the software cannot do it
            return not_exercised(Finding(f"the run never asked for a document of type {type_code}"))
        return failed(Finding(f"the software sent no document of type {type_code} to the shared record",
                              exchange=note.seq if note else None, scenario=note.scenario if note else "",
                              got=output(note) if note else None))
    findings = []
    for s, root in candidates:
        templates = [el.get("root") for el in root.xpath("v3:templateId", namespaces={"v3": "urn:hl7-org:v3"})]
        right = _code_of(root) == type_code and template_id in templates
        if s.accepted and right:
            return passed(quote(s.exchange, f"{s.label()}: the shared record accepted the {type_code} document "
                                f"({s.unique_id})", got=s.exchange.status))
        if not right:
            findings.append(quote(s.exchange, f"{s.label()}: asked for a {type_code} document, the software sent "
                                  f"code {_code_of(root)}", where="/ClinicalDocument/code/@code, templateId/@root",
                                  expected=[type_code, template_id], got=[_code_of(root), templates]))
        if not s.accepted:
            codes = [f.get("code") for f in s.sandbox_findings()] or [problem_code(s.exchange)]
            findings.append(quote(s.exchange, f"{s.label()}: the shared record refused the document",
                                  where="response", expected="201 accepted", got=codes))
    return failed(*findings)


def _code_of(root: Any) -> str | None:
    el = first(root, "v3:code")
    return el.get("code") if el is not None else None


def register_accepted(check_id: str, requirement: str, type_code: str, template_id: str, scenario: str) -> None:
    def evaluate(trace: TraceView, ctx: EvalContext) -> Verdict:
        code = str(ctx.param(requirement, "type_code", type_code))
        return accepted_type(trace, code, str(ctx.param(requirement, "template_id", template_id)))

    evaluate.__doc__ = (f"The shared record accepted a document of the type and templateId {requirement} pins "
                        f"(its parameters; {type_code} with {template_id} in its first version).")
    evaluate.__name__ = check_id.split(".")[1]
    check(check_id, verifies=[requirement], scenario=scenario)(evaluate)


register_accepted("docshare.lab_report_accepted", "DOCSHARE-011", "11502-2", "1.2.250.1.213.1.1.1.21", DOCUMENTS)
register_accepted("docshare.discharge_letter_accepted", "DOCSHARE-012", "34106-7", "1.2.250.1.213.1.1.1.29", DOCUMENTS)
register_accepted("docshare.medical_summary_accepted", "DOCSHARE-013", "60591-5", "1.2.250.1.213.1.1.1.13", DOCUMENTS)
register_accepted("docshare.imaging_report_accepted", "DOCSHARE-014", "18748-4", "1.2.250.1.213.1.1.1.30", DOCUMENTS)
register_accepted("docshare.dispensation_record_accepted", "DOCSHARE-030", "60593-1", "1.2.250.1.213.1.1.1.40",
                  V2_CONTENT)


# ---------------------------------------------------------------------------------------------
# DOCSHARE-015, -016, -017, -018, -019: submission metadata


@check("docshare.hash_size_consistent", verifies=["DOCSHARE-015"], scenario=DOCUMENTS, reads_all=True)
def hash_size_consistent(trace: TraceView, ctx: EvalContext) -> Verdict:
    """hash is the lowercase hex SHA-1 of the exact document bytes and size their length."""
    subs = [s for s in distinct(submissions(trace), with_metadata=True) if s.document is not None]
    if not subs:
        return not_exercised(no_submission())
    findings = []
    for s in subs:
        assert s.document is not None
        if s.metadata.get("hash") != s.document.sha1:
            findings.append(quote(s.exchange, f"{s.label()}: hash is not the lowercase hex SHA-1 of the document",
                                  where="metadata.hash", expected=s.document.sha1, got=s.metadata.get("hash")))
        if s.metadata.get("size") != len(s.document.data):
            findings.append(quote(s.exchange, f"{s.label()}: size is not the document's length in bytes",
                                  where="metadata.size", expected=len(s.document.data), got=s.metadata.get("size")))
    return verdict(findings, len(subs), "submission(s)")


def value_set_findings(s: Submitted, ctx: EvalContext, claims: dict[str, Any]) -> list[Finding]:
    """Coded fields from the value sets; in 2.0 also the author's role, specialty and practice setting."""
    meta, out = s.metadata, []
    for key, name in VALUE_SET_FIELDS:
        allowed = ctx.param("DOCSHARE-016", name)
        if allowed is None:
            continue
        if key not in meta or meta[key] not in allowed:
            if key == "author_specialty" and not (claims.get("specialty") or {}).get("code") and key not in meta:
                continue  # an author without a specialty has none to declare
            out.append(quote(s.exchange, f"{s.label()}: {key} is not a code of its value set", where=f"metadata.{key}",
                             expected=sorted(allowed), got=meta.get(key)))
    if "title" in (ctx.param("DOCSHARE-016", "required", []) or []) and not str(meta.get("title", "")).strip():
        out.append(quote(s.exchange, f"{s.label()}: no title", where="metadata.title", expected="the document title"))
    by_specialty = ctx.param("DOCSHARE-016", "practice_setting_by_specialty")
    if by_specialty is not None and claims:
        out += _author_findings(s, ctx, claims, by_specialty)
    return out


def _author_findings(s: Submitted, ctx: EvalContext, claims: dict[str, Any], by_specialty: dict[str, str]) -> list[Finding]:
    """DOCSHARE 2.0: author role and specialty are the practitioner's, the practice setting follows them."""
    meta, out = s.metadata, []
    role = str((claims.get("profession") or {}).get("code", ""))
    specialty = str((claims.get("specialty") or {}).get("code", ""))
    if meta.get("author_role") != role:
        out.append(quote(s.exchange, f"{s.label()}: author_role is not the practitioner's profession",
                         where="metadata.author_role", expected=role, got=meta.get("author_role")))
    if specialty and meta.get("author_specialty") != specialty:
        out.append(quote(s.exchange, f"{s.label()}: author_specialty is not the practitioner's specialty",
                         where="metadata.author_specialty", expected=specialty, got=meta.get("author_specialty")))
    by_profession = ctx.param("DOCSHARE-016", "practice_setting_by_profession", {}) or {}
    setting = by_specialty.get(specialty) or by_profession.get(role)
    if setting and meta.get("practice_setting") != setting:
        out.append(quote(s.exchange, f"{s.label()}: practiceSettingCode is not the one mapped to the author's "
                         f"{'specialty ' + specialty if specialty in by_specialty else 'profession ' + role}",
                         where="metadata.practice_setting", expected=setting, got=meta.get("practice_setting")))
    return out


def unique_id_findings(subs: list[Submitted], ctx: EvalContext) -> list[Finding]:
    """DOCSHARE-019: OID or OID^extension, at most 64 characters, never reused for other content."""
    limit = int(ctx.param("DOCSHARE-019", "max_length", 64))
    out: list[Finding] = []
    seen: dict[str, str | None] = {}
    for s in subs:
        uid = s.unique_id
        if len(uid) > limit or not UNIQUE_ID.match(uid):
            out.append(quote(s.exchange, f"{s.label()}: uniqueId is not an OID or OID^extension of at most {limit} "
                             "characters", where="metadata.unique_id", got=uid))
        sha = s.document.sha1 if s.document else None
        if uid in seen and seen[uid] != sha and s.replaces is None:
            out.append(quote(s.exchange, f"{s.label()}: uniqueId {uid} reused for a document with other content",
                             where="metadata.unique_id", expected="a new uniqueId", got=uid))
        seen.setdefault(uid, sha)
        if problem_code(s.exchange) == "unique-id-conflict":
            out.append(quote(s.exchange, f"{s.label()}: the shared record already holds uniqueId {uid} with other "
                             "content", where="response.code", got="unique-id-conflict"))
    return out


@check("docshare.metadata_valid", verifies=["DOCSHARE-016", "DOCSHARE-019"], scenario=DOCUMENTS, reads_all=True)
def metadata_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Coded metadata from the published value sets (and the author's), uniqueIds well formed and not reused."""
    subs = submissions(trace)
    if not subs:
        return not_exercised(no_submission())
    findings = about(["DOCSHARE-019"], unique_id_findings(subs, ctx))
    for s in distinct(subs, with_metadata=True):
        findings += about(["DOCSHARE-016"], value_set_findings(s, ctx, claims_at(s.view or trace, s.exchange.seq)))
    return verdict(findings, len(distinct(subs, with_metadata=True)), "submission(s)")


@check("docshare.software_identified", verifies=["DOCSHARE-017"], scenario=DOCUMENTS, reads_all=True)
def software_identified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Every submission names the software under test: name, version and registration id as declared."""
    subs = submissions(trace)
    if not subs:
        return not_exercised(no_submission())
    declared = {"name": ctx.software.get("software"), "version": ctx.software.get("version"),
                "registration_id": ctx.software.get("registration_id")}
    findings = [quote(s.exchange, f"{s.label()}: the sending software is not the one under test",
                      where="request.body.json.software", expected=declared, got=s.body.get("software"))
                for s in subs if s.body.get("software") != declared]
    return verdict(findings, len(subs), "submission(s)")


@check("docshare.care_site_identified", verifies=["DOCSHARE-018"], scenario=DOCUMENTS, reads_all=True)
def care_site_identified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Every submission names the session's care site by its 9-character FINESS-like id (also the custodian)."""
    subs = submissions(trace)
    if not subs:
        return not_exercised(no_submission())
    root_oid = ctx.param("DOCSHARE-018", "root", FINESS_ROOT)
    findings = []
    for s in subs:
        expected = site_id(s.view or trace)
        raw_site = s.body.get("site")
        site = raw_site if isinstance(raw_site, dict) else {}
        got = str(site.get("id", ""))
        if got != expected or not FINESS.match(got):
            findings.append(quote(s.exchange, f"{s.label()}: the care site is not the installation's",
                                  where="request.body.json.site.id", expected=expected, got=got or None))
    for s, root in documents(subs):
        expected = site_id(s.view or trace)
        ids = [el.get("extension") for el in root.xpath(
            "v3:custodian/v3:assignedCustodian/v3:representedCustodianOrganization/v3:id", namespaces={"v3": "urn:hl7-org:v3"})
            if el.get("root") == root_oid]
        if expected not in ids:
            findings.append(quote(s.exchange, f"{s.label()}: the document's custodian is not the care site",
                                  where="/ClinicalDocument/custodian/assignedCustodian/representedCustodianOrganization/id",
                                  expected=f"root={root_oid} extension={expected}", got=ids))
    return verdict(findings, len(subs), "submission(s)")


def site_id(trace: TraceView) -> str:
    """The care site configured for the installation in this trace's session."""
    return str((trace.fixtures.get("sites") or [{}])[0].get("site_id", ""))


# ---------------------------------------------------------------------------------------------
# DOCSHARE-025: the list shown is the list served


def names_author(shown: Any, author_id: str, trace: TraceView) -> bool:
    """The author as the service identifies them (national id) or as the directory names them."""
    if shown == author_id:
        return True
    p = next((p for p in trace.fixtures.get("practitioners", []) if p["national_id"] == author_id), None)
    return isinstance(shown, str) and p is not None and p["family_name"] in shown and p["given_name"] in shown


@check("docshare.list_matches_service", verifies=["DOCSHARE-025"], scenario=DOCUMENTS)
def list_matches_service(trace: TraceView, ctx: EvalContext) -> Verdict:
    """The documents listed are those the shared record served, with the same type, title, time and author."""
    note = step_named(trace, "list")
    if note is None:
        return not_exercised(Finding("the scenario never asked to list the patient's documents"))
    answer = listed(trace, note)
    if answer is None:
        return failed(Finding(f"{step_label(note)}: the software did not ask the shared record for the list",
                              exchange=note.seq, scenario=note.scenario, got=output(note) or note.data.get("failure")))
    shown = {d.get("document_id"): d for d in output(note).get("documents", []) if isinstance(d, dict)}
    findings = []
    for doc in served_documents(answer):
        meta = doc.get("metadata", {})
        mine = shown.pop(doc.get("unique_id"), None)
        label = f"{step_label(note)}: document {doc.get('unique_id')}"
        if mine is None:
            findings.append(quote(answer, f"{label} served by the shared record is not listed", where="output.documents"))
            continue
        expected = {"document_type": meta.get("type_code"), "title": meta.get("title")}
        got = {"document_type": mine.get("document_type"), "title": mine.get("title")}
        if got != expected:
            findings.append(quote(answer, f"{label}: not shown as served", where="output.documents[]",
                                  expected=expected, got=got))
        if creation_instant(str(meta.get("creation_time", ""))) != _instant(mine.get("created")):
            findings.append(quote(answer, f"{label}: creation time not shown as served", where="output.documents[].created",
                                  expected=meta.get("creation_time"), got=mine.get("created")))
        if not names_author(mine.get("author"), str(meta.get("author_id", "")), trace):
            findings.append(quote(answer, f"{label}: author not shown as served", where="output.documents[].author",
                                  expected=meta.get("author_id"), got=mine.get("author")))
    for extra in shown:
        findings.append(quote(answer, f"{step_label(note)}: document {extra} is listed but the shared record did not "
                              "serve it", where="output.documents"))
    return verdict(findings, len(served_documents(answer)), "listed document(s)")


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return creation_instant(value)
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else None


