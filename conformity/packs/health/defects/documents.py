"""Mutations of what the software sends to the shared record and how it handles its answers: DOCSHARE, ETHICS-002."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

from lxml import etree

from conformity.checks.trace import Exchange
from conformity.defects.edit import NS, V3, TraceEdit, edit_document, remove, request_json, set_attr
from conformity.packs.health.defects.common import mutation

DOCUMENTS, LIFECYCLE, RETRY, V2 = "docshare.documents", "docshare.lifecycle", "docshare.retry", "docshare.v2_content"
W2 = ("2027-W2",)


def submission(t: TraceEdit, step: str = "discharge_letter") -> Exchange:
    return t.in_step(step, "dmp", method="POST")[-1]


def metadata(t: TraceEdit, step: str = "discharge_letter") -> dict[str, Any]:
    found: dict[str, Any] = request_json(submission(t, step))["metadata"]
    return found


# ---------------------------------------------------------------------------------------------
# submission metadata


def field(mid: str, breaks: list[str], name: str, value: Callable[[TraceEdit, str], str], doc: str,
          waves: tuple[str, ...] = ("2026-W1", "2027-W2")) -> None:
    """Register a mutation: the discharge letter's submission metadata ``name`` is ``value(trace, current)``."""

    def change(t: TraceEdit) -> int:
        metadata(t)[name] = value(t, str(metadata(t).get(name, "")))
        return submission(t).seq

    change.__doc__ = doc
    mutation(mid, scenario=DOCUMENTS, breaks=breaks, where=f"metadata.{name}", waves=waves)(change)


def other_author(t: TraceEdit, current: str) -> str:
    return str(next(p["national_id"] for p in t.fixtures["practitioners"] if p["national_id"] != current))


field("hash-of-other-bytes", ["DOCSHARE-015"], "hash", lambda t, v: "0" * 40,
      "The hash is computed before the document is serialised.")
field("class-code-not-coded", ["DOCSHARE-016"], "class_code", lambda t, v: "99", "classCode is not taken from its value set.")
field("practice-setting-fixed", ["DOCSHARE-016"], "practice_setting", lambda t, v: "RADIOLOGIE",
      "practiceSettingCode is a fixed value, not the one mapped to the author.", W2)
field("unique-id-too-long", ["DOCSHARE-019"], "unique_id", lambda t, v: v.split("^")[0] + "^" + "f" * 64,
      "The uniqueId is a UUID appended to a long root: more than 64 characters.")
field("creation-time-local", ["DOCSHARE-007"], "creation_time", lambda t, v: "2001-01-01T00:00:00Z",
      "creationTime is not the document's effectiveTime in UTC (only DOCSHARE-007 speaks of creationTime).")
field("patient-id-without-oid", ["DOCSHARE-004"], "patient_id", lambda t, v: v.split("^")[0],
      "The submission's patientId carries the INS without its authority.")
field("author-of-metadata-other", ["DOCSHARE-006"], "author_id", other_author,
      "The submission names the site's default practitioner as author, not the document's.")
field("type-code-of-metadata-other", ["DOCSHARE-009"], "type_code", lambda t, v: "60591-5",
      "The submission's typeCode is another allowed type than the document's code.")


@mutation("software-version-stale", scenario=DOCUMENTS, breaks=["DOCSHARE-017"], where="software")
def software_version_stale(t: TraceEdit) -> int:
    """The submissions name a former version of the software."""
    request_json(submission(t))["software"]["version"] = "0.9.0"
    return submission(t).seq


@mutation("site-of-another-installation", scenario=DOCUMENTS, breaks=["DOCSHARE-018"], where="site.id")
def site_of_another_installation(t: TraceEdit) -> int:
    """The care site id is a default left from the vendor's demo installation."""
    request_json(submission(t))["site"]["id"] = "999999999"
    return submission(t).seq


@mutation("birth-date-in-listing-query", scenario=DOCUMENTS, breaks=["SECURITY-006"], where="request.path/query")
def birth_date_in_listing_query(t: TraceEdit) -> int:
    """The software narrows a patient's document listing with the patient's birth date in the query string (only the
    patient id in its path is a search parameter the interface defines)."""
    listing = next(e for e in t.exchanges("dmp", method="GET") if e.local_path.startswith("/patients/"))
    born = next(str(p["traits"]["birth_date"]) for p in t.fixtures["patients"] if (p.get("traits") or {}).get("birth_date"))
    listing.raw["request"]["query"] = {"birth_date": [born]}
    return listing.seq


# ---------------------------------------------------------------------------------------------
# the documents themselves


@mutation("author-id-without-prefix", scenario=DOCUMENTS, breaks=["DOCSHARE-006"], where="assignedAuthor")
def author_id_without_prefix(t: TraceEdit) -> int:
    """The document's author id is the 11-digit RPPS number, without its prefix 8."""

    def change(root: etree._Element) -> None:
        el = root.xpath("v3:author/v3:assignedAuthor/v3:id[@root='1.2.250.1.71.4.2.1']", namespaces=NS)[0]
        el.set("extension", el.get("extension")[1:])

    edit_document(submission(t), change)
    return submission(t).seq


@mutation("stale-ins-after-the-returned-one", scenario=DOCUMENTS, breaks=["DOCSHARE-004"], where="patientRole/id")
def stale_ins_after_the_returned_one(t: TraceEdit) -> int:
    """After the INS the service returned, the document's patientRole carries a second id under an INS authority: an
    INS the software kept from another identity (another patient's number)."""

    def change(root: etree._Element) -> None:
        el = root.xpath("v3:recordTarget/v3:patientRole/v3:id", namespaces=NS)[0]
        other = next(str(p["ins"]) for p in t.fixtures["patients"] if p.get("ins") and p["ins"] != el.get("extension"))
        stale = copy.deepcopy(el)
        stale.set("extension", other)
        el.addnext(stale)

    edit_document(submission(t), change)
    return submission(t).seq


def attribute(mid: str, breaks: list[str], path: str, name: str, value: str, doc: str, where: str) -> None:
    """Register a mutation: the discharge letter's element at ``path`` has attribute ``name`` set to ``value``."""

    def change(t: TraceEdit) -> int:
        edit_document(submission(t), set_attr(path, name, value))
        return submission(t).seq

    change.__doc__ = doc
    mutation(mid, scenario=DOCUMENTS, breaks=breaks, where=where)(change)


attribute("ins-oid-of-production", ["DOCSHARE-004"], "v3:recordTarget/v3:patientRole/v3:id", "root",
          "1.2.250.1.213.1.4.8", "The document names the INS under the production NIR authority instead of the one "
          "the service returned.", "patientRole/id")
attribute("pdf-media-type", ["DOCSHARE-003"], "v3:component/v3:nonXMLBody/v3:text", "mediaType", "text/plain",
          "The level-1 body is declared text/plain.", "nonXMLBody/text")
attribute("confidentiality-restricted", ["DOCSHARE-008"], "v3:confidentialityCode", "code", "R",
          "confidentialityCode R instead of N.", "confidentialityCode")
attribute("effective-time-date-only", ["DOCSHARE-007"], "v3:effectiveTime", "value", "20240101",
          "effectiveTime is a date without time or offset.", "effectiveTime")


@mutation("language-missing", scenario=DOCUMENTS, breaks=["DOCSHARE-027"], where="/ClinicalDocument", waves=W2)
def language_missing(t: TraceEdit) -> int:
    """The document has no languageCode (a Schematron error)."""
    edit_document(submission(t), remove("v3:languageCode"))
    return submission(t).seq


@mutation("header-template-missing", scenario=DOCUMENTS, breaks=["DOCSHARE-002"], where="templateId")
def header_template_missing(t: TraceEdit) -> int:
    """The CI-SIS header templateId is missing."""
    edit_document(submission(t), remove("v3:templateId[@root='1.2.250.1.213.1.1.1.1']"))
    return submission(t).seq


@mutation("not-cda", scenario=DOCUMENTS, breaks=["DOCSHARE-001"], where="line")
def not_cda(t: TraceEdit) -> int:
    """An element the CDA schema does not have."""

    def change(root: etree._Element) -> None:
        root.xpath("v3:title", namespaces=NS)[0].addnext(etree.Element(f"{{{V3}}}remarks"))

    edit_document(submission(t), change)
    return submission(t).seq


def not_sent(step: str, requirement: str, category: str = "HOSPITAL") -> None:
    """Register a mutation: the software refuses to send the document of step ``step`` ("type not configured")."""

    def change(t: TraceEdit) -> int:
        gone = {e.seq for e in t.in_step(step, "dmp")}
        t.drop(lambda e: e["seq"] not in gone)
        asked = t.step(step).data["input"]["document_type"]
        return t.set_output(step, {"status": "refused", "error": f"type {asked} not configured for this site"})

    change.__doc__ = f"The document of step {step!r} is refused by the software (its type is not configured)."
    mutation(f"{step.replace('_', '-')}-not-sent", scenario=DOCUMENTS, breaks=[requirement], category=category)(change)


not_sent("lab_report", "DOCSHARE-011")
not_sent("discharge_letter", "DOCSHARE-012")
not_sent("medical_summary", "DOCSHARE-013", "GP")
not_sent("imaging_report", "DOCSHARE-014")


@mutation("type-not-allowed-error", scenario=DOCUMENTS, breaks=["DOCSHARE-010"], where="output.status")
def type_not_allowed_error(t: TraceEdit) -> int:
    """Asked for a type that is not allowed, the software answers error (not refused) and sends nothing."""
    return t.set_output("type_not_allowed", {"status": "error", "error": "cannot build this document"})


@mutation("unqualified-reported-accepted", scenario="docshare.unqualified", breaks=["DOCSHARE-005"],
          where="output.status")
def unqualified_reported_accepted(t: TraceEdit) -> int:
    """For a patient without a single match, the software queues the document and reports it accepted."""
    return t.set_output("no_match", {"status": "accepted", "document_id": "queued-1", "unique_id": "queued-1"})


@mutation("summary-coded-as-episode", scenario=DOCUMENTS, breaks=["DOCSHARE-010", "DOCSHARE-013"], where="code/@code",
          category="GP")
def summary_coded_as_episode(t: TraceEdit) -> int:
    """The medical summary is coded 34133-9 (summary of episode note)."""
    edit_document(submission(t, "medical_summary"), set_attr("v3:code", "code", "34133-9"))
    metadata(t, "medical_summary")["type_code"] = "34133-9"
    return submission(t, "medical_summary").seq


@mutation("listed-title-changed", scenario=DOCUMENTS, breaks=["DOCSHARE-025"], where="output.documents")
def listed_title_changed(t: TraceEdit) -> int:
    """The listing shows a title the service did not return."""
    t.output("list")["documents"][0]["title"] += " (copie)"
    return t.in_step("list", "dmp", method="GET")[-1].seq  # the finding quotes the listing the service served


@mutation("listing-first-page-only", scenario=DOCUMENTS, breaks=["DOCSHARE-025"], where="output.documents")
def listing_first_page_only(t: TraceEdit) -> int:
    """The listing shows one document fewer than the service returned (the last one, as a page size off by one
    would)."""
    t.output("list")["documents"].pop()
    return t.in_step("list", "dmp", method="GET")[-1].seq  # the finding quotes the listing the service served


# ---------------------------------------------------------------------------------------------
# lifecycle, retries


@mutation("replacement-without-rplc", scenario=LIFECYCLE, breaks=["DOCSHARE-022"], where="relatedDocument")
def replacement_without_rplc(t: TraceEdit) -> int:
    """The new version does not name the one it replaces."""
    e = t.in_step("replacement", "dmp", method="POST")[-1]
    edit_document(e, remove("v3:relatedDocument"))
    return e.seq


@mutation("refusal-hidden", scenario=LIFECYCLE, breaks=["DOCSHARE-024"], where="output.status")
def refusal_hidden(t: TraceEdit) -> int:
    """A replacement the record refused is reported accepted."""
    t.set_output("replace_superseded", {"status": "accepted"})
    return t.in_step("replace_superseded", "dmp")[-1].seq  # the finding quotes the refusal


@mutation("delete-not-reported", scenario=LIFECYCLE, breaks=["DOCSHARE-023"], where="output.status")
def delete_not_reported(t: TraceEdit) -> int:
    """A deletion the record performed is reported refused."""
    return t.set_output("delete", {"status": "refused", "error": "?"})


@mutation("resubmit-new-id", scenario=LIFECYCLE, breaks=["DOCSHARE-020"], where="metadata.unique_id")
def resubmit_new_id(t: TraceEdit) -> int:
    """A resubmission of the same document carries a new uniqueId."""
    e = t.in_step("resubmit", "dmp", method="POST")[-1]
    request_json(e)["metadata"]["unique_id"] = "1.2.250.1.999.77.1^other"
    return e.seq


@mutation("retry-too-soon", scenario=RETRY, breaks=["DOCSHARE-021"], where="request time")
def retry_too_soon(t: TraceEdit) -> int:
    """The retry after a 503 is sent at once, ignoring Retry-After."""
    attempts = t.in_step("submit", "dmp", method="POST")
    attempts[1].raw["time"] = attempts[0].raw["time"]
    attempts[1].raw["duration_ms"] = 0
    return attempts[1].seq


@mutation("retries-forever", scenario="docshare.retry_give_up", breaks=["DOCSHARE-021"], where="requests")
def retries_forever(t: TraceEdit) -> float:
    """Two more attempts after the fourth 503."""
    last = t.in_step("give_up", "dmp", method="POST")[-1]
    for i in (1, 2):
        t.insert(copy.deepcopy(last.raw) | {"seq": last.seq + i / 10})
    return last.seq + 0.2


@mutation("retries-with-size-of-base64", scenario="docshare.retry_give_up", breaks=["DOCSHARE-015"],
          where="metadata.size")
def retries_with_size_of_base64(t: TraceEdit) -> int:
    """The retry path builds the metadata again and takes the size of the base64 text, not of the document's bytes
    (the same document each time; the shared record, unavailable, never reads them)."""
    attempts = t.in_step("give_up", "dmp", method="POST")
    for retry in attempts[1:]:
        body = request_json(retry)
        body["metadata"]["size"] = len(body["document"])
    return attempts[1].seq


@mutation("retry-at-once-after-reset", scenario="docshare.retry_network", breaks=["DOCSHARE-021"], where="request time",
          waves=W2)
def retry_at_once_after_reset(t: TraceEdit) -> int:
    """After a connection reset the software sends the submission again at once."""
    attempts = t.in_step("reset", "dmp", method="POST")
    attempts[1].raw["time"] = attempts[0].raw["time"]
    attempts[1].raw["duration_ms"] = 0
    return attempts[1].seq


@mutation("new-id-after-dropped-reply", scenario="docshare.retry_network", breaks=["DOCSHARE-021"],
          where="metadata.unique_id", waves=W2)
def new_id_after_dropped_reply(t: TraceEdit) -> int:
    """After a reply that never came, the software sends the document again under a new uniqueId."""
    attempts = t.in_step("dropped_reply", "dmp", method="POST")
    request_json(attempts[1])["metadata"]["unique_id"] = "1.2.250.1.999.77.1^retry-2"
    return attempts[1].seq


@mutation("retry-rebuilds-document", scenario="docshare.retry_refused", breaks=["DOCSHARE-019", "DOCSHARE-021"],
          where="request.body.json.document", waves=W2)
def retry_rebuilds_document(t: TraceEdit) -> int:
    """After a 429 the software builds the document again for its retry: the same uniqueId, but a document stamped
    with the retry's instant (its effectiveTime and creationTime follow it): another document under the first one's
    uniqueId, which DOCSHARE-019 forbids as well."""
    attempts = t.in_step("rate_limited", "dmp", method="POST")
    retry = attempts[1]
    instant = dt.datetime.fromisoformat(retry.raw["time"].replace("Z", "+00:00")).replace(microsecond=0)
    edit_document(retry, set_attr("v3:effectiveTime", "value", instant.strftime("%Y%m%d%H%M%S+0000")))
    request_json(retry)["metadata"]["creation_time"] = instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    return retry.seq


# ---------------------------------------------------------------------------------------------
# DOCSHARE 2.0 content


@mutation("hidden-not-marked", scenario=V2, breaks=["DOCSHARE-031", "ETHICS-002"], where="hidden", waves=W2)
def hidden_not_marked(t: TraceEdit) -> int:
    """The author's listing does not mark the hidden document."""
    for d in t.output("author_list")["documents"]:
        d.pop("hidden", None)
    return t.step("author_list").seq


@mutation("hidden-shown-to-other", scenario=V2, breaks=["DOCSHARE-031", "ETHICS-002"], where="output.documents",
          waves=W2)
def hidden_shown_to_other(t: TraceEdit) -> int:
    """Another practitioner's listing shows the hidden document."""
    shown = t.output("author_list")["documents"]
    t.output("other_list")["documents"] = copy.deepcopy(shown)
    return t.step("other_list").seq


@mutation("lab-value-not-narrated", scenario=V2, breaks=["DOCSHARE-029"], where="/value", waves=W2)
def lab_value_not_narrated(t: TraceEdit) -> int:
    """A structured result's value differs from the one the narrative shows."""
    e = t.in_step("lab_results", "dmp", method="POST")[-1]
    edit_document(e, set_attr(".//v3:observation[v3:code/@code='2345-7']/v3:value", "value", "9.99"))
    return e.seq


@mutation("dispensation-not-sent", scenario=V2, breaks=["DOCSHARE-030"], waves=W2, category="PHARMACY")
def dispensation_not_sent(t: TraceEdit) -> int:
    """The dispensation record is never sent (the pharmacist's document type is not wired to the shared record)."""
    gone = {e.seq for e in t.in_step("dispensation", "dmp")}
    t.drop(lambda e: e["seq"] not in gone)
    return t.set_output("dispensation", {"status": "error", "error": "no shared-record mapping for 60593-1"})


@mutation("dispensation-template-copied", scenario=V2, breaks=["DOCSHARE-002", "DOCSHARE-030"], where="templateId/@root",
          waves=W2, category="PHARMACY")
def dispensation_template_copied(t: TraceEdit) -> int:
    """The dispensation record carries the patient summary's templateId (IPS-FR, DOCSHARE 2.2), copied from another
    template."""
    e = t.in_step("dispensation", "dmp", method="POST")[-1]
    edit_document(e, set_attr("v3:templateId[@root='1.2.250.1.213.1.1.1.40']", "root", "1.2.250.1.213.1.1.1.51"))
    return e.seq
