"""Whether one event counts towards its installation's proof of use: funding window, label, price, rule.

Pure: the same event, labels and wave give the same answer, whatever the order of the events.
Checks in order: the wave's funding window, a label valid at the event's time covering the software
version, a price for the category and site size, and the kind / document type the rule counts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from conformity.catalog.models import Wave
from conformity.labels import Label
from conformity.payments import reasons
from conformity.payments.envelope import format_us, to_us
from conformity.payments.labelbook import LabelBook

DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True, slots=True)
class Verdict:
    """Counted (reason None, with the covering label), or the refusal reason and why."""

    reason: str | None
    detail: str = ""
    label: Label | None = None


@dataclass(frozen=True, slots=True)
class WaveRules:
    """A wave's funding rules in the units the run works in (microseconds, cents)."""

    wave: Wave
    window_start_us: int
    window_end_us: int

    @classmethod
    def of(cls, wave: Wave) -> WaveRules:
        f = wave.funding
        start = dt.datetime.combine(f.window_start, dt.time(), tzinfo=dt.UTC)
        end = dt.datetime.combine(f.window_end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return cls(wave, to_us(start), to_us(end))

    @property
    def id(self) -> str:
        return self.wave.id

    @property
    def currency(self) -> str:
        return self.wave.funding.currency

    @property
    def cap_cents(self) -> int:
        return self.wave.funding.cap_per_software * 100

    def price_cents(self, category: str, size: str) -> int | None:
        price = self.wave.funding.price(category, size)
        return None if price is None else price * 100

    def threshold(self, category: str) -> tuple[int, int]:
        """(min_events, span in microseconds) of the category's proof-of-use rule."""
        rule = self.wave.funding.proof_of_use(category)
        return rule.min_events, rule.within_days * DAY_US

    def evaluate(self, data: dict[str, Any], time_us: int, book: LabelBook, when: str | None = None) -> Verdict:
        """Whether an event of this wave counts, and if not, why; ``when`` stands for the event's time in the
        detail (the columnar engine judges an interval of time at once and puts each event's time in)."""
        f = self.wave.funding
        when = format_us(time_us) if when is None else when
        if not self.window_start_us <= time_us < self.window_end_us:
            return Verdict(reasons.OUTSIDE_WINDOW, f"event time {when} is outside the funding window "
                                                   f"{f.window_start} to {f.window_end}")
        reason, label = book.verdict(data, time_us)
        if reason is not None:
            sw = data["software"]
            return Verdict(reason, _label_detail(reason, data["vendor_id"], sw["id"], sw["version"], data["category"],
                                                 self.wave.id, when))
        category, size = data["category"], data["site"]["size"]
        if f.price(category, size) is None:
            return Verdict(reasons.NO_PRICE, f"wave {self.wave.id} has no price for category {category}, size {size}")
        rule = f.proof_of_use(category)
        if data["kind"] not in rule.kinds:
            return Verdict(reasons.NOT_PROOF_OF_USE, f"kind {data['kind']} is not counted for {category} "
                                                     f"(counted: {', '.join(rule.kinds)})")
        if rule.document_types and data["document_type"] not in rule.document_types:
            counted = ", ".join(rule.document_types)
            if data["document_type"] is None:  # data of a counted kind carrying no typed document (a plain message)
                return Verdict(reasons.NOT_PROOF_OF_USE, f"{data['kind']} data with no document type is not counted "
                                                         f"for {category} (counted: documents of type {counted})")
            return Verdict(reasons.NOT_PROOF_OF_USE, f"document type {data['document_type']} is not counted for "
                                                     f"{category} (counted: {counted})")
        return Verdict(None, "", label)


def _label_detail(reason: str, vendor: str, software: str, version: str, category: str, wave: str,
                  when: str) -> str:
    what = f"vendor {vendor}, software {software} {version}, {wave} {category}"
    if reason == reasons.NO_LABEL:
        return f"no valid label for {what}"
    if reason == reasons.LABEL_INVALID:
        return f"only labels that do not verify claim {what} (see the label refusals)"
    if reason == reasons.VERSION_NOT_COVERED:
        return f"no label covers version {version} ({what})"
    if reason == reasons.LABEL_REVOKED:
        return f"the label covering {what} was revoked before {when}"
    if reason == reasons.LABEL_EXPIRED:
        return f"the label covering {what} had expired at {when}"
    return f"the label covering {what} was issued after {when}"
