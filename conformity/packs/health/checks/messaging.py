"""Checks: secure messaging (MESSAGING), the INS only for qualified identities (PATIENTID-010), the
software identified in look-ups (PATIENTID-012) — on the trace of scenario ``messaging.send``.

The evidence is every message the messaging service recorded (sender, recipients, attachments
decoded: IHE XDM ZIP members, METADATA.XML and CDA parsed safely), the session's directory (the
trace's fixtures), the identity service's answers, and the driver's answer to each step.
"""

from __future__ import annotations

import hashlib
from typing import Any

from lxml import etree

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import names_whole, noted, quote, step_exchanges
from conformity.checks.model import Finding, Verdict, failed, not_exercised, passed
from conformity.checks.registry import check
from conformity.checks.trace import Exchange, Note, RunView, TraceView
from conformity.packs.health.checks.cda import patient_id_findings, verdict
from conformity.packs.health.checks.docshare_flows import refusal_findings
from conformity.packs.health.checks.evidence import (
    RIM,
    XDM_METADATA,
    Identity,
    Package,
    address_key,
    carries_ins_reference,
    directory_addresses,
    expected_reference,
    identity_for,
    ins_ids,
    messages,
    output,
    packages,
    practitioner_at,
    recipients,
    step_label,
    step_of,
    step_submissions,
    xdm_patient_ids,
)

SCENARIO = "messaging.send"


def sent_or_fail(trace: TraceView | RunView) -> list[Exchange] | Verdict:
    found = messages(trace)
    return found if found else not_exercised(Finding("the software sent no message to the messaging service in this "
                                              "run, so the rule could not be verified"))


# ---------------------------------------------------------------------------------------------
# MESSAGING-001..003, DIRECTORY-004: addresses from the directory


@check("messaging.sender_in_directory", verifies=["MESSAGING-001"], scenario=SCENARIO, reads_all=True)
def sender_in_directory(run: RunView, ctx: EvalContext) -> Verdict:
    """Each message's sender, in every scenario, is an active directory address of the logged-in practitioner or
    of the site."""
    found = sent_or_fail(run)
    if isinstance(found, Verdict):
        return found
    findings = []
    for e in found:
        trace = run.get(e.scenario)
        assert trace is not None
        book = directory_addresses(trace)
        site = str((trace.fixtures.get("sites") or [{}])[0].get("site_id", ""))
        body = e.request_json if isinstance(e.request_json, dict) else {}
        sender = str(body.get("from", ""))
        entry = book.get(address_key(sender))
        owner = practitioner_at(trace, e.seq)
        if entry is None or not entry["active"]:
            findings.append(quote(e, "the sender is not an active address of the directory", where="request.body.from",
                                  expected="a directory address", got=sender))
        elif entry["national_id"] != owner and not (entry["national_id"] is None and entry["finess"] == site):
            findings.append(quote(e, "the sender is neither the logged-in practitioner's address nor the site's",
                                  where="request.body.from", expected=f"an address of {owner} or of site {site}",
                                  got=sender))
    return verdict(findings, len(found), "message(s)")


@check("messaging.recipient_in_directory", verifies=["MESSAGING-002", "DIRECTORY-004"], scenario=SCENARIO,
       reads_all=True)
def recipient_in_directory(run: RunView, ctx: EvalContext) -> Verdict:
    """Every recipient of every message submitted in every scenario is an active messaging address of the directory."""
    found = sent_or_fail(run)
    if isinstance(found, Verdict):
        return found
    findings = []
    for e in found:
        book = directory_addresses(run.get(e.scenario))  # type: ignore[arg-type]  # run.get() of a scenario the check reads is never None (evaluation ensures its trace)
        for address in recipients(e):
            entry = book.get(address_key(address))
            if entry is None or not entry["active"]:
                # an address the directory does not list was not taken from it (DIRECTORY-004); a listed but
                # inactive one was, and breaks MESSAGING-002 only
                findings.append(quote(e, f"recipient {address} is not {'listed' if entry is None else 'active'} in the "
                                      "directory", where="request.body.to", expected="an active directory address",
                                      got=address).about("MESSAGING-002", *(("DIRECTORY-004",) if entry is None else ())))
    return verdict(findings, len(found), "message(s)")


@check("messaging.unknown_recipient_refused", verifies=["MESSAGING-003", "DIRECTORY-004"], scenario=SCENARIO,
       reads_all=True)
def unknown_recipient_refused(run: RunView, ctx: EvalContext) -> Verdict:
    """A message with an address the directory does not list is refused whole, before any request, naming it."""
    findings, seen = [], 0
    for trace, note in ((t, n) for t in run for n in t.performed("message.send")):
        book = directory_addresses(trace)
        asked = [str(a) for a in note.data.get("input", {}).get("recipients", [])]
        unknown = [a for a in asked if address_key(a) not in book]
        if not unknown:
            continue
        seen += 1
        findings += refused_before_sending(trace, note, unknown, "not listed in the directory", ("MESSAGING-003",))
        findings += unchecked_findings(trace, note, unknown)
    if not seen:
        return not_exercised(Finding("the scenario never asked for a message to an address the directory does not list"))
    return verdict(findings, seen, "message(s) to unlisted addresses")


def unchecked_findings(trace: TraceView, note: Note, addresses: list[str]) -> list[Finding]:
    """Typed addresses must be checked against the directory (DIRECTORY-004): a request naming each of them, in the
    session, before the step ends."""
    asked = {address_key(v) for e in trace.exchanges("directory", method="GET", before=note.seq)
             for values in e.query.values() for v in values}
    return [noted(note, f"{step_label(note)}: the typed address {a} was never checked against the directory",
                  where="directory requests", expected=f"a directory request for {a}", got="none")
            .about("DIRECTORY-004") for a in addresses if address_key(a) not in asked]


def refused_before_sending(trace: TraceView, note: Note, addresses: list[str], why: str,
                           naming: tuple[str, ...] = ()) -> list[Finding]:
    """No message submitted in the step, status refused, the addresses named (a refusal that does not name them
    breaks ``naming`` only, when given)."""
    out = []
    for e in step_exchanges(trace, note, "mss"):
        if e.method == "POST":
            out.append(quote(e, f"{step_label(note)}: the message to {', '.join(addresses)} ({why}) was sent to the "
                           "messaging service", where=e.local_path, expected="no request", got=recipients(e)))
    result = output(note)
    if result.get("status") != "refused":
        out.append(Finding(f"{step_label(note)}: a message to {', '.join(addresses)} ({why}) was not refused",
                           exchange=note.seq, scenario=note.scenario, where="output.status", expected="refused", got=result.get("status")))
    named = set(result.get("refused_recipients") or [])
    missing = [a for a in addresses if a not in named and a not in str(result.get("error", ""))]
    if result.get("status") == "refused" and missing:
        out.append(Finding(f"{step_label(note)}: the refusal does not name {', '.join(missing)}", exchange=note.seq, scenario=note.scenario,
                           where="output.refused_recipients", expected=missing, got=result.get("refused_recipients"),
                           requirements=naming))
    return out


# ---------------------------------------------------------------------------------------------
# MESSAGING-004: IHE XDM packages


def is_patient_document(p: Package) -> bool:
    return bool(p.attachment.get("patient")) or p.is_zip or bool(p.cda_documents())


def xdm_findings(e: Exchange, p: Package) -> list[Finding]:
    """The attachment is an XDM ZIP whose METADATA.XML records each document's hash and size."""
    where = f"request.body.attachments[{p.index}]"
    if not p.is_zip:
        return [quote(e, f"attachment {p.index} carries a patient document outside an IHE XDM ZIP package",
                      where=where, expected="application/zip (IHE XDM)", got=p.attachment.get("content_type"))]
    if p.error:
        return [quote(e, f"attachment {p.index}: {p.error}", where=where)]
    if p.metadata is None:
        return [quote(e, f"attachment {p.index}: the ZIP has no {XDM_METADATA}", where=where, expected=XDM_METADATA,
                      got=sorted(p.members))]
    if p.metadata.root is None:
        return [quote(e, f"attachment {p.index}: {XDM_METADATA} is not well-formed XML: {p.metadata.error}",
                      where=where + "/" + XDM_METADATA)]
    entries = list(p.metadata.root.iter(f"{{{RIM}}}ExtrinsicObject"))
    if not entries:
        return [quote(e, f"attachment {p.index}: {XDM_METADATA} describes no document", where=where + "/" + XDM_METADATA,
                      expected="rim:ExtrinsicObject")]
    out = []
    for entry in entries:
        out += _entry_findings(e, p, entry)
    return out


def _slot(entry: etree._Element, name: str) -> str | None:
    for slot in entry.iter(f"{{{RIM}}}Slot"):
        if slot.get("name") == name:
            value = next(slot.iter(f"{{{RIM}}}Value"), None)
            return (value.text or "").strip() if value is not None else None
    return None


def _entry_findings(e: Exchange, p: Package, entry: etree._Element) -> list[Finding]:
    where = f"request.body.attachments[{p.index}]/{XDM_METADATA}/ExtrinsicObject[@id='{entry.get('id')}']"
    uri = _slot(entry, "URI")
    member = f"IHE_XDM/SUBSET01/{uri}" if uri else None
    if member is None or member not in p.members:
        return [quote(e, f"attachment {p.index}: the document named by METADATA.XML is not in the package",
                      where=where + "/Slot[@name='URI']", expected=sorted(p.members), got=uri)]
    data = p.members[member]
    out = []
    if _slot(entry, "hash") != hashlib.sha1(data).hexdigest():
        out.append(quote(e, f"attachment {p.index}: METADATA.XML hash is not the SHA-1 of {uri}",
                         where=where + "/Slot[@name='hash']", expected=hashlib.sha1(data).hexdigest(),
                         got=_slot(entry, "hash")))
    if _slot(entry, "size") != str(len(data)):
        out.append(quote(e, f"attachment {p.index}: METADATA.XML size is not the length of {uri}",
                         where=where + "/Slot[@name='size']", expected=str(len(data)), got=_slot(entry, "size")))
    return out


@check("messaging.attachment_xdm_valid", verifies=["MESSAGING-004"], scenario=SCENARIO, reads_all=True)
def attachment_xdm_valid(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A patient document travels in an IHE XDM ZIP whose METADATA.XML hash and size match the document."""
    found = sent_or_fail(trace)
    if isinstance(found, Verdict):
        return found
    findings, count = [], 0
    for e in found:
        for p in packages(e):
            if is_patient_document(p):
                count += 1
                findings += xdm_findings(e, p)
    if not count:
        return not_exercised(Finding("no message carried a patient document, so the packaging could not be verified"))
    return verdict(findings, count, "attachment(s)")


# ---------------------------------------------------------------------------------------------
# MESSAGING-005, PATIENTID-010: the patient's identity in attachments


def attachment_identity(trace: TraceView, e: Exchange) -> tuple[Note | None, Identity]:
    """The step that sent ``e`` and the identity of the patient its produced attachment is about."""
    note = step_of(trace, e)
    spec = (note.data.get("input", {}).get("attachment") or {}) if note else {}
    return note, identity_for(trace, spec.get("patient"), e.seq)


def ins_carried(p: Package, ins: str = "") -> list[tuple[str, str]]:
    """(where, value) of every INS an attachment carries: its patient member, METADATA.XML, CDA documents — under an
    INS authority, or ``ins`` (the number the identity service returned) under any other."""
    where = f"request.body.attachments[{p.index}]"
    out = []
    if p.patient.get("ins"):
        out.append((where + ".patient.ins", str(p.patient["ins"])))
    if p.metadata is not None and p.metadata.root is not None:
        out += [(f"{where}/{XDM_METADATA} {name}", v) for name, v in xdm_patient_ids(p.metadata.root)
                if carries_ins_reference(v, ins)]
    for name, doc in p.cda_documents():
        out += [(f"{where}/{name} /ClinicalDocument/recordTarget/patientRole/id", str(el.get("extension")))
                for el in ins_ids(doc.root, ins)]
    return out


@check("ins.only_qualified_carried", verifies=["PATIENTID-010", "MESSAGING-005"], scenario=SCENARIO, reads_all=True)
def only_qualified_carried(run: RunView, ctx: EvalContext) -> Verdict:
    """No INS in a message, its XDM metadata or its documents, nor in a document submission, for a patient whose
    identity is not qualified, in any scenario."""
    findings, seen = unqualified_submission_findings(run)
    delivered = 0
    for trace, note in ((t, n) for t in run for n in t.performed("message.send")):
        spec = note.data.get("input", {}).get("attachment") or {}
        if "patient" not in spec:
            continue
        who = identity_for(trace, spec["patient"], note.seq)
        if who.qualified:
            continue
        if not handled(note):  # the driver failed or the action is unsupported: the software never saw the request
            continue
        seen += 1
        sent = [e for e in step_exchanges(trace, note, "mss") if e.method == "POST"]
        delivered += len(sent)
        for e in sent:
            findings += text_findings(e, note, who)
            for p in packages(e):
                for where, value in ins_carried(p, str((who.matched or {}).get("ins") or "")):
                    # METADATA.XML and the CDA are MESSAGING-005's; the attachment's patient member only PATIENTID-010's
                    inside = "/" in where
                    findings.append(quote(e, f"{step_label(note)}: the INS is carried for {who.describe()}",
                                          where=where, expected="no INS (a local patient id)", got=value)
                                    .about("PATIENTID-010", *(("MESSAGING-005",) if inside else ())))
    if not seen:
        return not_exercised(Finding("the software handled no request to send a message or submit a document about a "
                                     "patient whose identity is not qualified, so the rule was not exercised"))
    if findings:
        return failed(*findings)
    return passed(f"{seen} request(s) to send or submit about unqualified identities handled by the software: "
                  f"{delivered} message(s) reached the messaging service, none carrying an INS (the others declined)")


def handled(note: Note) -> bool:
    """Whether the software handled a step: its driver answered an output (not a failure, nor unsupported)."""
    data = note.data
    return "output" in data and not data.get("unsupported") and "failure" not in data


def text_findings(e: Exchange, note: Note, who: Identity) -> list[Finding]:
    """The INS the service returned for a patient whose identity is not qualified, written in the message's text."""
    ins = str((who.matched or {}).get("ins") or "")
    body = e.request_json if isinstance(e.request_json, dict) else {}
    return [quote(e, f"{step_label(note)}: the message's {part} carries the INS of {who.describe()}",
                  where=f"request.body.{part}", expected="no INS", got=ins).about("PATIENTID-010")
            for part in ("subject", "body") if ins and ins in str(body.get(part, ""))]


def unqualified_submission_findings(run: RunView) -> tuple[list[Finding], int]:
    """INS carried in documents submitted to the shared record for a patient whose identity is not qualified."""
    findings, seen = [], 0
    for trace, note in ((t, n) for t in run for n in t.performed("document.submit")):
        who = identity_for(trace, note.data.get("input", {}).get("patient"), note.seq)
        if who.qualified or who.lookup is None:
            continue
        if not handled(note):
            continue
        seen += 1
        ins = str((who.matched or {}).get("ins") or "")
        for s in step_submissions(trace, note):
            if s.metadata.get("patient_id") and carries_ins_reference(str(s.metadata["patient_id"]), ins):
                findings.append(quote(s.exchange, f"{s.label()}: the INS is carried for {who.describe()}",
                                      where="metadata.patient_id", expected="no INS (a local patient id)",
                                      got=s.metadata["patient_id"]).about("PATIENTID-010"))
            if s.root is not None:
                findings += [quote(s.exchange, f"{s.label()}: the INS is carried for {who.describe()}",
                                   where="/ClinicalDocument/recordTarget/patientRole/id",
                                   expected="no INS (a local patient id)", got=el.get("extension"))
                             .about("PATIENTID-010") for el in ins_ids(s.root, ins)]
    return findings, seen


@check("messaging.attachment_patient_id_valid", verifies=["MESSAGING-005"], scenario=SCENARIO, reads_all=True)
def attachment_patient_id_valid(run: RunView, ctx: EvalContext) -> Verdict:
    """For a qualified identity, the attachment, METADATA.XML and the CDA carry the INS and OID returned."""
    findings, count = [], 0
    for e in messages(run):
        note, who = attachment_identity(run.get(e.scenario), e)  # type: ignore[arg-type]  # run.get() of a scenario the check reads is never None (evaluation ensures its trace)
        identity = who.matched
        if note is None or not who.qualified or identity is None:
            continue
        for p in packages(e):
            count += 1
            findings += _identity_findings(e, p, identity)
    if not count:
        return not_exercised(Finding("the software sent no message with a document about a qualified patient, so the "
                              "patient identity in attachments could not be verified"))
    return verdict(findings, count, "attachment(s)")


def _identity_findings(e: Exchange, p: Package, identity: dict[str, Any]) -> list[Finding]:
    where = f"request.body.attachments[{p.index}]"
    out = []
    patient = p.patient
    wanted = {"ins": identity.get("ins"), "oid": identity.get("oid")}
    if {"ins": patient.get("ins"), "oid": patient.get("oid")} != wanted:
        out.append(quote(e, f"attachment {p.index}: the patient identity is not the one the service returned",
                         where=where + ".patient", expected=wanted, got=patient))
    reference = expected_reference(identity)
    if p.metadata is not None and p.metadata.root is not None:
        for name, value in xdm_patient_ids(p.metadata.root):
            if value != reference:
                out.append(quote(e, f"attachment {p.index}: {XDM_METADATA} {name} is not the patient's INS",
                                 where=f"{where}/{XDM_METADATA}", expected=reference, got=value))
    for name, doc in p.cda_documents():
        out += patient_id_findings(e, f"attachment {p.index} {name}", doc.root, identity)
    return out


# ---------------------------------------------------------------------------------------------
# MESSAGING-008: delivery failures reported


@check("service.refusal_reported", verifies=["MESSAGING-008"], scenario=SCENARIO, reads_all=True)
def refusal_reported(run: RunView, ctx: EvalContext) -> Verdict:
    """A message the messaging service refused is reported refused or error, naming the recipients concerned."""
    findings, refused = refusal_findings(run, "mss", ("message.send",), ("sent",), name_recipients=True)
    if not refused:
        return not_exercised(Finding("the messaging service refused no message in this run (its 503 was never "
                              "reached), so the rule could not be verified"))
    return verdict(findings, refused, "refused message(s)")


# ---------------------------------------------------------------------------------------------
# PATIENTID-012: the software identified in look-ups


@check("client.software_identified", verifies=["PATIENTID-012"], scenario=SCENARIO, reads_all=True)
def software_identified(run: RunView, ctx: EvalContext) -> Verdict:
    """Each identity look-up, in every scenario, names the software: its User-Agent carries the declared name,
    version and registration id."""
    lookups = [e for trace in run for e in trace.exchanges("insi", method="POST", path="/lookup")]
    if not lookups:
        return not_exercised(Finding("the software sent no identity look-up in this run"))
    declared = [str(ctx.software.get(k, "")) for k in ("software", "version", "registration_id")]
    findings = []
    for e in lookups:
        agent = e.request_headers().get("user-agent", "")
        missing = [v for v in declared if v and not names_whole(v, agent)]  # whole: 1.0 is not 1.0.1
        if missing:
            findings.append(quote(e, "the look-up does not identify the software under test", where="request.headers."
                                  "user-agent", expected=declared, got=agent or None))
    return verdict(findings, len(lookups), "look-up(s)")
