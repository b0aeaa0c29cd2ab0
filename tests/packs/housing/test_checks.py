"""The housing checks on small recorded traces written by hand: each test is one defect a check must see (or an input
it must judge without raising), its requirement id in the name; no sandbox, no driver."""

from __future__ import annotations

import itertools
from typing import Any

from lxml import etree

from conformity.checks.evaluate import EvalContext, evaluate_check
from conformity.checks.model import Verdict
from conformity.packs.housing.dpe import build_dpe
from conformity.packs.housing.rules import is_fiscal_number
from conformity.packs.housing.scenarios.consent import BAD_NUMBERS, CONSENTS
from conformity.packs.housing.scenarios.dpe import FILE
from conformity.packs.housing.scenarios.identifiers import IDENTIFY
from conformity.packs.housing.scenarios.security import UNTRUSTED
from conformity.packs.housing.scenarios.works import QUOTE_AND_WORKS
from tests.packs.housing.runs import plugins  # noqa: F401  (the packs registered, their checks with them)

SOFTWARE = {"software": "HomeApp", "version": "1.0.0", "registration_id": "REG-HOME-0001"}
RNB, RNB_LOW = "A1B2C3D4E5F6", "Z9Y8X7W6V5T4"
KEY, KEY_LOW = "75105_8884_00019", "13201_1730_00037"
HOME, OTHER = "752338899846", "135049795509"


class Trace:
    """One scenario's trace as the sandbox records it: HTTP exchanges and the driver's steps, numbered in order."""

    def __init__(self, **fixtures: Any) -> None:
        self.items: list[dict[str, Any]] = []
        self.fixtures = fixtures
        self._seq = itertools.count(1)

    def http(self, service: str, method: str, path: str, *, query: dict[str, str] | None = None,
             headers: dict[str, str] | None = None, body: dict[str, Any] | None = None, status: int = 200,
             answer: Any = None, outcome: str = "") -> dict[str, Any]:
        raw = {
            "kind": "http",
            "seq": next(self._seq),
            "time": "2027-03-01T10:00:00Z",
            "service": service,
            "outcome": outcome,
            "request": {"method": method, "path": f"/s/ses_t/{service}{path}",
                        "query": {k: [v] for k, v in (query or {}).items()}, "headers": headers or {},
                        "body": body or {}},
            "response": {"status": status, "headers": {}, "body": {} if answer is None else {"json": answer}},
        }
        self.items.append(raw)
        return raw

    def step(self, action: str, name: str, output: dict[str, Any] | None = None, **given: Any) -> None:
        self.items.append({"kind": "note", "note": "driver.perform", "seq": next(self._seq),
                           "data": {"action": action, "name": name, "input": given, "output": output or {}}})

    @property
    def doc(self) -> dict[str, Any]:
        return {"exchanges": self.items, "fixtures": self.fixtures}


def judge(check_id: str, traces: dict[str, Trace], category: str, **parameters: dict[str, Any]) -> Verdict:
    ctx = EvalContext(wave="2026-W3", category=category, software=SOFTWARE, parameters=parameters,
                      scenarios=tuple(traces))
    return evaluate_check(check_id, {sid: t.doc for sid, t in traces.items()}, ctx)


def messages(v: Verdict) -> str:
    return " | ".join(f.message for f in v.findings)


# ---------------------------------------------------------------------------------------------------------------
# DPE-008: the building's RNB id in every DPE


def geocoded(t: Trace, key: str, score: float) -> None:
    t.http("geocoder", "GET", "/search", query={"q": "x", "limit": "1"},
           answer={"features": [{"properties": {"id": key, "type": "housenumber", "score": score}}]})


def file_dpe(t: Trace, key: str, score: float, rnb: str | None, *, ask_registry: bool) -> None:
    geocoded(t, key, score)
    if ask_registry:
        t.http("buildings", "GET", "/buildings", query={"cle_interop": key, "min_score": "0.45"},
               answer={"status": "ok", "buildings": [{"rnb_id": rnb}]})
    doc = build_dpe({"ban_id": key, "ban_type": "housenumber", "ban_score": score, "rnb_id": rnb,
                     "software_id": "REG-HOME-0001", "software_version": "1.0.0", "fiscal_number": HOME,
                     "ep_conso": 150, "emissions": 20, "energy_class": "C", "emissions_class": "C", "surface": 50,
                     "family_name": "Rousseau", "given_name": "Dominique", "certification": "CERT-12345",
                     "address": "19 Boulevard Saint-Michel 75000 Paris"})
    for mode, status in (("test", 200), ("real", 201)):
        t.http("observatory", "POST", "/dpe", query={"mode": mode}, body={"text": doc.decode()}, status=status,
               answer={"receivable": True} if mode == "test" else {"numero_dpe": "2393E0000360N"})


def dpe_run(*, ask_registry: bool, carry: bool) -> dict[str, Trace]:
    t = Trace(buildings=[{"rnb_id": RNB, "cle_interop": KEY}, {"rnb_id": RNB_LOW, "cle_interop": KEY_LOW}])
    for name, key, score, rnb in (("complete", KEY, 0.93, RNB), ("low_score", KEY_LOW, 0.58, RNB_LOW)):
        file_dpe(t, key, score, rnb if carry else None, ask_registry=ask_registry)
        t.step("dpe.file", name, {"filed": True, "numero_dpe": "2393E0000360N"})
    return {FILE.id: t}


def test_dpe_008_passes_dpes_carrying_the_registrys_rnb_id() -> None:
    run = dpe_run(ask_registry=True, carry=True)
    assert judge("housing.dpe_schema_valid", run, "DIAGNOSTICIAN").status == "pass"  # the documents are read
    assert judge("housing.dpe_geolocated", run, "DIAGNOSTICIAN").status == "pass"


def test_dpe_008_fails_dpes_without_rnb_id_when_the_registry_was_never_asked() -> None:
    """QA repro 01: the software geocodes, never asks the building registry, files every DPE with no rnb_id."""
    v = judge("housing.dpe_geolocated", dpe_run(ask_registry=False, carry=False), "DIAGNOSTICIAN")
    assert v.status == "fail", v
    assert "no RNB building id" in messages(v) and "never asked the building registry" in messages(v)
    wanted = {f.expected["rnb_id"] for f in v.findings if isinstance(f.expected, dict)}
    assert wanted == {RNB, RNB_LOW}  # the building the registry holds at the geocoded address


def test_dpe_008_fails_a_dpe_leaving_out_the_rnb_id_the_registry_answered() -> None:
    v = judge("housing.dpe_geolocated", dpe_run(ask_registry=True, carry=False), "DIAGNOSTICIAN")
    assert v.status == "fail" and "no RNB building id" in messages(v)


# ---------------------------------------------------------------------------------------------------------------
# CONSENT-001 and CONSENT-003: a home read under another household's consent


def consent_run(*, borrow_before: bool = False, borrow_after: bool = False) -> dict[str, Trace]:
    """The consent scenario as the reference plays it; ``borrow_*``: the home of household 1 also read under the
    consent household 0 gave (before any revocation; after household 1 revoked its own)."""
    t = Trace()

    def grant(name: str, home: str, cid: str) -> None:
        t.http("dataspace", "POST", "/consents", body={"json": {"household": home}}, status=201,
               answer={"consent_id": cid, "household": home, "status": "granted"}, outcome="consent-granted")
        t.step("consent.request", name, {"granted": True, "consent_id": cid}, household=home)

    def read(home: str, cid: str, status: int = 200, outcome: str = "documents-read") -> None:
        t.http("dataspace", "GET", f"/homes/{home}/documents", query={"kind": "dpe"}, headers={"consent-id": cid},
               status=status, outcome=outcome)

    grant("grant", HOME, "cst_0")
    read(HOME, "cst_0")
    if borrow_before:
        read(OTHER, "cst_0", 403, "consent-other-home")
    t.step("home.read", "read_dpe", {"read": True, "count": 1}, household=HOME)
    t.http("dataspace", "DELETE", "/consents/cst_0", outcome="consent-revoked-by-request")
    t.step("consent.revoke", "revoke", {"revoked": True}, household=HOME)
    t.step("home.read", "read_after_revoke", {"read": False}, household=HOME)
    grant("grant_transfer", OTHER, "cst_1")
    read(OTHER, "cst_1")
    t.step("home.read", "read_before_household_revokes", {"read": True, "count": 12}, household=OTHER)
    read(OTHER, "cst_1", 403, "consent-revoked")
    t.step("home.read", "household_revoked", {"read": False}, household=OTHER)
    if borrow_after:
        read(OTHER, "cst_0", 403, "consent-other-home")
    t.step("home.read", "after_household_revoked", {"read": False}, household=OTHER)
    return {CONSENTS.id: t}


def test_consent_001_and_003_pass_the_reference_behaviour() -> None:
    run = consent_run()
    assert judge("housing.consent_every_access", run, "ADVISER").status == "pass"
    assert judge("housing.consent_revocation_honoured", run, "ADVISER").status == "pass"


def test_consent_001_fails_a_home_read_under_another_homes_consent() -> None:
    v = judge("housing.consent_every_access", consent_run(borrow_before=True), "ADVISER")
    assert v.status == "fail" and "consent granted for another home" in messages(v), v
    assert judge("housing.consent_revocation_honoured", consent_run(borrow_before=True), "ADVISER").status == "pass"


def test_consent_001_and_003_fail_a_revoked_home_read_under_a_borrowed_consent() -> None:
    """QA repro 04: household 1 revoked; the software reads its home under household 0's (revoked) consent."""
    run = consent_run(borrow_after=True)
    v = judge("housing.consent_every_access", run, "ADVISER")
    assert v.status == "fail" and "another home" in messages(v), v
    v = judge("housing.consent_revocation_honoured", run, "ADVISER")
    assert v.status == "fail", v
    assert "under revoked consent cst_0" in messages(v) and "another consent (cst_0)" in messages(v)


def test_consent_001_judges_every_refusal_of_a_consent_not_granted_for_the_access() -> None:
    for outcome in ("consent-unknown", "consent-other-grantee", "consent-expired"):
        t = consent_run()[CONSENTS.id]
        refused = next(e for e in t.items if e.get("outcome") == "documents-read")
        refused.update(outcome=outcome, response={"status": 403, "headers": {}, "body": {}})
        v = judge("housing.consent_every_access", {CONSENTS.id: t}, "ADVISER")
        assert v.status == "fail" and outcome in messages(v), (outcome, v)


def test_consent_001_fails_a_consent_asked_of_another_household_than_the_one_named() -> None:
    """The user names home HOME; the software asks household OTHER for consent and reads OTHER's home under it. Each
    access carries the consent granted for the home it reads, so only the step's home shows the breach."""
    t = consent_run()[CONSENTS.id]
    for raw in t.items[:3]:  # the grant, the read, the step grant (HOME's): the software swaps in OTHER
        if raw["kind"] == "http":
            raw["request"]["path"] = raw["request"]["path"].replace(HOME, OTHER)
            raw["request"]["body"] = {"json": {"household": OTHER}}
            if raw["request"]["method"] == "POST":
                raw["response"]["body"] = {"json": {"consent_id": "cst_0", "household": OTHER, "status": "granted"}}
    v = judge("housing.consent_every_access", {CONSENTS.id: t}, "ADVISER")
    assert v.status == "fail", v
    assert "another home than the one the user named" in messages(v), v
    assert {f.where for f in v.findings} >= {"request.body.json.household", "request.path"}, v.findings


def test_consent_002_fails_a_consent_asked_wider_than_the_user_asked() -> None:
    """The user asks a consent for the DPE alone, without the transfer of consumption; the software asks the
    household for every kind and the transfer (which the sandbox, playing the household, grants)."""
    t = consent_run()[CONSENTS.id]
    asked, step = t.items[0], t.items[1]
    step["data"]["input"].update(scope=["dpe"], transfer_consumption=False)
    t.step("home.read", "read_out_of_scope", {"read": False}, household=HOME, kind="quote")
    assert judge("housing.consent_scope_respected", {CONSENTS.id: t}, "ADVISER").status == "pass"
    asked["request"]["body"]["json"].update(scope=["dpe"], transfer_consumption=False)
    assert judge("housing.consent_scope_respected", {CONSENTS.id: t}, "ADVISER").status == "pass"
    asked["request"]["body"]["json"].update(scope=["dpe", "quote", "works", "consumption"], transfer_consumption=True)
    v = judge("housing.consent_scope_respected", {CONSENTS.id: t}, "ADVISER")
    assert v.status == "fail", v
    assert "wider than the user asked" in messages(v), v
    assert any(f.got == ["dpe", "quote", "works", "consumption"] and "quote, works" in f.message for f in v.findings), v
    assert any(f.where == "request.body.json.transfer_consumption" and f.got is True for f in v.findings), v.findings


# ---------------------------------------------------------------------------------------------------------------
# HOUSINGID-004: min_score on every look-up by address, in every scenario


def lookups(*, dpe_min_score: bool) -> dict[str, Trace]:
    identify, dpe = Trace(), Trace()
    identify.http("buildings", "GET", "/buildings", query={"cle_interop": KEY, "min_score": "0.45"},
                  answer={"status": "ok", "buildings": [{"rnb_id": RNB}]})
    identify.step("building.identify", "complete", {"status": "ok"})
    query = {"cle_interop": KEY_LOW} | ({"min_score": "0.45"} if dpe_min_score else {})
    dpe.http("buildings", "GET", "/buildings", query=query, answer={"status": "ok", "buildings": [{"rnb_id": RNB}]})
    dpe.step("dpe.file", "complete", {"filed": True})
    return {IDENTIFY.id: identify, FILE.id: dpe}


def test_housingid_004_reads_the_look_ups_by_address_of_every_scenario() -> None:
    """QA repro 05: the DPE path looks buildings up by address without min_score; the building search sends it."""
    assert judge("housing.min_score_sent", lookups(dpe_min_score=True), "DIAGNOSTICIAN").status == "pass"
    v = judge("housing.min_score_sent", lookups(dpe_min_score=False), "DIAGNOSTICIAN")
    assert v.status == "fail", v
    assert [f.scenario for f in v.findings] == [FILE.id] and "minimum geocoding score" in messages(v)


# ---------------------------------------------------------------------------------------------------------------
# WORKS-002 and WORKS-004: a malformed quote is judged, never raises

GESTES = ["ISO-COMBLES", "PAC-AIR-EAU"]


def quotes(*gestes: Any, **fields: Any) -> dict[str, Trace]:
    t = Trace()
    body = {"format": "usine.housing.quote/1", "gestes": list(gestes), "total_ht": 100.0, "total_vat": 5.5,
            "total_ttc": 105.5} | fields
    t.http("dataspace", "POST", f"/homes/{HOME}/quotes", body={"json": body}, status=422, outcome="quote-invalid")
    t.step("quote.send", "quote", {"sent": False})
    return {QUOTE_AND_WORKS.id: t}


def test_works_002_a_quote_of_bare_codes_fails_with_a_finding_not_an_error() -> None:
    """QA repro 03: the gestes as bare strings crashed the check (AttributeError, verdict error)."""
    v = judge("housing.quote_gestes_known", quotes(*GESTES), "CONTRACTOR", **{"WORKS-002": {"gestes": GESTES}})
    assert v.status == "fail", v
    assert [f.where for f in v.findings] == ["request.body.json.gestes[0]", "request.body.json.gestes[1]"]
    assert "is not an object" in messages(v)
    v = judge("housing.quote_gestes_known", quotes(gestes="ISO-COMBLES"), "CONTRACTOR")
    assert v.status == "fail" and "not a list" in messages(v), v


def test_works_004_a_quote_of_unreadable_items_says_so_instead_of_a_wrong_total() -> None:
    v = judge("housing.quote_amounts", quotes(*GESTES), "CONTRACTOR")
    assert v.status == "fail", v
    assert "cannot be added up" in messages(v) and "does not add up" not in messages(v)
    item = {"code": "ISO-COMBLES", "quantity": "beaucoup", "unit_price_ht": 38.0, "total_ht": 100.0, "vat_rate": None}
    v = judge("housing.quote_amounts", quotes(item), "CONTRACTOR")
    assert v.status == "fail" and "no numeric quantity, vat_rate" in messages(v), v
    v = judge("housing.quote_mentions", quotes(*GESTES, mentions=["insurance"], contractor="ACME"), "CONTRACTOR")
    assert v.status == "fail", v


def test_works_004_amounts_too_large_for_a_float_are_a_finding_not_an_error() -> None:
    """Review repro 09: float() of a 400-digit integer raised OverflowError (verdict error)."""
    for item in ({"code": "ISO-COMBLES", "quantity": 10**400, "unit_price_ht": 38.0, "total_ht": 100.0, "vat_rate": 5.5},
                 {"code": "ISO-COMBLES", "quantity": 1, "unit_price_ht": 38.0, "total_ht": 10**400, "vat_rate": 5.5},
                 {"code": "ISO-COMBLES", "quantity": float("inf"), "unit_price_ht": 1.0, "total_ht": 1.0, "vat_rate": 5.5},
                 {"code": "ISO-COMBLES", "quantity": 1e200, "unit_price_ht": 1e200, "total_ht": 1.0, "vat_rate": 5.5}):
        v = judge("housing.quote_amounts", quotes(item), "CONTRACTOR")
        assert v.status == "fail" and "cannot be added up" in messages(v), (item, v)
    item = {"code": "ISO-COMBLES", "quantity": 1, "unit_price_ht": 100.0, "total_ht": 100.0, "vat_rate": 5.5}
    for total in (10**400, float("nan")):
        v = judge("housing.quote_amounts", quotes(item, total_ht=total), "CONTRACTOR")
        assert v.status == "fail" and "total_ht does not add up" in messages(v), (total, v)
    big = {"code": "ISO-COMBLES", "quantity": 1, "unit_price_ht": 1.7e308, "total_ht": 1.7e308, "vat_rate": 5.5}
    v = judge("housing.quote_amounts", quotes(big, big), "CONTRACTOR")
    assert v.status == "fail" and "more than any amount" in messages(v), v


# ---------------------------------------------------------------------------------------------------------------
# HOUSINGID-010: the fiscal housing number's format, on more than one malformed number


def fiscal_numbers(accepted: tuple[str, ...] = ()) -> dict[str, Trace]:
    """The consent scenario's malformed numbers, each refused by the software unless named in ``accepted`` (sent to
    the data space, which refuses it)."""
    t = Trace()
    for name, malform in BAD_NUMBERS.items():
        number = malform(HOME)
        if name in accepted:
            t.http("dataspace", "POST", "/consents", body={"json": {"household": number}}, status=422,
                   outcome="invalid-request")
        t.step("consent.request", name, {"granted": False, "error": "refused"}, household=number)
    return {CONSENTS.id: t}


def test_housingid_010_the_scenario_holds_13_characters_and_letters_out_of_the_alphabet() -> None:
    numbers = {name: malform(HOME) for name, malform in BAD_NUMBERS.items()}
    assert not any(is_fiscal_number(n) for n in numbers.values())
    assert len(numbers["bad_number_long"]) == 13 and numbers["bad_number_long"].startswith(HOME)
    assert numbers["bad_number_letter"][1] not in "0123456789AB" and numbers["bad_number_lower"][1] == "a"


def test_housingid_010_fails_a_format_check_accepting_13_characters_or_any_letter() -> None:
    assert judge("housing.fiscal_number_validated", fiscal_numbers(), "ADVISER").status == "pass"
    for accepted in ("bad_number_long", "bad_number_letter", "bad_number_lower"):
        v = judge("housing.fiscal_number_validated", fiscal_numbers((accepted,)), "ADVISER")
        assert v.status == "fail" and repr(BAD_NUMBERS[accepted](HOME)) in messages(v), (accepted, v)


# ---------------------------------------------------------------------------------------------------------------
# DPE-002, DPE-003, DPE-009: an upload's mode is the one the observatory read (the last ``mode`` of the query)


def with_modes(raw: dict[str, Any], *modes: str) -> None:
    """The upload's query carries ``mode`` several times (a client appending ``mode=real`` to a URL configured with
    ``?mode=test``); the observatory, as every FastAPI route, reads the last one."""
    raw["request"]["query"]["mode"] = list(modes)


def blocking_run(*modes: str, status: int = 422) -> dict[str, Trace]:
    """The blocking step: a test upload answered with an erreur_saisie, then (with ``modes``) one more upload."""
    t = Trace()
    doc = build_dpe({"ban_id": KEY, "ban_type": "housenumber", "ban_score": 0.93, "rnb_id": RNB,
                     "software_id": "REG-HOME-0001", "software_version": "1.0.0", "fiscal_number": HOME,
                     "ep_conso": 150, "emissions": 20, "energy_class": "C", "emissions_class": "C", "surface": 50,
                     "year": 2031, "family_name": "Rousseau", "given_name": "Dominique",
                     "certification": "CERT-12345", "address": "19 Boulevard Saint-Michel 75000 Paris"}).decode()
    blocking = [{"type": "erreur_saisie", "thematique": "caracteristique_generale", "message": "future"}]
    t.http("observatory", "POST", "/dpe", query={"mode": "test"}, body={"text": doc},
           answer={"mode": "test", "receivable": False, "controle_coherence": blocking})
    if modes:
        with_modes(t.http("observatory", "POST", "/dpe", query={"mode": modes[0]}, body={"text": doc},
                          status=status, answer={"controle_coherence": blocking}), *modes)
    t.step("dpe.file", "blocking", {"filed": False, "findings": blocking})
    return {FILE.id: t}


def test_dpe_003_fails_a_filing_whose_query_says_test_then_real() -> None:
    """QA repro: ``POST /dpe?mode=test&mode=real`` is a filing for real (the observatory reads the last value); the
    check read the first, saw a test, and passed a software filing a DPE with blocking findings."""
    assert judge("housing.dpe_blocking_not_filed", blocking_run(), "DIAGNOSTICIAN").status == "pass"
    assert judge("housing.dpe_blocking_not_filed", blocking_run("real"), "DIAGNOSTICIAN").status == "fail"
    v = judge("housing.dpe_blocking_not_filed", blocking_run("test", "real"), "DIAGNOSTICIAN")
    assert v.status == "fail" and "sent for real" in messages(v), v
    assert judge("housing.dpe_blocking_not_filed", blocking_run("real", "test"), "DIAGNOSTICIAN").status == "pass"


# ---------------------------------------------------------------------------------------------------------------
# DPE-004: every coherence finding shown, with its type


def findings_run(blocking_shown: Any, *, low_shown: Any = None) -> dict[str, Trace]:
    """The blocking step's test answer holds two erreur_saisie (and the low-score step one warning_saisie, answered by
    the test and the filing alike); the software shows ``blocking_shown`` and ``low_shown``."""
    t = Trace()
    two = [{"type": "erreur_saisie", "thematique": "caracteristique_generale", "message": "annee_construction 2031"},
           {"type": "erreur_saisie", "thematique": "caracteristique_generale", "message": "surface must be positive"}]
    t.http("observatory", "POST", "/dpe", query={"mode": "test"}, body={"text": "<dpe/>"},
           answer={"mode": "test", "receivable": False, "controle_coherence": two})
    t.step("dpe.file", "blocking", {"filed": False, "findings": blocking_shown})
    low = [{"type": "warning_saisie", "thematique": "geolocalisation", "message": "low geocoding score 0.58"}]
    t.http("observatory", "POST", "/dpe", query={"mode": "test"}, body={"text": "<dpe/>"},
           answer={"mode": "test", "receivable": True, "controle_coherence": low})
    t.http("observatory", "POST", "/dpe", query={"mode": "real"}, body={"text": "<dpe/>"}, status=201,
           answer={"numero_dpe": "2393E0000360N", "warnings": low})
    t.step("dpe.file", "low_score", {"filed": True, "findings": low if low_shown is None else low_shown})
    return {FILE.id: t}


SHOWN = [{"type": "erreur_saisie", "message": "annee_construction 2031"},
         {"type": "erreur_saisie", "message": "surface must be positive"}]


def test_dpe_004_fails_a_software_showing_one_finding_of_each_type() -> None:
    """QA repro: the check compared the set of types, so a software showing only the first finding of each type (one
    erreur_saisie of two) passed."""
    assert judge("housing.dpe_findings_reported", findings_run(SHOWN), "DIAGNOSTICIAN").status == "pass"
    v = judge("housing.dpe_findings_reported", findings_run(SHOWN[:1]), "DIAGNOSTICIAN")
    assert v.status == "fail" and "every coherence finding" in messages(v), v


def test_dpe_004_malformed_findings_are_a_finding_not_an_error() -> None:
    """QA repro: ``findings`` as a number, or an item whose type is a list, raised TypeError (verdict error)."""
    for shown in (5, [{"type": ["erreur_saisie"], "message": "x"}] + SHOWN[1:], "erreur_saisie"):
        v = judge("housing.dpe_findings_reported", findings_run(shown), "DIAGNOSTICIAN")
        assert v.status == "fail" and "every coherence finding" in messages(v), (shown, v)


# ---------------------------------------------------------------------------------------------------------------
# HOUSINGID-006: the low-score warning, in the list of warnings


def low_score_run(warnings: Any) -> dict[str, Trace]:
    t = Trace()
    geocoded(t, KEY_LOW, 0.58)
    t.http("buildings", "GET", "/buildings", query={"cle_interop": KEY_LOW, "min_score": "0.45"},
           answer={"status": "ok", "buildings": [{"rnb_id": RNB_LOW}]})
    t.step("building.identify", "low_score", {"status": "ok", "rnb_id": RNB_LOW, "warnings": warnings})
    return {IDENTIFY.id: t}


def test_housingid_006_a_warning_that_is_not_the_list_of_warnings_fails_and_never_raises() -> None:
    """QA repro: ``"low_score" in warnings`` matched inside a text (``"low_score not shown"`` passed) and raised on a
    number (TypeError, verdict error)."""
    assert judge("housing.low_score_warned", low_score_run(["low_score"]), "DIAGNOSTICIAN").status == "pass"
    for warnings in ("low_score not shown", 1, [["low_score"]], {"low_score": False}):
        v = judge("housing.low_score_warned", low_score_run(warnings), "DIAGNOSTICIAN")
        assert v.status == "fail" and "must warn" in messages(v), (warnings, v)


def test_works_002_a_geste_code_of_another_json_type_fails_with_a_finding_not_an_error() -> None:
    """QA repro: a code that is a list or an object (``{"code": ["ISO-COMBLES"]}``) raised TypeError (unhashable) when
    looked up in the list of gestes: verdict error instead of a failed WORKS-002."""
    params = {"WORKS-002": {"gestes": GESTES}}
    assert judge("housing.quote_gestes_known", quotes({"code": "ISO-COMBLES"}), "CONTRACTOR", **params).status == "pass"
    for code in (["ISO-COMBLES"], {"ISO-COMBLES": 1}, 1):
        v = judge("housing.quote_gestes_known", quotes({"code": "ISO-COMBLES"}, {"code": code}), "CONTRACTOR", **params)
        assert v.status == "fail" and [f.where for f in v.findings] == ["request.body.json.gestes[1].code"], (code, v)


# ---------------------------------------------------------------------------------------------------------------
# WORKS-003: mentions, SIRET and RGE, a validity ending after the quote's date

MENTIONS = {"rge_scope": "isolation", "insurance": "décennale"}
CONTRACTOR = {"siret": "12345678901234", "name": "ACME", "rge": "RGE-123456"}


def mentioned(**fields: Any) -> dict[str, Trace]:
    item = {"code": "ISO-COMBLES", "quantity": 1, "unit_price_ht": 100.0, "total_ht": 100.0, "vat_rate": 5.5}
    return quotes(item, **({"mentions": MENTIONS, "contractor": CONTRACTOR, "issued": "2027-03-01",
                            "valid_until": "2027-05-30"} | fields))


def test_works_003_a_validity_or_mention_that_is_no_text_fails() -> None:
    """QA repro: the validity was compared as text (``str(None)`` is ``"None"``, after any date; a quote with no date
    has an empty one, before any validity) and a mention or RGE qualification as its text (``null`` read ``"None"``,
    a blank RGE was truthy): each such quote passed."""
    params = {"WORKS-003": {"mentions": sorted(MENTIONS)}}
    assert judge("housing.quote_mentions", mentioned(), "CONTRACTOR", **params).status == "pass"
    for fields in ({"valid_until": None}, {"issued": None}, {"issued": "1er mars 2027"},
                   {"valid_until": "2027-03-01"}, {"mentions": MENTIONS | {"insurance": None}},
                   {"mentions": MENTIONS | {"insurance": ["décennale"]}}, {"contractor": CONTRACTOR | {"rge": " "}},
                   {"contractor": CONTRACTOR | {"rge": True}}):
        v = judge("housing.quote_mentions", mentioned(**fields), "CONTRACTOR", **params)
        assert v.status == "fail", (fields, v)
    undated = mentioned()
    del undated[QUOTE_AND_WORKS.id].items[0]["request"]["body"]["json"]["issued"]
    v = judge("housing.quote_mentions", undated, "CONTRACTOR", **params)
    assert v.status == "fail" and "validity" in messages(v), v


# ---------------------------------------------------------------------------------------------------------------
# CONSENT-005: a purpose is a text


def consent_asked(**body: Any) -> dict[str, Trace]:
    t = Trace()
    t.http("dataspace", "POST", "/consents", body={"json": {"household": HOME, "expires": "2027-09-01"} | body},
           status=201, answer={"consent_id": "cst_0", "household": HOME}, outcome="consent-granted")
    t.step("consent.request", "grant", {"granted": True, "consent_id": "cst_0"}, household=HOME)
    return {CONSENTS.id: t}


def test_consent_005_a_purpose_that_is_no_text_fails() -> None:
    """QA repro: the purpose was read as ``str(purpose)``: ``null`` read "None", ``[]`` "[]", ``false`` "False", each a
    stated purpose."""
    params = {"CONSENT-005": {"max_days": 365}}
    ok = consent_asked(purpose="devis et travaux de rénovation")
    assert judge("housing.consent_grant_complete", ok, "ADVISER", **params).status == "pass"
    for purpose in (None, [], False, {"text": "travaux"}, "   "):
        v = judge("housing.consent_grant_complete", consent_asked(purpose=purpose), "ADVISER", **params)
        assert v.status == "fail" and "states no purpose" in messages(v), (purpose, v)


# ---------------------------------------------------------------------------------------------------------------
# BASELINE-002: the User-Agent names the software under test, each value whole


def agent_run(agent: str) -> dict[str, Trace]:
    t = Trace()
    t.http("geocoder", "GET", "/search", query={"q": "x"}, headers={"user-agent": agent}, answer={"features": []})
    return {IDENTIFY.id: t, UNTRUSTED.id: Trace()}


def test_baseline_002_a_user_agent_naming_another_version_or_registration_fails() -> None:
    """QA repro: the declared values were searched as substrings, so a User-Agent announcing version 1.0.0.1 or
    1.0.0-beta (another version than the one submitted), registration REG-HOME-00012 or the product HomeAppPro
    passed for HomeApp 1.0.0 (REG-HOME-0001)."""
    for agent in ("HomeApp/1.0.0 (REG-HOME-0001)", "HomeApp/1.0.0 (REG-HOME-0001; +https://homeapp.example)",
                  "python-httpx/0.28 HomeApp/1.0.0 (REG-HOME-0001)"):
        assert judge("housing.software_identified", agent_run(agent), "DIAGNOSTICIAN").status == "pass", agent
    for agent in ("HomeApp/1.0.0.1 (REG-HOME-0001)", "HomeApp/1.0.0-beta (REG-HOME-0001)",
                  "HomeApp/1.0.0 (REG-HOME-00012)", "HomeAppPro/1.0.0 (REG-HOME-0001)", "HomeApp/11.0.0 (REG-HOME-0001)"):
        v = judge("housing.software_identified", agent_run(agent), "DIAGNOSTICIAN")
        assert v.status == "fail" and "does not identify the software" in messages(v), (agent, v)


# ---------------------------------------------------------------------------------------------------------------
# DPE-005, DPE-006, DPE-010: a DPE out of the model is judged on what it says too


def out_of_model(run: dict[str, Trace], keep: int = 0, **values: str) -> dict[str, Trace]:
    """Every DPE of ``run`` but the first ``keep`` with an element the model does not know, and ``values`` (element
    name → text) written in it; the diagnostician of the fixtures certified CERT-12345."""
    run[FILE.id].fixtures["professionals"] = [{"role": "diagnostician", "certification": "CERT-12345"}]
    uploads = [raw["request"]["body"] for raw in run[FILE.id].items if "text" in raw.get("request", {}).get("body", {})]
    for body in uploads[keep:]:
        root = etree.fromstring(body["text"].encode())
        etree.SubElement(root.find("logement/enveloppe"), "isolation_magique").text = "oui"
        for tag, value in values.items():
            root.find(f".//{tag}").text = value
        body["text"] = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()
    return run


def test_dpe_005_006_010_judge_a_dpe_the_schema_refuses_on_what_it_writes() -> None:
    """QA repro: the checks read only schema-valid DPEs. Beside a valid one, a DPE with one unknown element AND the
    energy class alone as its label (or another software's id, or another certification) was skipped: DPE-005, -006,
    -010 passed a trace breaking them. With no valid DPE at all, they failed ("no readable DPE") a software writing
    every value right: DPE-001's breach blamed on three more requirements."""
    run = out_of_model(dpe_run(ask_registry=True, carry=True))
    assert judge("housing.dpe_schema_valid", run, "DIAGNOSTICIAN").status == "fail"
    for check_id in ("housing.dpe_class_recomputed", "housing.dpe_software_identified", "housing.dpe_certification"):
        assert judge(check_id, run, "DIAGNOSTICIAN").status == "pass", check_id  # what it writes is right
    cases = {"housing.dpe_class_recomputed": {"classe_bilan_dpe": "A"},
             "housing.dpe_software_identified": {"usr_logiciel_id": "HomeApp"},
             "housing.dpe_certification": {"numero_certification_diagnostiqueur": "Camille Lemaire"}}
    for check_id, values in cases.items():
        v = judge(check_id, out_of_model(dpe_run(ask_registry=True, carry=True), **values), "DIAGNOSTICIAN")
        assert v.status == "fail", (check_id, v)
        mixed = out_of_model(dpe_run(ask_registry=True, carry=True), keep=2, **values)  # the complete step's valid
        v = judge(check_id, mixed, "DIAGNOSTICIAN")
        assert v.status == "fail" and {f.exchange for f in v.findings} == {8, 9}, (check_id, v)


def test_dpe_005_006_010_fail_a_run_that_uploaded_no_dpe() -> None:
    """No DPE to judge is no pass: each check fails with the one finding saying so."""
    t = Trace()
    t.step("dpe.file", "complete", {"filed": False})
    for check_id in ("housing.dpe_class_recomputed", "housing.dpe_software_identified", "housing.dpe_certification"):
        v = judge(check_id, {FILE.id: t}, "DIAGNOSTICIAN")
        assert (v.status, messages(v)) == ("fail", "the software uploaded no readable DPE"), check_id


# ---------------------------------------------------------------------------------------------------------------
# WORKS-006: the works record names the home's building


def works_run(home: str, record: dict[str, Any]) -> dict[str, Trace]:
    t = Trace(homes=[{"fiscal_number": HOME, "rnb_id": RNB}])
    t.http("dataspace", "POST", f"/homes/{HOME}/quotes", body={"json": {"quote_id": "Q-0001"}}, status=201,
           outcome="quote-deposited")
    t.step("quote.send", "quote", {"sent": True, "quote_id": "Q-0001"})
    t.http("dataspace", "POST", f"/homes/{home}/works", body={"json": {"quote_id": "Q-0001"} | record}, status=201,
           outcome="works-recorded")
    t.step("works.record", "works", {"recorded": True})
    return {QUOTE_AND_WORKS.id: t}


def test_works_006_a_record_without_rnb_id_for_a_home_not_in_the_fixtures_fails() -> None:
    """QA repro: the expected building was looked up by the path's home; for a home the fixtures do not hold, both
    it and the record's missing rnb_id were None, and None == None passed a works record naming no building."""
    assert judge("housing.works_linked", works_run(HOME, {"rnb_id": RNB}), "CONTRACTOR").status == "pass"
    for home, record in ((HOME, {}), (OTHER, {}), (OTHER, {"rnb_id": None}), (OTHER, {"rnb_id": RNB})):
        v = judge("housing.works_linked", works_run(home, record), "CONTRACTOR")
        assert v.status == "fail" and "RNB id" in messages(v), (home, record, v)


# ---------------------------------------------------------------------------------------------------------------
# DPE-002: the very same document, whatever its bytes


def test_dpe_002_a_filing_of_the_tested_document_written_anew_passes() -> None:
    """QA repro (false positive): the filed document had to be byte for byte the tested one, so a software writing the
    same DPE anew for the filing (indented) failed DPE-002 as if it had filed untested;
    the very same document is the same DPE for the observatory (its identity). Another document still fails."""
    run = dpe_run(ask_registry=True, carry=True)
    assert judge("housing.dpe_test_before_real", run, "DIAGNOSTICIAN").status == "pass"
    filed = [raw for raw in run[FILE.id].items if raw.get("request", {}).get("query", {}).get("mode") == ["real"]]
    for raw in filed:
        root = etree.fromstring(raw["request"]["body"]["text"].encode())
        etree.indent(root)
        raw["request"]["body"]["text"] = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()
    assert judge("housing.dpe_test_before_real", run, "DIAGNOSTICIAN").status == "pass"
    root = etree.fromstring(filed[0]["request"]["body"]["text"].encode())
    root.find("logement/sortie/ep_conso/classe_bilan_dpe").text = "B"
    filed[0]["request"]["body"]["text"] = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()
    v = judge("housing.dpe_test_before_real", run, "DIAGNOSTICIAN")
    assert v.status == "fail" and "without being sent in test mode first" in messages(v), v


def test_the_dpe_scenario_visits_a_home_exactly_on_a_class_bound_drawn_from_the_seed() -> None:
    """DPE-005's check only sees an off-by-one class (``<=`` for ``<``) on a figure exactly on a bound: the random
    one-decimal visits almost never are. The scenario's two visits on a bound are exactly on one (primary energy,
    then emissions, the other indicator in class A so the label is the class of the one on its bound), the same for
    a seed, and over seeds every bound of both indicators is visited."""
    from conformity.harness.scenario import Perform, ScenarioContext
    from conformity.packs.housing.fixtures import generate
    from conformity.packs.housing.rules import DPE_THRESHOLDS, dpe_class, single_class

    energy_bounds, emissions_bounds = [t[1] for t in DPE_THRESHOLDS], [t[2] for t in DPE_THRESHOLDS]
    steps = {s.name: s for s in FILE.steps if isinstance(s, Perform)}
    seen: dict[str, set[float]] = {"energy": set(), "emissions": set()}
    for seed in range(60):
        ctx = ScenarioContext(fixtures=generate(seed), seed=seed)
        energy, emissions = (steps[f"{name}_on_bound"].resolve(ctx)["visit"] for name in ("energy", "emissions"))
        assert [steps[f"{n}_on_bound"].resolve(ScenarioContext(fixtures=generate(seed), seed=seed))["visit"]
                for n in ("energy", "emissions")] == [energy, emissions]
        assert energy["ep_conso"] in energy_bounds and emissions["emissions"] in emissions_bounds
        assert energy["emissions"] < emissions_bounds[0] and emissions["ep_conso"] < energy_bounds[0]
        seen["energy"].add(energy["ep_conso"])
        seen["emissions"].add(emissions["emissions"])
        for visit, bound in ((energy, energy["ep_conso"]), (emissions, emissions["emissions"])):
            assert visit["energy_class"] == dpe_class(visit["ep_conso"], visit["emissions"])
            assert visit["emissions_class"] == single_class(visit["emissions"], emissions_bounds)
            below = dpe_class(bound - 0.1, visit["emissions"]) if visit is energy else \
                dpe_class(visit["ep_conso"], bound - 0.1)
            assert ord(visit["energy_class"]) == ord(below) + 1  # on the bound: the next class, not the one below
    assert seen == {"energy": set(energy_bounds), "emissions": set(emissions_bounds)}


# ---------------------------------------------------------------------------------------------------------------
# HOUSINGID-003: every look-up by address by the geocoder's key for that address, not one kept from another


def identify_by_address(*, low_key: str, geocode_again: bool = True) -> dict[str, Trace]:
    """The complete address geocoded and looked up; the low-score one geocoded, then looked up by ``low_key``; the
    complete one again (its cached geocoding when ``geocode_again`` is false)."""
    t = Trace()
    for name, address, key, looked_up in (("complete", "19 bd saint-michel paris", KEY, KEY),
                                          ("low_score", "37 rue de la canebière marseille", KEY_LOW, low_key),
                                          ("retry", "19 bd saint-michel paris", KEY, KEY)):
        if geocode_again or name != "retry":
            t.http("geocoder", "GET", "/search", query={"q": address.upper() if name == "retry" else address,
                                                         "limit": "1"},
                   answer={"features": [{"properties": {"id": key, "type": "housenumber", "score": 0.9}}]})
        t.http("buildings", "GET", "/buildings", query={"cle_interop": looked_up, "min_score": "0.45"},
               answer={"status": "ok", "buildings": [{"rnb_id": RNB if looked_up == KEY else RNB_LOW}]})
        t.step("building.identify", name, {"status": "ok", "cle_interop": key,
                                           "rnb_id": RNB if looked_up == KEY else RNB_LOW}, address=address)
    return {IDENTIFY.id: t}


def test_housingid_003_fails_a_look_up_by_the_key_of_another_address_geocoded_before() -> None:
    """The low-score address geocoded, then its building looked up by the complete address's key (the geocoding
    kept from the step before): the complete address's building presented as this one's. Passed: only the complete
    step's look-ups were compared with the geocoder's key."""
    v = judge("housing.ban_key_kept", identify_by_address(low_key=KEY), "DIAGNOSTICIAN")
    assert v.status == "fail", v
    assert "'low_score'" in messages(v) and "another geocoding" in messages(v)
    assert [f.got for f in v.findings] == [[KEY]] and v.findings[0].expected == [KEY_LOW]


def test_housingid_003_takes_a_cached_geocoding_of_the_same_address() -> None:
    assert judge("housing.ban_key_kept", identify_by_address(low_key=KEY_LOW), "DIAGNOSTICIAN").status == "pass"
    cached = identify_by_address(low_key=KEY_LOW, geocode_again=False)
    assert judge("housing.ban_key_kept", cached, "DIAGNOSTICIAN").status == "pass"


def test_consent_006_without_a_granted_consent_says_there_was_none_to_revoke() -> None:
    """A grant refused (here answered 422) leaves no consent id: the check said "expected DELETE /consents/None"."""
    t = consent_run()[CONSENTS.id]
    asked = t.items[0]
    asked["response"] = {"status": 422, "headers": {}, "body": {"json": {"code": "invalid-request"}}}
    asked["outcome"] = "invalid-request"
    v = judge("housing.consent_revoke_sent", {CONSENTS.id: t}, "ADVISER")
    assert v.status == "fail" and "granted no consent at step 'grant'" in messages(v), v
    assert "None" not in messages(v), v
