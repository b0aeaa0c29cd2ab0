"""Checks: the CDA R2 documents the software submits to the shared record (DOCSHARE ``cda.*``).

Each check reads every distinct document of its scenario's submissions as the sandbox recorded
them (the request body, decoded and parsed safely), and quotes the exchange, the XPath and the
expected and actual values. Code lists and template ids come from the pinned requirements'
``parameters``; ``cda.schema_valid`` needs the official HL7 CDA R2 schema (``../shared/schemas``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import quote, step_exchanges
from conformity.checks.model import Finding, Verdict, about, errored, failed, not_applicable, not_exercised, passed
from conformity.checks.registry import check
from conformity.checks.trace import RunView, TraceView, views
from conformity.packs.health import cda_rules
from conformity.packs.health.checks.evidence import (
    NS,
    Submitted,
    distinct,
    documents,
    first,
    identity_for,
    ins_ids,
    is_clinical_document,
    no_submission,
    output,
    patient_of,
    practitioner_at,
    step_label,
    step_named,
    submissions,
    when,
)
from conformity.paths import shared_schemas_dir
from conformity.xmlsafe import element_path

DOCUMENTS = "docshare.documents"
V2_CONTENT = "docshare.v2_content"
HEADER_TEMPLATE_ID = "1.2.250.1.213.1.1.1.1"
LOINC = "2.16.840.1.113883.6.1"
RPPS_ROOT = "1.2.250.1.71.4.2.1"
PDF_FORMAT = "urn:ihe:iti:xds-sd:pdf:2008"
NATIONAL_ID = re.compile(r"^8[0-9]{11}$")
PRECISE_TS = re.compile(r"^(?P<t>[0-9]{14})(\.[0-9]{1,4})?(?P<tz>[+\-][0-9]{4})$")
CLOCK_SKEW = dt.timedelta(minutes=2)
TYPE_REQUIREMENTS = ("DOCSHARE-011", "DOCSHARE-012", "DOCSHARE-013", "DOCSHARE-014", "DOCSHARE-030")




def verdict(findings: list[Finding], count: int, what: str) -> Verdict:
    """Fail on the findings; else pass counting what was really checked — not exercised when that is nothing."""
    if findings:
        return failed(*findings)
    if not count:
        return not_exercised(Finding(f"no {what} in this run, so the rule was not exercised"))
    return passed(f"{count} {what} checked")


def checked_documents(trace: TraceView | RunView) -> list[tuple[Submitted, etree._Element]] | Verdict:
    """The ClinicalDocuments of the scenario (of every scenario: every document the software submitted in the
    run), or a failing verdict when the software submitted none."""
    subs = submissions(trace)
    found = list(documents(subs))
    if not found:
        return not_exercised(no_submission("ClinicalDocument"))
    return found


def document_verdict(trace: TraceView | RunView,
                     findings_of: Callable[[Submitted, etree._Element], list[Finding]],
                     what: str = "document(s)") -> Verdict:
    """A check of each ClinicalDocument on its own: the findings of every document, counted as ``what`` (not
    exercised when the software submitted none)."""
    found = checked_documents(trace)
    if isinstance(found, Verdict):
        return found
    findings = [f for s, root in found for f in findings_of(s, root)]
    return verdict(findings, len(found), what)


# ---------------------------------------------------------------------------------------------
# DOCSHARE-001: well-formed, UTF-8, valid against the CDA R2 XML Schema


def cda_xsd_path() -> Path | None:
    root = shared_schemas_dir()
    path = root / "hl7-cda-r2" / "infrastructure" / "cda" / "CDA.xsd" if root else None
    return path if path and path.is_file() else None


@lru_cache(maxsize=2)
def cda_schema(path: Path) -> etree.XMLSchema:
    """The official CDA R2 schema, parsed once from local files only (no network, no entities)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


@check("cda.schema_valid", verifies=["DOCSHARE-001"], scenario=DOCUMENTS, reads_all=True)
def schema_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Every submitted document is well-formed UTF-8 XML, a ClinicalDocument valid against the CDA R2 schema."""
    path = cda_xsd_path()
    if path is None:
        return errored("the HL7 CDA R2 XML Schema is not available to this evaluator (../shared/schemas or "
                       "USINE_SHARED_SCHEMAS)")
    schema = cda_schema(path)
    subs = distinct(submissions(trace))
    if not subs:
        return not_exercised(no_submission())
    findings = []
    for s in subs:
        findings += _schema_findings(s, schema)
    return verdict(findings, len(subs), "document(s) against the CDA R2 XML Schema")


def _schema_findings(s: Submitted, schema: etree.XMLSchema) -> list[Finding]:
    e = s.exchange
    if s.document is None:
        return [quote(e, f"{s.label()}: the document member is not base64", where="request.body.json.document")]
    if s.root is None:
        return [quote(e, f"{s.label()}: the document is not well-formed XML: {s.document.error}", where="document")]
    encoding = (s.root.getroottree().docinfo.encoding or "UTF-8").upper()
    out = []
    if encoding not in ("UTF-8", "UTF8"):
        out.append(quote(e, f"{s.label()}: the document is encoded in {encoding}", where="/", expected="UTF-8",
                         got=encoding))
    if not is_clinical_document(s.root):
        return out + [quote(e, f"{s.label()}: the root element is not a CDA ClinicalDocument", where="/",
                            expected="{urn:hl7-org:v3}ClinicalDocument", got=s.root.tag)]
    if not schema.validate(s.root):
        for err in list(schema.error_log)[:5]:
            out.append(quote(e, f"{s.label()}: not valid against the CDA R2 schema: {err.message}",
                             where=f"line {err.line}" + (f" {re.sub(r'{[^}]*}', '', err.path)}" if err.path else "")))
    return out


# ---------------------------------------------------------------------------------------------
# DOCSHARE-002 (and the type requirements): templateIds


def type_requirement(ctx: EvalContext, code: str | None) -> tuple[str, ...]:
    """The document-type requirement planned in this run for type ``code`` (DOCSHARE-011…, -030), if any."""
    return tuple(r for r in TYPE_REQUIREMENTS if code and str(ctx.param(r, "type_code", "")) == code)


def template_table(ctx: EvalContext) -> dict[str, str]:
    """type code → templateId, from DOCSHARE-002 and from the type requirements planned in this run."""
    table = dict(ctx.param("DOCSHARE-002", "template_ids", {}) or {})
    for rid in TYPE_REQUIREMENTS:
        code, tid = ctx.param(rid, "type_code"), ctx.param(rid, "template_id")
        if code and tid:
            table[str(code)] = str(tid)
    return table


@check("cda.template_ids_valid", verifies=["DOCSHARE-002", *TYPE_REQUIREMENTS], scenario=DOCUMENTS, reads_all=True)
def template_ids_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """The CI-SIS header templateId, the document type's own templateId, and none of another type."""
    found = checked_documents(trace)
    if isinstance(found, Verdict):
        return found
    table = template_table(ctx)
    header = ctx.param("DOCSHARE-002", "header_template_id")
    if not table and not header:
        return errored("no templateIds in the parameters of the planned requirements")
    findings = []
    for s, root in found:
        present = [el.get("root", "") for el in root.xpath("v3:templateId", namespaces=NS)]
        code = _code(root)
        if header and header not in present:
            findings.append(quote(s.exchange, f"{s.label()}: the CI-SIS header templateId is missing",
                                  where="/ClinicalDocument/templateId/@root", expected=header, got=present)
                            .about("DOCSHARE-002"))
        own = table.get(code or "")
        if own is None:
            continue  # a type the referential does not list: cda.type_code_allowed says so
        if own not in present:  # the document is not the type its requirement asks for either
            findings.append(quote(s.exchange, f"{s.label()}: the templateId of type {code} is missing",
                                  where="/ClinicalDocument/templateId/@root", expected=own, got=present)
                            .about("DOCSHARE-002", *type_requirement(ctx, code)))
        others = sorted(t for c, t in table.items() if c != code and t in present)
        if others:
            findings.append(quote(s.exchange, f"{s.label()}: templateId(s) of another document type in a {code} "
                                  "document", where="/ClinicalDocument/templateId/@root", expected=own, got=others)
                            .about("DOCSHARE-002"))
    return verdict(findings, len(found), "document(s)")


def _code(root: etree._Element) -> str | None:
    el = first(root, "v3:code")
    return el.get("code") if el is not None else None


# ---------------------------------------------------------------------------------------------
# DOCSHARE-003: level-1 body


@check("cda.level1_body_valid", verifies=["DOCSHARE-003"], scenario=DOCUMENTS, reads_all=True)
def level1_body_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A level-1 body is a base64 PDF (application/pdf, B64) and the submission's formatCode is the PDF one."""
    found = checked_documents(trace)
    if isinstance(found, Verdict):
        return found
    expected_format = ctx.param("DOCSHARE-003", "format_code", PDF_FORMAT)
    level1 = [(s, root) for s, root in found if first(root, "v3:component/v3:nonXMLBody") is not None]
    if not level1:
        return not_applicable("the software submitted no level-1 (nonXMLBody) document in this scenario")
    findings = []
    for s, root in level1:
        findings += _level1_findings(s, root, expected_format)
    return verdict(findings, len(level1), "level-1 document(s)")


def _level1_findings(s: Submitted, root: etree._Element, expected_format: str) -> list[Finding]:
    text = first(root, "v3:component/v3:nonXMLBody/v3:text")
    where = "/ClinicalDocument/component/nonXMLBody/text"
    out = []
    if s.metadata.get("format") != expected_format:
        out.append(quote(s.exchange, f"{s.label()}: formatCode of a level-1 document", where="metadata.format",
                         expected=expected_format, got=s.metadata.get("format")))
    if text is None:
        return out + [quote(s.exchange, f"{s.label()}: nonXMLBody has no text", where=where)]
    media = (text.get("mediaType"), text.get("representation"))
    if media != ("application/pdf", "B64"):
        out.append(quote(s.exchange, f"{s.label()}: the body is not declared as a base64 PDF", where=where,
                         expected=["application/pdf", "B64"], got=list(media)))
    try:
        pdf = base64.b64decode("".join((text.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        return out + [quote(s.exchange, f"{s.label()}: the body text is not base64", where=where)]
    if not pdf.startswith(b"%PDF-"):
        out.append(quote(s.exchange, f"{s.label()}: the body does not decode to a PDF file", where=where,
                         expected="%PDF-", got=pdf[:8].decode("latin-1")))
    return out


# ---------------------------------------------------------------------------------------------
# DOCSHARE-004: the patient's INS and OID, as the identity service returned them


@check("cda.patient_id_oid_valid", verifies=["DOCSHARE-004"], scenario=DOCUMENTS, reads_all=True)
def patient_id_oid_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """recordTarget/patientRole/id carries the INS (extension) and the OID (root) the identity service returned."""
    every = submissions(trace)

    def findings_of(s: Submitted, root: etree._Element) -> list[Finding]:
        identity = identity_for(s.view or trace, patient_of(s, every), s.exchange.seq).matched
        return patient_id_findings(s.exchange, s.label(), root, identity)

    return document_verdict(trace, findings_of)


def patient_id_findings(exchange: Any, label: str, root: etree._Element, identity: dict[str, Any] | None) -> list[Finding]:
    """Findings about a CDA's INS against the identity the service returned (None: no match was shown)."""
    ids = ins_ids(root)
    where = "/ClinicalDocument/recordTarget/patientRole/id"
    if not ids:
        roots = [el.get("root") for el in root.xpath("v3:recordTarget/v3:patientRole/v3:id", namespaces=NS)]
        return [quote(exchange, f"{label}: no patient id with an INS OID as root", where=where + "/@root",
                      expected="an INS OID", got=roots)]
    if identity is None:
        return [quote(exchange, f"{label}: the document carries an INS, but the trace shows no single match for "
                      "this patient", where=where, got=ids[0].get("extension"))]
    out = []
    for el in ids:  # every id under an INS authority names the patient: each must be the INS returned
        if el.get("extension") != identity.get("ins"):
            out.append(quote(exchange, f"{label}: the INS is not the one the identity service returned",
                             where=element_path(el) + "/@extension", expected=identity.get("ins"),
                             got=el.get("extension")))
        if el.get("root") != identity.get("oid"):
            out.append(quote(exchange, f"{label}: the INS OID is not the one the identity service returned",
                             where=element_path(el) + "/@root", expected=identity.get("oid"), got=el.get("root")))
    return out


# ---------------------------------------------------------------------------------------------
# DOCSHARE-006: the author's national id


@check("cda.author_id_valid", verifies=["DOCSHARE-006"], scenario=DOCUMENTS, reads_all=True)
def author_id_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Every assignedAuthor has an id with root 1.2.250.1.71.4.2.1: the logged-in practitioner's national id."""
    root_oid = ctx.param("DOCSHARE-006", "root", RPPS_ROOT)

    def findings_of(s: Submitted, root: etree._Element) -> list[Finding]:
        findings = []
        logged_in = practitioner_at(s.view or trace, s.exchange.seq)
        authors = root.xpath("v3:author/v3:assignedAuthor", namespaces=NS)
        if not authors:
            findings.append(quote(s.exchange, f"{s.label()}: no author/assignedAuthor", where="/ClinicalDocument/author"))
        for a in authors:
            ids = [el for el in a.xpath("v3:id", namespaces=NS) if el.get("root") == root_oid]
            where = element_path(a) + "/id"
            if not ids:
                findings.append(quote(s.exchange, f"{s.label()}: the author has no national id", where=where,
                                      expected=f"id root={root_oid} extension={logged_in or '8 + RPPS'}",
                                      got=[dict(el.attrib) for el in a.xpath("v3:id", namespaces=NS)]))
                continue
            value = ids[0].get("extension", "")
            if not NATIONAL_ID.match(value) or (logged_in and value != logged_in):
                findings.append(quote(s.exchange, f"{s.label()}: the author's national id is not the logged-in "
                                      "practitioner's", where=where + "/@extension", expected=logged_in, got=value))
        return findings

    return document_verdict(trace, findings_of)


# ---------------------------------------------------------------------------------------------
# DOCSHARE-007: effective time


def precise_time(value: str) -> dt.datetime | None:
    """YYYYMMDDHHMMSS[.f]±ZZZZ as an aware datetime, else None."""
    m = PRECISE_TS.match(value or "")
    if not m:
        return None
    try:
        naive = dt.datetime.strptime(m["t"], "%Y%m%d%H%M%S")
        sign = 1 if m["tz"][0] == "+" else -1
        offset = dt.timedelta(hours=int(m["tz"][1:3]), minutes=int(m["tz"][3:5]))
        return naive.replace(tzinfo=dt.timezone(sign * offset))
    except ValueError:
        return None


@check("cda.effective_time_valid", verifies=["DOCSHARE-007"], scenario=DOCUMENTS, reads_all=True)
def effective_time_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """effectiveTime has second precision and a UTC offset, and is not later than the submission."""
    return document_verdict(trace, _effective_time_findings)


def _effective_time_findings(s: Submitted, root: etree._Element) -> list[Finding]:
    el = first(root, "v3:effectiveTime")
    value = el.get("value", "") if el is not None else ""
    instant = precise_time(value)
    if instant is None:
        return [quote(s.exchange, f"{s.label()}: effectiveTime is not YYYYMMDDHHMMSS+ZZZZ",
                      where="/ClinicalDocument/effectiveTime/@value", expected="YYYYMMDDHHMMSS+ZZZZ", got=value or None)]
    sent = when(s.exchange.raw)
    if sent is not None and instant > sent + CLOCK_SKEW:
        return [quote(s.exchange, f"{s.label()}: effectiveTime is later than the submission",
                      where="/ClinicalDocument/effectiveTime/@value", expected=f"not after {sent.isoformat()}",
                      got=value)]
    return []


# ---------------------------------------------------------------------------------------------
# DOCSHARE-008: confidentiality


@check("cda.confidentiality_code_valid", verifies=["DOCSHARE-008"], scenario=DOCUMENTS, reads_all=True)
def confidentiality_code_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """confidentialityCode N from 2.16.840.1.113883.5.25, and the submission's confidentialityCode contains it."""
    code = ctx.param("DOCSHARE-008", "code", "N")
    system = ctx.param("DOCSHARE-008", "code_system", "2.16.840.1.113883.5.25")

    def findings_of(s: Submitted, root: etree._Element) -> list[Finding]:
        findings = []
        el = first(root, "v3:confidentialityCode")
        got = [el.get("code"), el.get("codeSystem")] if el is not None else None
        if got != [code, system]:
            findings.append(quote(s.exchange, f"{s.label()}: confidentialityCode", where="/ClinicalDocument/"
                                  "confidentialityCode", expected=[code, system], got=got))
        declared = s.metadata.get("confidentiality")
        codes = [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else []
        if code not in codes:
            findings.append(quote(s.exchange, f"{s.label()}: the submission's confidentialityCode does not contain "
                                  f"{code}", where="metadata.confidentiality", expected=code, got=declared))
        return findings

    return document_verdict(trace, findings_of)


# ---------------------------------------------------------------------------------------------
# DOCSHARE-009 / -010: LOINC type code, allowed types


@check("cda.type_code_allowed", verifies=["DOCSHARE-009", "DOCSHARE-010"], scenario=DOCUMENTS, reads_all=True)
def type_code_allowed(trace: TraceView, ctx: EvalContext) -> Verdict:
    """The document code is LOINC and an allowed type; a type not allowed is refused before any submission."""
    found = checked_documents(trace)
    if isinstance(found, Verdict):
        return found
    allowed = [str(c) for c in ctx.param("DOCSHARE-010", "allowed_types", []) or []]
    system = ctx.param("DOCSHARE-009", "code_system", LOINC)
    findings = []
    for s, root in found:
        el = first(root, "v3:code")
        got = [el.get("code"), el.get("codeSystem")] if el is not None else None
        if el is None or el.get("codeSystem") != system:
            findings.append(quote(s.exchange, f"{s.label()}: the document code is not a LOINC code",
                                  where="/ClinicalDocument/code/@codeSystem", expected=system, got=got)
                            .about("DOCSHARE-009"))
        elif allowed and el.get("code") not in allowed:
            findings.append(quote(s.exchange, f"{s.label()}: document type {el.get('code')} is not allowed",
                                  where="/ClinicalDocument/code/@code", expected=allowed, got=el.get("code"))
                            .about("DOCSHARE-010"))
    if allowed:
        findings += about(["DOCSHARE-010"], _not_allowed_refused(trace, allowed))
    return verdict(findings, len(found), "document(s)")


def _not_allowed_refused(subject: TraceView | RunView, allowed: list[str]) -> list[Finding]:
    """Steps asking for a type that is not allowed: status refused and no request to the shared record."""
    out = []
    for trace, note in ((t, n) for t in views(subject) for n in t.performed("document.submit")):
        asked = str(note.data.get("input", {}).get("document_type", ""))
        if asked in allowed:
            continue
        sent = [e for e in step_exchanges(trace, note, "dmp") if e.method == "POST"]
        for e in sent:
            out.append(quote(e, f"{step_label(note)}: asked for type {asked}, which is not allowed, the software "
                           "sent a submission to the shared record", where=e.local_path, expected="no request"))
        status = output(note).get("status")
        if status != "refused":
            out.append(Finding(f"{step_label(note)}: asked for type {asked}, which is not allowed, the software "
                               "did not answer refused", exchange=note.seq, scenario=note.scenario, where="output.status",
                               expected="refused", got=status))
    return out


# ---------------------------------------------------------------------------------------------
# DOCSHARE-027 (2.0): Schematron


@check("cda.schematron_valid", verifies=["DOCSHARE-027"], scenario=DOCUMENTS, reads_all=True)
def schematron_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Every submitted document raises no error-level assertion of the Schematron the sandbox publishes."""
    return document_verdict(trace, _schematron_findings, "document(s) against the Schematron rules")


def _schematron_findings(s: Submitted, root: etree._Element) -> list[Finding]:
    return [quote(s.exchange, f"{s.label()}: Schematron {f.rule}: {f.text}", where=f.location,
                  expected="no error-level assertion", got=f.rule) for f in cda_rules.run(root) if f.is_error]


# ---------------------------------------------------------------------------------------------
# DOCSHARE-029 (2.0): level-3 lab results


@check("cda.level3_entries_valid", verifies=["DOCSHARE-029"], scenario=V2_CONTENT)
def level3_entries_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each requested lab result is an observation entry (LOINC code, typed value, range, interpretation) and
    appears in the section narrative."""
    note = step_named(trace, "lab_results")
    if note is None:
        return not_exercised(Finding("the scenario never asked for a lab report with structured results"))
    subs = [s for s in submissions(trace) if s.step is not None and s.step.seq == note.seq]
    if not subs:
        return not_exercised(Finding(f"{step_label(note)}: the software sent no lab report to the shared record",
                              exchange=note.seq, scenario=note.scenario, got=output(note) or None))
    s = subs[-1]
    root = s.root
    if not is_clinical_document(root):
        return failed(quote(s.exchange, f"{s.label()}: the lab report is not a ClinicalDocument"))
    assert root is not None
    body = first(root, "v3:component/v3:structuredBody")
    if body is None:
        return failed(quote(s.exchange, f"{s.label()}: the lab report is not a level-3 document (no structuredBody)",
                            where="/ClinicalDocument/component", expected="structuredBody",
                            got=[etree.QName(c).localname for c in root.xpath("v3:component/*", namespaces=NS)]))
    narrative = " ".join(" ".join(t.itertext()) for t in body.xpath(".//v3:section/v3:text", namespaces=NS))
    results = note.data.get("input", {}).get("results", [])
    findings = []
    for r in results:
        findings += _result_findings(s, body, narrative, r)
    for f in s.sandbox_findings():
        if f.get("code") == "cda-entry-invalid":
            findings.append(quote(s.exchange, f"{s.label()}: the shared record refused an entry: {f.get('message')}",
                                  where=str(f.get("location", ""))))
    return verdict(findings, len(results), "lab result(s)")


def _number(value: float) -> str:
    return f"{value:g}"


def _result_findings(s: Submitted, body: etree._Element, narrative: str, r: dict[str, Any]) -> list[Finding]:
    obs = [o for o in body.xpath(".//v3:entry//v3:observation", namespaces=NS)
           if first(o, "v3:code") is not None and first(o, "v3:code").get("code") == r["code"]]  # type: ignore[union-attr]  # first() is called twice on the same element: not None the second time
    label = f"{s.label()}: result {r['code']} ({r['label']})"
    if not obs:
        return [quote(s.exchange, f"{label} has no observation entry", where="//entry/observation/code/@code",
                      expected=r["code"])]
    o = obs[0]
    where = element_path(o)
    out = []
    code = first(o, "v3:code")
    if code is not None and code.get("codeSystem") != LOINC:
        out.append(quote(s.exchange, f"{label}: the analysis code is not LOINC", where=where + "/code/@codeSystem",
                         expected=LOINC, got=code.get("codeSystem")))
    out += _value_findings(s, o, where, label, r)
    if r.get("interpretation"):
        interp = first(o, "v3:interpretationCode")
        got = [interp.get("code"), interp.get("codeSystem")] if interp is not None else None
        if got != [r["interpretation"], "2.16.840.1.113883.5.83"]:
            out.append(quote(s.exchange, f"{label}: interpretation", where=where + "/interpretationCode",
                             expected=[r["interpretation"], "2.16.840.1.113883.5.83"], got=got))
    if r.get("low") is not None and r.get("high") is not None:
        low = first(o, "v3:referenceRange/v3:observationRange/v3:value/v3:low")
        high = first(o, "v3:referenceRange/v3:observationRange/v3:value/v3:high")
        got_range = [_float(low.get("value")) if low is not None else None,
                     _float(high.get("value")) if high is not None else None]
        if got_range != [float(r["low"]), float(r["high"])]:
            out.append(quote(s.exchange, f"{label}: reference range", where=where + "/referenceRange",
                             expected=[r["low"], r["high"]], got=got_range))
    shown = _number(r["value"]) if isinstance(r["value"], int | float) else str(r["value"])
    if str(r["label"]) not in narrative or shown not in narrative:
        out.append(quote(s.exchange, f"{label}: the section narrative does not show the result",
                         where="//section/text", expected=[r["label"], shown]))
    return out


def _value_findings(s: Submitted, o: etree._Element, where: str, label: str, r: dict[str, Any]) -> list[Finding]:
    value = first(o, "v3:value")
    xsi_type = value.get("{http://www.w3.org/2001/XMLSchema-instance}type", "") if value is not None else ""
    if value is None or not xsi_type:
        return [quote(s.exchange, f"{label}: no typed value", where=where + "/value")]
    if isinstance(r["value"], int | float) and r.get("unit"):
        got = [xsi_type.split(":")[-1], _float(value.get("value")), value.get("unit")]
        if got != ["PQ", float(r["value"]), r["unit"]]:
            return [quote(s.exchange, f"{label}: value", where=where + "/value",
                          expected=["PQ", r["value"], r["unit"]], got=got)]
        return []
    text = " ".join("".join(value.itertext()).split()) or value.get("displayName") or value.get("value") or ""
    if str(r["value"]) not in text:
        return [quote(s.exchange, f"{label}: value", where=where + "/value", expected=r["value"], got=text)]
    return []


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
