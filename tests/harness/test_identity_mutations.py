"""Every check of the identity / authentication / security area fails for a realistic behaviour.

The reference vendor's real traces (2027-W2 HOSPITAL, so PRACAUTH 1.1 and its max_age check are
pinned) are taken once per module; each case then changes a deep copy the way one faulty behaviour
would have been recorded (a look-up sending the patient's address, typed traits
recorded after a match, a 503 answered with a qualified identity, the ID token presented as a Bearer
credential, a patient's name in a query string, a forged ID token accepted…) and the check must fail
with a finding quoting the changed exchange or field. Defects that matter most run for real in
``test_identity_auth.py``; the checks they show failing are not repeated here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from conformity.catalog import load_catalog
from conformity.checks.evaluate import EvalContext, evaluate_check
from conformity.checks.health.pracauth import REDACTED
from conformity.checks.registry import CHECKS
from conformity.harness.outputs import run_to_end
from conformity.harness.plan import make_plan
from conformity.harness.runner import Runner, eval_context
from conformity.harness.sandbox_access import SandboxAccess
from conformity.harness.vendor import load_vendor
from tests.harness import test_documents_messaging, test_identity_auth
from tests.harness.conftest import vendor_manifest

Trace = dict[str, Any]
WAVE, CATEGORY = "2027-W2", "HOSPITAL"
LOOKUPS, NOMINAL, FAULTS = "patientid.lookups", "pracauth.login_nominal", "pracauth.login_faults"


@pytest.fixture(scope="module")
def reference(harness_sandbox: SandboxAccess) -> tuple[dict[str, Trace], EvalContext]:
    """The reference vendor's traces of the three scenarios the cases change, and the run's context."""
    spec = load_catalog().specification(WAVE, CATEGORY)
    wanted = {r for _, c in CHECKS.items() if c.scenario in (LOOKUPS, NOMINAL, FAULTS) for r in c.verifies}
    only = tuple(a.id for a in spec.requirements if a.id in wanted and a.requirement.proof.method == "automated")
    vendor = load_vendor(vendor_manifest("reference"))
    plan = make_plan(load_catalog(), WAVE, CATEGORY, only)
    result = run_to_end(Runner(plan, vendor, 0, harness_sandbox))
    assert {LOOKUPS, NOMINAL, FAULTS} <= set(result.traces)
    return result.traces, eval_context(plan, vendor.identity())


# ---------------------------------------------------------------------------------------------
# reading and changing a recorded trace


def step(trace: Trace, name: str) -> dict[str, Any]:
    return next(e for e in trace["exchanges"] if e.get("note") == "driver.perform" and e["data"].get("name") == name)


def in_step(trace: Trace, name: str, service: str, path: str = "") -> list[dict[str, Any]]:
    """The recorded HTTP exchanges of a step (between the previous note and the step's note)."""
    end = step(trace, name)["seq"]
    start = max(e["seq"] for e in trace["exchanges"] if e["kind"] == "note" and e["seq"] < end)
    return [e for e in trace["exchanges"] if e["kind"] == "http" and start < e["seq"] < end
            and e["service"] == service and e["request"]["path"].endswith(path)]


def http(trace: Trace, service: str, path: str) -> list[dict[str, Any]]:
    return [e for e in trace["exchanges"] if e["kind"] == "http" and e["service"] == service
            and e["request"]["path"].endswith(path)]


def issued_hash(token_exchange: dict[str, Any], name: str) -> str:
    """The hash prefix of a token the provider issued, as the trace holds it (``[redacted sha256:…]``)."""
    return REDACTED.fullmatch(token_exchange["response"]["body"]["json"][name]).group(1)  # type: ignore[union-attr]


def output(trace: Trace, name: str) -> dict[str, Any]:
    return step(trace, name)["data"]["output"]


def insert(trace: Trace, exchange: dict[str, Any]) -> None:
    trace["exchanges"].append(exchange)
    trace["exchanges"].sort(key=lambda e: e["seq"])


# ---------------------------------------------------------------------------------------------
# patient identity (patientid.lookups): each change returns the seq of the exchange or note changed


def _address_sent(t: Trace) -> int:
    e = in_step(t, "match_document", "insi", "/lookup")[-1]
    e["request"]["body"]["json"]["address"] = "12 rue des Lilas, 75011 Paris"
    return e["seq"]


def _traits_in_query(t: Trace) -> int:
    e = in_step(t, "match_typed", "insi", "/lookup")[-1]
    e["request"]["query"] = {k: [v] for k, v in e["request"]["body"]["json"].items()}
    return e["seq"]


def _qualified_without_document(t: Trace) -> int:
    output(t, "match_typed")["status"] = "qualified"  # identity_document_checked is false for this step
    return step(t, "match_typed")["seq"]


def _no_match_given_local_ins(t: Trace) -> int:
    out = output(t, "no_match_document")
    patient = next(p for p in t["fixtures"]["patients"] if p["ref"] == out["patient_ref"])
    out |= {"status": "qualified", "ins": patient["ins"], "oid": patient["oid"]}  # the INS of its local file
    return step(t, "no_match_document")["seq"]


def _qualified_without_lookup(t: Trace) -> int:
    sent = {e["seq"] for e in in_step(t, "match_document", "insi", "/lookup")}
    t["exchanges"] = [e for e in t["exchanges"] if e["seq"] not in sent]  # the recorded identity, never looked up
    return step(t, "match_document")["seq"]


def _typed_traits_recorded(t: Trace) -> int:
    note = step(t, "match_typed")
    note["data"]["output"]["traits"] = {k: v for k, v in note["data"]["input"].items()
                                        if k != "identity_document_checked"}
    return note["seq"]


def _short_ins_kept(t: Trace) -> int:
    note = step(t, "short_ins")
    answer = in_step(t, "short_ins", "insi", "/lookup")[-1]["response"]["body"]["json"]["identity"]
    note["data"]["output"] = {"status": "qualified", "traits": answer["traits"], "ins": answer["ins"],
                              "oid": answer["oid"], "patient_ref": note["data"]["output"]["patient_ref"]}
    return note["seq"]


def _oid_not_recorded(t: Trace) -> int:
    out = output(t, "match_document")
    out.pop("oid")
    return step(t, "match_document")["seq"]


def _qualified_after_503(t: Trace) -> int:
    out = output(t, "service_unavailable")
    out["status"] = "qualified"
    out.pop("error")
    return step(t, "service_unavailable")["seq"]


def _503_not_reported(t: Trace) -> int:
    output(t, "service_unavailable").pop("error")
    return step(t, "service_unavailable")["seq"]


# ---------------------------------------------------------------------------------------------
# nominal login (pracauth.login_nominal)


def _lookup(t: Trace) -> dict[str, Any]:
    return in_step(t, "lookup", "insi", "/lookup")[-1]


def _id_token_as_bearer(t: Trace) -> int:
    e = _lookup(t)
    e["request"]["auth"] = {"scheme": "Bearer", "token_sha256": issued_hash(http(t, "idp", "/token")[0], "id_token"),
                            "kind": "unknown"}
    return e["seq"]


def _token_of_another_session(t: Trace) -> int:
    e = _lookup(t)  # a token cached from an earlier session, still valid at the provider
    e["request"]["auth"] |= {"token_sha256": "0123456789abcdef", "session": "other"}
    return e["seq"]


def _bearer_sent_to_jwks(t: Trace) -> int:
    jwks = http(t, "idp", "/jwks")[0]  # an HTTP client configured with the token for every request
    jwks["request"]["auth"] = copy.deepcopy(_lookup(t)["request"]["auth"])
    return jwks["seq"]


def _refresh_token_forwarded(t: Trace) -> int:
    e = _lookup(t)
    refresh = issued_hash(http(t, "idp", "/token")[0], "refresh_token")
    e["request"]["headers"]["x-refresh-token"] = f"[redacted sha256:{refresh}]"
    return e["seq"]


def _patient_name_in_query(t: Trace) -> int:
    e = _lookup(t)  # the look-up sent as GET /lookup?birth_name=…
    e["request"] |= {"method": "GET", "query": {k: [v] for k, v in e["request"]["body"]["json"].items()},
                     "body": {}}
    return e["seq"]


def _birth_date_in_query(t: Trace) -> int:
    e = _lookup(t)  # the names in the body, the rest of the traits as query parameters
    traits = e["request"]["body"]["json"]
    e["request"]["query"] = {k: [traits.pop(k)] for k in ("birth_date", "sex", "birth_place_code")}
    return e["seq"]


def _national_id_in_query(t: Trace) -> int:
    e = _lookup(t)  # the practitioner identified in the URL, on behalf of whom the look-up is made
    e["request"]["query"] = {"rpps": [output(t, "login")["national_id"]]}
    return e["seq"]


def _client_secret_in_query(t: Trace) -> int:
    token = http(t, "idp", "/token")[0]
    token["request"]["query"] = {"client_id": [t["session"]["client_id"]],
                                 "client_secret": ["[redacted sha256:5f2b9c0e4a1d7e36]"]}
    return token["seq"]


def _implicit_flow(t: Trace) -> int:
    authorize = http(t, "idp", "/authorize")[0]
    authorize["request"]["query"]["response_type"] = ["id_token token"]
    return authorize["seq"]


def _client_secret_post(t: Trace) -> int:
    token = http(t, "idp", "/token")[0]
    token["request"]["auth"] = None
    token["request"]["body"]["form"] |= {"client_id": [t["session"]["client_id"]],
                                         "client_secret": ["[redacted sha256:5f2b9c0e4a1d7e36]"]}
    token["outcome_details"]["client_auth"] = "client_secret_post"
    return token["seq"]


def _fixed_endpoints(t: Trace) -> int:
    t["exchanges"] = [e for e in t["exchanges"] if not (e["kind"] == "http" and e["request"]["path"].endswith(
        "/.well-known/openid-configuration"))]
    return http(t, "idp", "/authorize")[0]["seq"]


def _plain_pkce(t: Trace) -> int:
    authorize = http(t, "idp", "/authorize")[0]
    authorize["request"]["query"]["code_challenge_method"] = ["plain"]
    return authorize["seq"]


def _no_code_verifier(t: Trace) -> int:
    token = http(t, "idp", "/token")[0]
    del token["request"]["body"]["form"]["code_verifier"]
    return token["seq"]


# ---------------------------------------------------------------------------------------------
# faulty logins (pracauth.login_faults)


def accepts(name: str) -> Callable[[Trace], int]:
    """The software accepts the forged ID token of step ``name``: it calls userinfo with the access token that
    came with it and opens a session, as the control login does."""

    def change(t: Trace) -> int:
        note = step(t, name)
        forged = in_step(t, name, "idp", "/token")[-1]
        use = copy.deepcopy(in_step(t, "control", "idp", "/userinfo")[-1]) | {"seq": note["seq"] - 0.5}
        use["request"]["auth"]["token_sha256"] = issued_hash(forged, "access_token")
        insert(t, use)
        note["data"]["output"] = copy.deepcopy(output(t, "control"))
        return use["seq"]

    change.__name__ = f"_{name}_accepted"
    return change


def _acr_not_requested(t: Trace) -> int:
    for e in http(t, "idp", "/authorize"):
        e["request"]["query"].pop("acr_values")
    return http(t, "idp", "/authorize")[0]["seq"]


def _max_age_not_sent(t: Trace) -> int:
    for e in http(t, "idp", "/authorize"):
        e["request"]["query"].pop("max_age")
    return http(t, "idp", "/authorize")[0]["seq"]


def _other_sub_accepted(t: Trace) -> int:
    note = step(t, "userinfo_other_sub")
    note["data"]["output"] = copy.deepcopy(output(t, "control"))
    return note["seq"]


def _rpps_recorded(t: Trace) -> int:
    out = output(t, "control")
    out["national_id"] = out["national_id"][1:]  # the 11-digit RPPS without its prefix 8
    return step(t, "control")["seq"]


def _stale_national_id(t: Trace) -> int:
    refused = in_step(t, "userinfo_other_sub", "idp", "/userinfo")[-1]
    output(t, "control_after")["national_id"] = refused["outcome_details"]["served_sub"]  # kept from the refused login
    return step(t, "control_after")["seq"]


# ---------------------------------------------------------------------------------------------
# the cases


class Case(NamedTuple):
    check: str
    scenario: str
    change: Callable[[Trace], int]
    where: str  #: what the finding's ``where`` names
    requirements: tuple[str, ...] = ()  #: the requirements the mistake breaks (default: all the check verifies)

    def id(self) -> str:
        return f"{'+'.join(self.requirements or CHECKS.get(self.check).verifies)}:{self.check}-" \
               f"{self.change.__name__.strip('_')}"


CASES: list[Case] = [
    Case("ins.lookup_strict_traits", LOOKUPS, _address_sent, "request.body.json"),
    Case("ins.lookup_strict_traits", LOOKUPS, _traits_in_query, "request.query", ("PATIENTID-001",)),
    Case("ins.status_after_single_match", LOOKUPS, _qualified_without_document, "output.status"),
    Case("ins.status_without_single_match", LOOKUPS, _qualified_without_lookup, "output.status"),
    Case("ins.no_match_not_qualified", LOOKUPS, _no_match_given_local_ins, "output.ins"),
    Case("ins.registered_traits_recorded", LOOKUPS, _typed_traits_recorded, "output.traits.birth_name"),
    Case("ins.ins_format_valid", LOOKUPS, _short_ins_kept, "output.ins"),
    Case("ins.ins_format_valid", LOOKUPS, _oid_not_recorded, "output.oid"),
    Case("ins.service_error_handled", LOOKUPS, _qualified_after_503, "output.status"),
    Case("ins.service_error_handled", LOOKUPS, _503_not_reported, "output.error"),
    Case("token.audience_restricted", NOMINAL, _id_token_as_bearer, "request.auth", ("PRACAUTH-014",)),
    Case("token.audience_restricted", NOMINAL, _token_of_another_session, "request.auth",
         ("PRACAUTH-014", "SECURITY-005")),
    Case("token.audience_restricted", NOMINAL, _bearer_sent_to_jwks, "request.auth", ("PRACAUTH-014", "SECURITY-005")),
    Case("token.audience_restricted", NOMINAL, _refresh_token_forwarded, "request.headers",
         ("PRACAUTH-020", "SECURITY-005")),
    Case("http.no_sensitive_data_in_url", NOMINAL, _patient_name_in_query, "request.path/query", ("SECURITY-006",)),
    Case("http.no_sensitive_data_in_url", NOMINAL, _client_secret_in_query, "request.query"),
    Case("http.no_sensitive_data_in_url", NOMINAL, _birth_date_in_query, "request.path/query", ("SECURITY-006",)),
    Case("http.no_sensitive_data_in_url", NOMINAL, _national_id_in_query, "request.path/query", ("SECURITY-006",)),
    Case("oidc.authorization_code_flow", NOMINAL, _implicit_flow, "request.query.response_type", ("PRACAUTH-001",)),
    Case("oidc.authorization_code_flow", NOMINAL, _client_secret_post, "outcome_details.client_auth",
         ("PRACAUTH-015",)),
    Case("oidc.discovery_used", NOMINAL, _fixed_endpoints, ""),
    Case("oidc.pkce_s256_used", NOMINAL, _plain_pkce, "request.query.code_challenge_method"),
    Case("oidc.pkce_s256_used", NOMINAL, _no_code_verifier, "request.body.form.code_verifier"),
    Case("oidc.id_token_signature_verified", FAULTS, accepts("bad_signature"), "request.auth"),
    Case("oidc.issuer_verified", FAULTS, accepts("wrong_issuer"), "request.auth"),
    Case("oidc.audience_verified", FAULTS, accepts("foreign_azp"), "request.auth"),
    Case("oidc.expiry_verified", FAULTS, accepts("issued_in_future"), "request.auth"),
    Case("oidc.acr_verified", FAULTS, accepts("wrong_acr"), "request.auth"),
    Case("oidc.acr_verified", FAULTS, _acr_not_requested, "request.query.acr_values"),
    Case("oidc.max_auth_age_enforced", FAULTS, accepts("stale_auth_time"), "request.auth"),
    Case("oidc.max_auth_age_enforced", FAULTS, _max_age_not_sent, "request.query.max_age"),
    Case("oidc.userinfo_national_id", FAULTS, _other_sub_accepted, "output.authenticated", ("PRACAUTH-012",)),
    Case("oidc.userinfo_national_id", FAULTS, _rpps_recorded, "output.national_id", ("PRACAUTH-013",)),
    Case("oidc.userinfo_national_id", FAULTS, _stale_national_id, "output.national_id", ("PRACAUTH-013",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id() for c in CASES])
def test_check_fails_on_a_realistic_mistake(reference: tuple[dict[str, Trace], EvalContext], case: Case) -> None:
    traces, ctx = reference
    check = CHECKS.get(case.check)
    assert check.scenario == case.scenario and set(case.requirements) <= set(check.verifies)
    assert evaluate_check(case.check, {case.scenario: traces[case.scenario]}, ctx).status == "pass"
    trace = copy.deepcopy(traces[case.scenario])
    changed = case.change(trace)
    verdict = evaluate_check(case.check, {case.scenario: trace}, ctx)
    assert verdict.status == "fail", verdict
    assert any(f.exchange == changed and case.where in f.where for f in verdict.findings), \
        (changed, [f.to_json() for f in verdict.findings])
    assert all(f.message for f in verdict.findings)


def test_every_check_of_the_area_is_exercised() -> None:
    """Each check of the area is shown failing here or by a defective vendor in test_identity_auth."""
    area = {c for c in CHECKS if c.startswith(test_identity_auth.OURS) and c not in test_identity_auth.NOT_OURS}
    broken = {r for expected in test_identity_auth.DEFECTS.values() for r in expected}
    # a failing requirement shows which check failed only when a single check verifies it
    by_defect = {c for c in area if any(r in broken and [c] == [d for d in CHECKS if r in CHECKS.get(d).verifies]
                                        for r in CHECKS.get(c).verifies)}
    assert area - by_defect - {c.check for c in CASES} == set()


def test_every_registered_check_belongs_to_an_exercised_area() -> None:
    """No check escapes both areas' 'every check is exercised' tests (a new prefix must join one)."""
    ours = {c for c in CHECKS if c.startswith(test_identity_auth.OURS) and c not in test_identity_auth.NOT_OURS}
    documents = {c for c in CHECKS if c.startswith(test_documents_messaging.AREA)}
    assert ours | documents == set(CHECKS) and not ours & documents
