"""Every check of the documents / messaging / directory area fails for a realistic behaviour.

Verdicts are pure functions of the trace: the reference vendor's real traces (2027-W2, HOSPITAL) are
taken once, then each case changes one recorded fact the way a faulty software would have produced
it (a wrong hash, a missing templateId, a stale cache, a message reported sent after a 503…) and the
check must fail, quoting the field. The defects that matter most run for real in
``test_documents_messaging.py``.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from conformity.checks.evaluate import EvalContext, evaluate_check
from conformity.checks.registry import CHECKS
from conformity.harness.sandbox_access import SandboxAccess
from conformity.harness.scenario import ScenarioContext
from conformity.scenarios.health.documents import content, generated_contents
from tests.harness.test_documents_messaging import run_area

V3 = "urn:hl7-org:v3"
NS = {"v3": V3}
Trace = dict[str, Any]


@pytest.fixture(scope="module")
def reference(harness_sandbox: SandboxAccess) -> tuple[dict[str, Trace], EvalContext]:
    """The reference vendor's traces of every scenario of the area (2027-W2 HOSPITAL) and the run's context."""
    _, traces, ctx = run_area(harness_sandbox, "reference", "2027-W2", "HOSPITAL")
    return traces, ctx


# ---------------------------------------------------------------------------------------------
# reading and changing a recorded trace


def step(trace: Trace, name: str) -> dict[str, Any]:
    return next(e for e in trace["exchanges"] if e.get("note") == "driver.perform" and e["data"].get("name") == name)


def in_step(trace: Trace, name: str, service: str, method: str | None = None) -> list[dict[str, Any]]:
    """The recorded HTTP exchanges of a step (between the previous note and the step's note)."""
    end = step(trace, name)["seq"]
    start = max(e["seq"] for e in trace["exchanges"] if e["kind"] == "note" and e["seq"] < end)
    return [e for e in trace["exchanges"] if e["kind"] == "http" and start < e["seq"] < end
            and e["service"] == service and (method is None or e["request"]["method"] == method)]


def body(exchange: dict[str, Any]) -> dict[str, Any]:
    return exchange["request"]["body"]["json"]


def edit_document(exchange: dict[str, Any], change: Callable[[etree._Element], None]) -> None:
    """Change the CDA carried by a recorded submission (its bytes, not its metadata)."""
    root = etree.fromstring(base64.b64decode(body(exchange)["document"]))
    change(root)
    body(exchange)["document"] = base64.b64encode(etree.tostring(root, xml_declaration=True,
                                                                 encoding="UTF-8")).decode()


def remove(path: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        for el in root.xpath(path, namespaces=NS):
            el.getparent().remove(el)
    return change


def set_attr(path: str, name: str, value: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        root.xpath(path, namespaces=NS)[0].set(name, value)
    return change


def edit_xdm(exchange: dict[str, Any], change: Callable[[bytes], bytes]) -> None:
    """Change METADATA.XML inside the first attachment's XDM ZIP."""
    att = body(exchange)["attachments"][0]
    src = zipfile.ZipFile(io.BytesIO(base64.b64decode(att["content"])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, change(data) if info.filename.endswith("METADATA.XML") else data)
    att["content"] = base64.b64encode(out.getvalue()).decode()


def first_submission(trace: Trace, name: str = "discharge_letter") -> dict[str, Any]:
    return in_step(trace, name, "dmp", "POST")[-1]


# ---------------------------------------------------------------------------------------------
# the cases: (check, scenario, change, where the finding points)


def _hash(t: Trace) -> None:
    body(first_submission(t))["metadata"]["hash"] = "0" * 40


def _software(t: Trace) -> None:
    body(first_submission(t))["software"]["version"] = "0.9.0"


def _site(t: Trace) -> None:
    body(first_submission(t))["site"]["id"] = "999999999"


def _class_code(t: Trace) -> None:
    body(first_submission(t))["metadata"]["class_code"] = "99"


def _practice_setting(t: Trace) -> None:
    body(first_submission(t))["metadata"]["practice_setting"] = "RADIOLOGIE"


def _creation_time(t: Trace) -> None:
    body(first_submission(t))["metadata"]["creation_time"] = "2001-01-01T00:00:00Z"


def _pdf_media_type(t: Trace) -> None:
    edit_document(first_submission(t), set_attr("v3:component/v3:nonXMLBody/v3:text", "mediaType", "text/plain"))


def _confidentiality(t: Trace) -> None:
    edit_document(first_submission(t), set_attr("v3:confidentialityCode", "code", "R"))


def _effective_time(t: Trace) -> None:
    edit_document(first_submission(t), set_attr("v3:effectiveTime", "value", "20240101"))


def _language(t: Trace) -> None:
    edit_document(first_submission(t), remove("v3:languageCode"))


def _header_template(t: Trace) -> None:
    edit_document(first_submission(t), remove("v3:templateId[@root='1.2.250.1.213.1.1.1.1']"))


def _not_cda(t: Trace) -> None:
    def change(root: etree._Element) -> None:
        root.xpath("v3:title", namespaces=NS)[0].addnext(etree.Element(f"{{{V3}}}remarks"))
    edit_document(first_submission(t), change)


def _summary_of_episode_code(t: Trace) -> None:
    edit_document(first_submission(t, "medical_summary"), set_attr("v3:code", "code", "34133-9"))


def _dispensation_template(t: Trace) -> None:
    edit_document(first_submission(t, "dispensation"),  # the medical summary's templateId, copied
                  set_attr("v3:templateId[@root='1.2.250.1.213.1.1.1.40']", "root", "1.2.250.1.213.1.1.1.13"))


def _listed_title(t: Trace) -> None:
    step(t, "list")["data"]["output"]["documents"][0]["title"] += " (copie)"


def _no_rplc(t: Trace) -> None:
    edit_document(in_step(t, "replacement", "dmp", "POST")[-1], remove("v3:relatedDocument"))


def _refusal_hidden(t: Trace) -> None:
    step(t, "replace_superseded")["data"]["output"] = {"status": "accepted"}


def _delete_not_reported(t: Trace) -> None:
    step(t, "delete")["data"]["output"] = {"status": "refused", "error": "?"}


def _resubmit_new_id(t: Trace) -> None:
    body(in_step(t, "resubmit", "dmp", "POST")[-1])["metadata"]["unique_id"] = "1.2.250.1.999.77.1^other"


def _retry_too_soon(t: Trace) -> None:
    attempts = in_step(t, "submit", "dmp", "POST")
    attempts[1]["time"] = attempts[0]["time"]  # the retry recorded as done at once after the 503
    attempts[1]["duration_ms"] = 0


def _retries_forever(t: Trace) -> None:
    last = in_step(t, "give_up", "dmp", "POST")[-1]
    for i in (1, 2):  # two more attempts recorded after the fourth
        t["exchanges"].append(copy.deepcopy(last) | {"seq": last["seq"] + i / 10})
    t["exchanges"].sort(key=lambda e: e["seq"])


def _hidden_not_marked(t: Trace) -> None:
    for d in step(t, "author_list")["data"]["output"]["documents"]:
        d.pop("hidden", None)


def _hidden_shown_to_other(t: Trace) -> None:
    shown = step(t, "author_list")["data"]["output"]["documents"]
    step(t, "other_list")["data"]["output"]["documents"] = copy.deepcopy(shown)


def _lab_value(t: Trace) -> None:
    edit_document(in_step(t, "lab_results", "dmp", "POST")[-1],
                  set_attr(".//v3:observation[v3:code/@code='2345-7']/v3:value", "value", "9.99"))


def _xdm_hash(t: Trace) -> None:
    edit_xdm(in_step(t, "with_document", "mss", "POST")[-1],
             lambda data: data.replace(b'<rim:Slot name="hash"><rim:ValueList><rim:Value>',
                                       b'<rim:Slot name="hash"><rim:ValueList><rim:Value>00'))


def _sender(t: Trace) -> None:
    body(in_step(t, "with_document", "mss", "POST")[-1])["from"] = t["fixtures"]["practitioners"][1]["mss_address"]


def _sent_after_503(t: Trace) -> None:
    step(t, "service_down")["data"]["output"] = {"status": "sent", "message_id": "<x@y>"}


def _user_agent(t: Trace) -> None:
    for e in t["exchanges"]:
        if e.get("service") == "insi":
            e["request"]["headers"]["user-agent"] = "python-httpx/0.28"


def _profession(t: Trace) -> None:
    step(t, "by_national_id")["data"]["output"]["results"][0]["profession"] = "Médecin généraliste"


def _name_not_normalised(t: Trace) -> None:
    request = in_step(t, "by_name", "directory")[-1]["request"]
    request["query"]["name"] = [request["query"]["name"][0].lower()]


def _organisation_name(t: Trace) -> None:
    step(t, "organisation")["data"]["output"]["results"][0]["name"] = "CH"


def _retired_active(t: Trace) -> None:
    for r in step(t, "by_name")["data"]["output"]["results"]:
        r["active"] = True


def _stale_cache(t: Trace) -> None:
    gone = {e["seq"] for e in in_step(t, "by_national_id_again", "directory")}
    t["exchanges"] = [e for e in t["exchanges"] if e["seq"] not in gone]


CASES: list[tuple[str, str, Callable[[Trace], None], str]] = [
    ("docshare.hash_size_consistent", "docshare.documents", _hash, "metadata.hash"),
    ("docshare.software_identified", "docshare.documents", _software, "software"),
    ("docshare.care_site_identified", "docshare.documents", _site, "site.id"),
    ("docshare.metadata_valid", "docshare.documents", _class_code, "metadata.class_code"),
    ("docshare.metadata_valid", "docshare.documents", _practice_setting, "metadata.practice_setting"),
    ("docshare.metadata_consistent", "docshare.documents", _creation_time, "metadata.creation_time"),
    ("cda.level1_body_valid", "docshare.documents", _pdf_media_type, "nonXMLBody/text"),
    ("cda.confidentiality_code_valid", "docshare.documents", _confidentiality, "confidentialityCode"),
    ("cda.effective_time_valid", "docshare.documents", _effective_time, "effectiveTime"),
    ("cda.schematron_valid", "docshare.documents", _language, "/ClinicalDocument"),
    ("cda.template_ids_valid", "docshare.documents", _header_template, "templateId"),
    ("cda.schema_valid", "docshare.documents", _not_cda, "line"),
    ("docshare.medical_summary_accepted", "docshare.documents", _summary_of_episode_code, "code/@code"),
    ("docshare.dispensation_record_accepted", "docshare.v2_content", _dispensation_template, "templateId/@root"),
    ("docshare.list_matches_service", "docshare.documents", _listed_title, "output.documents"),
    ("docshare.replace_links_previous", "docshare.lifecycle", _no_rplc, "relatedDocument"),
    ("docshare.refusal_reported", "docshare.lifecycle", _refusal_hidden, "output.status"),
    ("docshare.delete_effective", "docshare.lifecycle", _delete_not_reported, "output.status"),
    ("docshare.resubmit_no_duplicate", "docshare.lifecycle", _resubmit_new_id, "metadata.unique_id"),
    ("docshare.retry_no_duplicate", "docshare.retry", _retry_too_soon, "request time"),
    ("docshare.retry_no_duplicate", "docshare.retry", _retries_forever, "requests"),
    ("docshare.hidden_flag_honoured", "docshare.v2_content", _hidden_not_marked, "hidden"),
    ("docshare.hidden_flag_honoured", "docshare.v2_content", _hidden_shown_to_other, "output.documents"),
    ("cda.level3_entries_valid", "docshare.v2_content", _lab_value, "/value"),
    ("messaging.attachment_xdm_valid", "messaging.send", _xdm_hash, "Slot[@name='hash']"),
    ("messaging.sender_in_directory", "messaging.send", _sender, "request.body.from"),
    ("service.refusal_reported", "messaging.send", _sent_after_503, "output.status"),
    ("client.software_identified", "messaging.send", _user_agent, "user-agent"),
    ("directory.search_by_national_id", "directory.searches", _profession, "profession"),
    ("directory.search_by_name", "directory.searches", _name_not_normalised, "request.query.name"),
    ("directory.search_organisation", "directory.searches", _organisation_name, "name"),
    ("directory.inactive_not_used", "directory.searches", _retired_active, "active"),
    ("directory.cache_fresh", "directory.searches", _stale_cache, "cache-control"),
]


@pytest.mark.parametrize(("check_id", "scenario", "change", "where"), CASES,
                         ids=[f"{'+'.join(CHECKS.get(c[0]).verifies)}:{c[0]}-{c[2].__name__.strip('_')}" for c in CASES])
def test_check_fails_on_a_realistic_mistake(reference: tuple[dict[str, Trace], EvalContext], check_id: str,
                                            scenario: str, change: Callable[[Trace], None], where: str) -> None:
    traces, ctx = reference
    assert CHECKS.get(check_id).scenario == scenario
    assert evaluate_check(check_id, {scenario: traces[scenario]}, ctx).status == "pass"
    trace = copy.deepcopy(traces[scenario])
    change(trace)
    verdict = evaluate_check(check_id, {scenario: trace}, ctx)
    assert verdict.status == "fail", verdict
    assert any(where in (f.where or "") for f in verdict.findings), [f.to_json() for f in verdict.findings]
    assert all(f.message for f in verdict.findings)


def test_every_check_of_the_area_is_exercised() -> None:
    """Each check of the area is shown failing here or by a defective vendor in test_documents_messaging."""
    by_defect = {"docshare.retry_no_duplicate", "docshare.unqualified_not_submitted", "ins.only_qualified_carried",
                 "messaging.attachment_patient_id_valid", "cda.author_id_valid", "cda.type_code_allowed",
                 "docshare.discharge_letter_accepted", "messaging.unknown_recipient_refused",
                 "messaging.recipient_in_directory", "cda.patient_id_oid_valid", "docshare.lab_report_accepted",
                 "docshare.imaging_report_accepted"}
    area = {c for c in CHECKS if c.startswith(("cda.", "docshare.", "messaging.", "directory.", "service."))
            or c in ("ins.only_qualified_carried", "client.software_identified")}
    shown = {c[0] for c in CASES} | by_defect
    assert area - shown == set()


def test_a_trace_is_rederived_identically(reference: tuple[dict[str, Trace], EvalContext], tmp_path: Path) -> None:
    """The verdicts depend on the trace alone: a JSON round trip (as in a bundle) changes none."""
    traces, ctx = reference
    for check_id in sorted(c for c in CHECKS if CHECKS.get(c).scenario in traces):
        scenario = CHECKS.get(check_id).scenario
        again = json.loads(json.dumps(traces[scenario]))
        assert evaluate_check(check_id, {scenario: again}, ctx) == evaluate_check(check_id, {scenario: traces[scenario]}, ctx), check_id


@pytest.mark.parametrize("seed", [0, 1, 2**31 - 1])
def test_generated_contents_are_deterministic_and_valid(seed: int) -> None:
    """Titles and bodies drawn by hypothesis from a seed: the same every time, within the action schema."""
    assert generated_contents(seed) == generated_contents(seed)
    ctx = ScenarioContext(fixtures={}, seed=seed)
    drawn = [content(ctx, i) for i in range(6)]
    assert drawn == [content(ScenarioContext(fixtures={}, seed=seed), i) for i in range(6)]
    for c in drawn:
        assert 1 <= len(c["title"]) <= 200 and c["title"].strip() and c["body"].strip()
    assert max(len(c["body"]) for c in drawn) > 1000 or seed != 0
