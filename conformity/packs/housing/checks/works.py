"""Checks: harmonised quotes and works records (WORKS) — format, gestes, mandatory mentions, amounts, the carnet."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import quote
from conformity.checks.model import Finding, Verdict, failed
from conformity.checks.registry import check
from conformity.checks.trace import Exchange, TraceView
from conformity.packs.housing.checks.common import verdict
from conformity.packs.housing.rules import SIRET
from conformity.packs.housing.scenarios.works import QUOTE_AND_WORKS

SCENARIO = QUOTE_AND_WORKS.id
#: amounts agree to the cent (either rounding of a half cent)
TOLERANCE = 0.01 + 1e-6
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def deposits(trace: TraceView, what: str) -> list[tuple[Exchange, dict[str, Any]]]:
    return [
        (e, e.request_json)
        for e in trace.exchanges("dataspace", method="POST")
        if e.local_path.endswith(f"/{what}") and isinstance(e.request_json, dict)
    ]


def quotes_of(trace: TraceView) -> list[tuple[Exchange, dict[str, Any]]]:
    return deposits(trace, "quotes")


def none_sent(what: str) -> Verdict:
    return failed(Finding(f"the software sent no {what}"))


def items_of(doc: dict[str, Any]) -> list[Any]:
    """A quote's or works record's ``gestes`` (empty when it is not a list: each check says so, none raises)."""
    found = doc.get("gestes")
    return found if isinstance(found, list) else []


def not_a_list(e: Exchange, doc: dict[str, Any]) -> list[Finding]:
    """A finding when ``gestes`` is missing or not a list."""
    if isinstance(doc.get("gestes"), list):
        return []
    return [
        quote(
            e,
            "the gestes are not a list",
            where="request.body.json.gestes",
            expected="a list of items",
            got=doc.get("gestes"),
        )
    ]


def number(value: Any) -> float | None:
    """An amount as a finite number (None for anything else: a string, a boolean, nothing, NaN, an infinity, an
    integer too large for a float)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        found = float(value)
    except OverflowError:
        return None
    return found if math.isfinite(found) else None


def text(value: Any) -> str:
    """A mention's text, blank-stripped ("" for anything but a string: ``null`` is no mention, nor a list)."""
    return value.strip() if isinstance(value, str) else ""


def date_of(value: Any) -> dt.date | None:
    """A quote's date (``YYYY-MM-DD``, the format's ``date``), None for anything else: dates are compared as dates,
    never as texts (``str(None)`` sorts after every date, an empty one before)."""
    if not isinstance(value, str) or not DATE.fullmatch(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@check("housing.quote_format", verifies=["WORKS-001"], scenario=SCENARIO)
def quote_format(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each quote follows the harmonised format: the data space accepted it."""
    sent = quotes_of(trace)
    if not sent:
        return none_sent("quote")
    findings = [
        quote(
            e,
            "the quote does not follow the harmonised format",
            where="response.body",
            expected="quote-deposited",
            got=(e.response_json or {}).get("errors") or e.outcome,
        )
        for e, _ in sent
        if e.outcome not in ("quote-deposited", "quote-duplicate")
    ]
    return verdict(findings, f"{len(sent)} quote(s) in the harmonised format")


@check("housing.quote_gestes_known", verifies=["WORKS-002"], scenario=SCENARIO)
def quote_gestes_known(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each item of a quote is a geste of the referential's list."""
    known = set(ctx.param("WORKS-002", "gestes", []))
    sent = quotes_of(trace)
    if not sent:
        return none_sent("quote")
    findings = []
    for e, q in sent:
        findings += not_a_list(e, q)
        for i, g in enumerate(items_of(q)):
            code = g.get("code") if isinstance(g, dict) else None
            if not isinstance(g, dict):
                findings.append(
                    quote(
                        e,
                        f"item {i} is not an object with a geste code",
                        where=f"request.body.json.gestes[{i}]",
                        expected="an object whose code is a geste of the list",
                        got=g,
                    )
                )
            elif not isinstance(code, str) or code not in known:  # a list or object code is no geste (nor hashable)
                findings.append(
                    quote(
                        e,
                        f"item {i} is not a geste of the list",
                        where=f"request.body.json.gestes[{i}].code",
                        expected=sorted(known),
                        got=code,
                    )
                )
    return verdict(findings, "every item is a known geste")


@check("housing.quote_mentions", verifies=["WORKS-003"], scenario=SCENARIO)
def quote_mentions(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each quote carries the mandatory mentions, the contractor's SIRET and RGE qualification, and a validity."""
    wanted = list(ctx.param("WORKS-003", "mentions", []))
    sent = quotes_of(trace)
    if not sent:
        return none_sent("quote")
    findings = []
    for e, q in sent:
        mentions = mapping(q.get("mentions"))
        missing = [m for m in wanted if not text(mentions.get(m))]
        if missing:
            findings.append(
                quote(
                    e,
                    "the quote lacks mandatory mentions",
                    where="request.body.json.mentions",
                    expected=wanted,
                    got=sorted(mentions) if isinstance(q.get("mentions"), dict) else q.get("mentions"),
                )
            )
        contractor = mapping(q.get("contractor"))
        siret = contractor.get("siret")
        if not (isinstance(siret, str) and SIRET.fullmatch(siret)) or not text(contractor.get("rge")):
            findings.append(
                quote(
                    e,
                    "the quote does not identify the contractor by SIRET and RGE qualification",
                    where="request.body.json.contractor",
                    expected="siret (14 digits) and rge",
                    got=q.get("contractor"),
                )
            )
        issued, valid_until = date_of(q.get("issued")), date_of(q.get("valid_until"))
        if issued is None or valid_until is None or valid_until <= issued:
            findings.append(
                quote(
                    e,
                    "the quote's validity ends before it starts"
                    if issued and valid_until
                    else "the quote has no date or no validity end (a YYYY-MM-DD date)",
                    where="request.body.json.valid_until",
                    expected=f"after {q.get('issued')}",
                    got=q.get("valid_until"),
                )
            )
    return verdict(findings, f"{len(sent)} quote(s) with every mandatory mention")


def _close(a: Any, b: float) -> bool:
    found = number(a)
    return found is not None and math.isfinite(b) and abs(found - b) <= TOLERANCE


@check("housing.quote_amounts", verifies=["WORKS-004"], scenario=SCENARIO)
def quote_amounts(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each quote's amounts add up: item totals, total before tax, VAT by rate, total with tax."""
    sent = quotes_of(trace)
    if not sent:
        return none_sent("quote")
    findings = []
    for e, q in sent:
        lines: list[tuple[float, float]] = []  # each readable item's total before tax and VAT rate
        unreadable = not_a_list(e, q)
        for i, g in enumerate(items_of(q)):
            amounts = {k: number(mapping(g).get(k)) for k in ("quantity", "unit_price_ht", "total_ht", "vat_rate")}
            wrong = sorted(k for k, v in amounts.items() if v is None)
            if wrong:
                unreadable.append(
                    quote(
                        e,
                        f"item {i} is not an object with its amounts: the quote's amounts cannot be added up"
                        if not isinstance(g, dict)
                        else f"item {i} has no numeric {', '.join(wrong)} (a finite amount): the quote's amounts "
                        "cannot be added up",
                        where=f"request.body.json.gestes[{i}]",
                        expected="an object with finite numeric quantity, unit_price_ht, total_ht and vat_rate",
                        got=g,
                    )
                )
                continue
            quantity, price, total, rate = (
                amounts[k] or 0.0 for k in ("quantity", "unit_price_ht", "total_ht", "vat_rate")
            )
            line = round(quantity * price, 2)
            if not math.isfinite(line):
                unreadable.append(
                    quote(
                        e,
                        f"item {i}'s quantity × unit price is too large for an amount: the quote's amounts cannot "
                        "be added up",
                        where=f"request.body.json.gestes[{i}]",
                        expected="a finite total",
                        got=g,
                    )
                )
                continue
            if not _close(total, line):
                findings.append(
                    quote(
                        e,
                        f"item {i}'s total is not quantity × unit price",
                        where=f"request.body.json.gestes[{i}].total_ht",
                        expected=line,
                        got=g.get("total_ht"),
                    )
                )
            lines.append((total, rate))
        if unreadable:  # the quote's totals cannot be recomputed: say why, never a sum of what could be read
            findings += unreadable
            continue
        ht = round(sum(total for total, _ in lines), 2)
        vat = round(sum(total * rate / 100 for total, rate in lines), 2)
        if not (math.isfinite(ht) and math.isfinite(ht + vat)):
            findings.append(quote(e, "the quote's items add up to more than any amount",
                                  where="request.body.json.total_ht", expected="finite totals", got=q.get("total_ht")))
            continue
        for name, value in (("total_ht", ht), ("total_vat", vat), ("total_ttc", round(ht + vat, 2))):
            if not _close(q.get(name), value):
                findings.append(
                    quote(
                        e,
                        f"the quote's {name} does not add up",
                        where=f"request.body.json.{name}",
                        expected=value,
                        got=q.get(name),
                    )
                )
    return verdict(findings, f"{len(sent)} quote(s) whose amounts add up")


@check("housing.works_carnet_category", verifies=["WORKS-005"], scenario=SCENARIO)
def works_carnet_category(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Works are recorded under the carnet's category of their gestes."""
    categories: dict[str, str] = dict(ctx.param("WORKS-005", "geste_categories", {}))
    sent = deposits(trace, "works")
    if not sent:
        return none_sent("works record")
    findings = []
    for e, w in sent:
        expected = sorted({categories.get(str(g), "?") for g in items_of(w)})
        if w.get("category") not in expected or len(expected) != 1:
            findings.append(
                quote(
                    e,
                    "the works are not recorded under the carnet category of their gestes",
                    where="request.body.json.category",
                    expected=expected,
                    got=w.get("category"),
                )
            )
    return verdict(findings, f"{len(sent)} works record(s) in their carnet category")


@check("housing.works_linked", verifies=["WORKS-006"], scenario=SCENARIO)
def works_linked(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A works record names the quote it carries out (one deposited) and the home's building (its RNB id)."""
    sent = deposits(trace, "works")
    if not sent:
        return none_sent("works record")
    quoted = {str(q.get("quote_id")) for e, q in quotes_of(trace) if e.status in (200, 201)}
    buildings = {h["fiscal_number"]: h["rnb_id"] for h in trace.fixtures.get("homes", [])}
    findings = []
    for e, w in sent:
        if str(w.get("quote_id")) not in quoted:
            findings.append(
                quote(
                    e,
                    "the works record names no quote deposited for the home",
                    where="request.body.json.quote_id",
                    expected=sorted(quoted),
                    got=w.get("quote_id"),
                )
            )
        home = e.local_path.split("/")[2] if e.local_path.count("/") >= 3 else ""
        building = buildings.get(home)  # None: a home the fixtures do not hold, whose building no record can name
        if building is None or w.get("rnb_id") != building:
            findings.append(
                quote(
                    e,
                    "the works record does not name the home's building by its RNB id",
                    where="request.body.json.rnb_id",
                    expected=building or f"the building of a home of the session (not {home!r})",
                    got=w.get("rnb_id"),
                )
            )
    return verdict(findings, f"{len(sent)} works record(s) linked to their quote and building")
