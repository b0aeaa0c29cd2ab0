"""The patient identity service over real HTTP: match, no match, several, normalisation, faults."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.packs.health.ins import normalise_name
from sandbox.packs.health import samples
from sandbox.packs.health.fixtures import registry_entries
from sandbox.server import RunningSandbox
from tests.sandbox.helpers import create_session, trace_payload

HTTP_SETTINGS = settings(derandomize=True, deadline=None, max_examples=40)


@pytest.fixture(scope="module")
def session(admin: httpx.Client) -> dict[str, Any]:
    return create_session(admin, 4242, label="insi")


def token_for(server: RunningSandbox, session: dict[str, Any], practitioner: int = 0, **kw: Any) -> str:
    store = server.server.config.app.state.store
    return samples.issue_access_token(store, session["session_id"],
                                      session["fixtures"]["practitioners"][practitioner]["national_id"], **kw)


@pytest.fixture(scope="module")
def lookup(sandbox_server: RunningSandbox, session: dict[str, Any]) -> Iterator[Callable[..., httpx.Response]]:
    """``lookup(traits)`` posts a look-up in the module's session with a valid access token."""
    token = token_for(sandbox_server, session)
    with httpx.Client(base_url=sandbox_server.base_url, timeout=30) as http:
        def go(traits: dict[str, Any], *, sid: str | None = None, auth: str | None = token) -> httpx.Response:
            headers = {"Authorization": f"Bearer {auth}"} if auth else {}
            return http.post(f"/s/{sid or session['session_id']}/insi/lookup", json=traits, headers=headers)
        yield go


def patients(session: dict[str, Any], scenario: str) -> list[dict[str, Any]]:
    return [p for p in session["fixtures"]["patients"] if p["scenario"] == scenario]


def outcomes(admin: httpx.Client, sid: str) -> list[str]:
    trace = trace_payload(admin.get(f"/admin/sessions/{sid}/trace"))
    return [e["outcome"] for e in trace["exchanges"] if e["kind"] == "http"]


# ------------------------------------------------------------------------------------------ answers

def test_single_match_returns_ins_oid_and_registered_traits(lookup: Callable[..., httpx.Response],
                                                            session: dict[str, Any]) -> None:
    for patient in patients(session, "match"):
        r = lookup(patient["registered_traits"])
        assert r.status_code == 200, r.text
        assert r.json() == {"outcome": "match", "identity": {"ins": patient["ins"], "oid": patient["oid"],
                                                             "traits": patient["registered_traits"]}}


def test_several_matches_never_yield_an_identity(lookup: Callable[..., httpx.Response],
                                                 session: dict[str, Any]) -> None:
    twin = patients(session, "multiple")[0]
    r = lookup(twin["registered_traits"])
    assert r.status_code == 200
    assert r.json() == {"outcome": "multiple", "count": 2}


def test_no_match_never_yields_an_identity(lookup: Callable[..., httpx.Response], session: dict[str, Any]) -> None:
    absent = patients(session, "absent")[0]
    assert lookup(absent["registered_traits"]).json() == {"outcome": "no_match"}
    other_sex = patients(session, "match")[0]["registered_traits"] | {"sex": "U"}
    assert lookup(other_sex).json() == {"outcome": "no_match"}


def test_traits_must_arrive_normalised(lookup: Callable[..., httpx.Response], session: dict[str, Any]) -> None:
    patient = patients(session, "match")[0]
    raw = patient["registered_traits"] | {"birth_name": "d’Almeida-Éloi", "first_names": "Zoé  Anaïs"}
    r = lookup(raw)
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "traits-not-normalised" and body["traits"] == ["birth_name", "first_names"]
    assert r.headers["content-type"].startswith("application/problem+json")
    lower = patient["registered_traits"] | {"first_names": patient["registered_traits"]["first_names"].lower()}
    assert lookup(lower).json()["traits"] == ["first_names"]


@pytest.mark.parametrize("change", [
    {"birth_date": "2023-02-29"}, {"birth_date": "1999-13-01"}, {"birth_date": "01/02/1999"}, {"sex": "X"},
    {"birth_place_code": "7505"}, {"birth_place_code": "2C004"}, {"birth_name": ""}, {"used_name": "DUPONT"},
])
def test_malformed_traits_are_refused(lookup: Callable[..., httpx.Response], session: dict[str, Any],
                                      change: dict[str, str]) -> None:
    r = lookup(patients(session, "match")[0]["registered_traits"] | change)
    assert r.status_code == 422 and r.json()["code"] == "invalid-request"


def test_access_token_required(lookup: Callable[..., httpx.Response], session: dict[str, Any]) -> None:
    traits = patients(session, "match")[0]["registered_traits"]
    assert lookup(traits, auth=None).json()["code"] == "token-missing"
    assert lookup(traits, auth="forged").json()["code"] == "token-invalid"


def test_outcomes_recorded_in_the_trace(lookup: Callable[..., httpx.Response], session: dict[str, Any],
                                        admin: httpx.Client) -> None:
    before = len(outcomes(admin, session["session_id"]))
    lookup(patients(session, "match")[0]["registered_traits"])
    lookup(patients(session, "multiple")[0]["registered_traits"])
    lookup(patients(session, "absent")[0]["registered_traits"])
    assert outcomes(admin, session["session_id"])[before:] == ["lookup-match", "lookup-multiple", "lookup-no-match"]


def test_unavailable_fault_answers_503_n_times(sandbox_server: RunningSandbox, new_session: Callable[..., Any],
                                               admin: httpx.Client, lookup: Callable[..., httpx.Response]) -> None:
    other = new_session(seed=77)
    sid = other["session_id"]
    token = token_for(sandbox_server, other)
    assert admin.put(f"/admin/sessions/{sid}/faults", json={"insi": {"unavailable": 2}}).status_code == 200
    traits = patients(other, "match")[0]["registered_traits"]
    for _ in range(2):
        r = lookup(traits, sid=sid, auth=token)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["code"] == "service-unavailable"
    assert lookup(traits, sid=sid, auth=token).json()["outcome"] == "match"
    assert admin.get(f"/admin/sessions/{sid}").json()["faults"]["insi"]["unavailable"] == 0
    assert outcomes(admin, sid) == ["service-unavailable", "service-unavailable", "lookup-match"]


# ------------------------------------------------------------------------------------------ properties

ACCENTED = {
    "A": "AÀÂÄÁÃÅaàâäáãå", "C": "CÇcç", "E": "EÉÈÊËeéèêë", "I": "IÎÏÍiîïí", "O": "OÔÖÓÕoôöóõ",
    "U": "UÙÛÜÚuùûüú", "Y": "YŸÝyÿý", "N": "NÑnñ",
}
NAME_CHARS = "".join(ACCENTED.values()) + "BDFGHJKLMPQRSTVWXZbdfghjklmpqrstvwxzŒœÆæß -‐–'’‘"


@settings(derandomize=True, max_examples=500)
@given(st.text(alphabet=st.one_of(st.sampled_from(NAME_CHARS), st.characters()), max_size=60))
def test_normalise_name_is_idempotent_and_plain(text: str) -> None:
    once = normalise_name(text)
    assert normalise_name(once) == once
    assert all(c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ -'" for c in once)
    assert once == once.strip(" -'") and "  " not in once


def normalise_name_unicode(text: str) -> str:
    """``normalise_name``'s full definition (every string through ligatures, NFKD and combining marks)."""
    import re
    import unicodedata

    from conformity.packs.health.ins import _LIGATURES

    text = unicodedata.normalize("NFKD", "".join(_LIGATURES.get(c, c) for c in text))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.upper().replace("’", "'").replace("‘", "'").replace("‐", "-").replace("–", "-")
    text = re.sub(r"\s*-\s*", "-", re.sub(r"[^A-Z '\-]", " ", text))
    return re.sub(r"\s+", " ", re.sub(r"\s*'\s*", "'", text)).strip(" -'")


@settings(derandomize=True, max_examples=500)
@given(st.one_of(st.text(alphabet=st.characters(max_codepoint=127), max_size=60),
                 st.text(alphabet=st.one_of(st.sampled_from(NAME_CHARS), st.characters()), max_size=60)))
def test_normalise_name_s_ascii_path_is_the_full_definition(text: str) -> None:
    """ASCII text skips the ligature, decomposition and mark steps (the checks fold every URL and output): the
    same name as the full definition, for ASCII and any other text."""
    assert normalise_name(text) == normalise_name_unicode(text)


@st.composite
def spelled(draw: st.DrawFn, registered: str) -> str:
    """The registered (normalised) name as an operator might type it: case, diacritics, apostrophes, hyphens."""
    out = [draw(st.sampled_from(["", " "]))]
    for c in registered:
        if c in ACCENTED:
            out.append(draw(st.sampled_from(ACCENTED[c])))
        elif c.isalpha():
            out.append(draw(st.sampled_from([c, c.lower()])))
        elif c == "'":
            out.append(draw(st.sampled_from(["'", "’", " ' ", "‘"])))
        elif c == "-":
            out.append(draw(st.sampled_from(["-", " - ", "‐", "–"])))
        else:
            out.append(draw(st.sampled_from([" ", "  "])))
    return "".join(out)


@HTTP_SETTINGS
@given(data=st.data())
def test_matching_ignores_case_and_diacritics_only_after_normalisation(
        lookup: Callable[..., httpx.Response], session: dict[str, Any], data: st.DataObject) -> None:
    patient = data.draw(st.sampled_from(patients(session, "match")))
    registered = patient["registered_traits"]
    typed = {name: data.draw(spelled(registered[name])) for name in ("birth_name", "first_names")}
    normalised = {name: normalise_name(value) for name, value in typed.items()}
    assert normalised == {name: registered[name] for name in typed}
    answer = lookup(registered | normalised).json()
    assert answer["outcome"] == "match" and answer["identity"]["ins"] == patient["ins"]
    if typed != normalised:
        r = lookup(registered | typed)
        assert r.status_code == 422 and r.json()["code"] == "traits-not-normalised"


WORD = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=24)
EDGE_DATES = [dt.date(1900, 1, 1), dt.date(2000, 2, 29), dt.date(2024, 2, 29), dt.date(1999, 12, 31),
              dt.date.today()]


@st.composite
def compound_name(draw: st.DrawFn) -> str:
    words = draw(st.lists(WORD, min_size=1, max_size=5))
    name = words[0]
    for w in words[1:]:
        name += draw(st.sampled_from([" ", "-", "'"])) + w
    return name[:100].rstrip(" -'")


@HTTP_SETTINGS
@given(birth_name=compound_name(), first_names=compound_name(),
       birth_date=st.one_of(st.sampled_from(EDGE_DATES), st.dates(dt.date(1900, 1, 1), dt.date.today())),
       sex=st.sampled_from("MFU"), place=st.from_regex(r"[0-9][0-9AB][0-9]{3}", fullmatch=True))
def test_generated_traits_get_a_registry_answer(lookup: Callable[..., httpx.Response], session: dict[str, Any],
                                                birth_name: str, first_names: str, birth_date: dt.date, sex: str,
                                                place: str) -> None:
    traits = {"birth_name": birth_name, "first_names": first_names, "birth_date": birth_date.isoformat(),
              "sex": sex, "birth_place_code": place}
    assert normalise_name(birth_name) == birth_name
    r = lookup(traits)
    assert r.status_code == 200, r.text
    same = [e for e in registry_entries(session["fixtures"]) if e["registered_traits"] == traits]
    expected = "no_match" if not same else "match" if len(same) == 1 else "multiple"
    assert r.json()["outcome"] == expected
    if expected != "match":
        assert "identity" not in r.json()
