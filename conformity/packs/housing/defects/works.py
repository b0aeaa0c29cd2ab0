"""Trace mutations: quotes and works (WORKS)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformity.defects.edit import TraceEdit
from conformity.packs.housing.defects.common import copied, mutation, refused
from conformity.packs.housing.scenarios.works import QUOTE_AND_WORKS

SCENARIO = QUOTE_AND_WORKS.id
CATEGORY = "CONTRACTOR"


def quote_body(t: TraceEdit) -> tuple[int, dict[str, Any]]:
    e = t.in_step("quote", "dataspace", method="POST", path="/quotes")[-1]
    return e.seq, e.raw["request"]["body"]["json"]


def refused_quote_first(t: TraceEdit, change: Callable[[dict[str, Any]], object], error: str) -> float:
    """Before the quote the software deposits, a copy of it edited by ``change`` that the data space refused (422
    ``quote-invalid`` with ``error``)."""
    note = t.step("quote")
    sent = t.in_step("quote", "dataspace", method="POST", path="/quotes")[-1]
    raw = copied(sent, note.seq - 0.7)
    change(raw["request"]["body"]["json"])
    return t.insert(refused(raw, 422, "quote-invalid", errors=[error]))


@mutation("quote-out-of-format", scenario=SCENARIO, breaks=["WORKS-001"], category=CATEGORY, where="response.body")
def quote_out_of_format(t: TraceEdit) -> float:
    """The software first sends a quote without its format marker, which the data space refuses."""
    return refused_quote_first(t, lambda body: body.pop("format"), "(root): 'format' is a required property")


@mutation(
    "unknown-geste",
    scenario=SCENARIO,
    breaks=["WORKS-002"],
    category=CATEGORY,
    where="request.body.json.gestes[0].code",
)
def unknown_geste(t: TraceEdit) -> float:
    """The software writes a geste code of its own catalogue."""
    seq, quote = quote_body(t)
    quote["gestes"][0]["code"] = "ISOLATION-PREMIUM"
    return seq


@mutation(
    "quote-without-insurance",
    scenario=SCENARIO,
    breaks=["WORKS-003"],
    category=CATEGORY,
    where="request.body.json.mentions",
)
def quote_without_insurance(t: TraceEdit) -> float:
    """The software leaves the insurance mention out of the quote."""
    seq, quote = quote_body(t)
    quote["mentions"].pop("insurance")
    return seq


@mutation(
    "quote-blank-rge",
    scenario=SCENARIO,
    breaks=["WORKS-003"],
    category=CATEGORY,
    where="request.body.json.contractor",
)
def quote_blank_rge(t: TraceEdit) -> float:
    """The software pads the contractor's RGE qualification with a blank when its profile has none (the format takes
    any text, so the data space accepts the quote)."""
    seq, quote = quote_body(t)
    quote["contractor"]["rge"] = " "
    return seq


@mutation(
    "vat-at-twenty-percent",
    scenario=SCENARIO,
    breaks=["WORKS-004"],
    category=CATEGORY,
    where="request.body.json.total_vat",
)
def vat_at_twenty_percent(t: TraceEdit) -> float:
    """The software computes the quote's VAT at 20 % whatever each item's rate."""
    seq, quote = quote_body(t)
    quote["total_vat"] = round(quote["total_ht"] * 0.2, 2)
    quote["total_ttc"] = round(quote["total_ht"] + quote["total_vat"], 2)
    return seq


@mutation(
    "works-all-heating", scenario=SCENARIO, breaks=["WORKS-005"], category=CATEGORY, where="request.body.json.category"
)
def works_all_heating(t: TraceEdit) -> float:
    """The software records roof insulation works under heating."""
    recorded = t.in_step("works", "dataspace", method="POST", path="/works")
    e = next(e for e in recorded if e.raw["request"]["body"]["json"]["category"] != "heating")
    e.raw["request"]["body"]["json"]["category"] = "heating"
    return e.seq


@mutation(
    "works-without-quote",
    scenario=SCENARIO,
    breaks=["WORKS-006"],
    category=CATEGORY,
    where="request.body.json.quote_id",
)
def works_without_quote(t: TraceEdit) -> float:
    """The software records works under a quote number it never deposited."""
    e = t.in_step("works", "dataspace", method="POST", path="/works")[0]
    e.raw["request"]["body"]["json"]["quote_id"] = "Q-PAPER-0001"
    return e.seq


@mutation(
    "quote-gestes-as-bare-codes",
    scenario=SCENARIO,
    breaks=["WORKS-001", "WORKS-002", "WORKS-004"],
    category=CATEGORY,
    where="request.body.json.gestes[0]",
)
def quote_gestes_as_bare_codes(t: TraceEdit) -> float:
    """The software first sends its quote with the gestes as bare codes (["ISO-COMBLES", ...]) instead of items, which
    the data space refuses: the checks say so, none raises."""
    def bare_codes(body: dict[str, Any]) -> None:
        body["gestes"] = [g["code"] for g in body["gestes"]]

    return refused_quote_first(t, bare_codes, "gestes/0: 'ISO-COMBLES' is not of type 'object'")
