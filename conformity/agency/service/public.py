"""What the public reads: the registry of labels (filtered), its CSV and JSON, the signed export and revocation list.

The open data is the export's (``conformity.agency.export``: format ``usine.registry-export/2``, schema
``registry-export``); the signed documents are made with the agency's key at the time asked, the
revocation list with its ``next_update`` (a reader must fetch it again by then).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from conformity.agency.export import csv_text, open_data, revocation_entries
from conformity.agency.registry import Registry
from conformity.labels import sign_revocations
from conformity.signing import SigningKey

STATUSES = ("valid", "revoked", "expired", "not-yet-valid")


@dataclass(frozen=True, slots=True)
class Filters:
    """Search and filters of the public registry (empty: everything)."""

    wave: str = ""
    category: str = ""
    vendor: str = ""
    state: str = ""
    q: str = ""

    def keep(self, wave: str, category: str, e: dict[str, Any]) -> bool:
        text = " ".join([e["vendor"]["id"], e["vendor"]["name"], e["software"]["id"], e["software"]["name"],
                         e["label_id"], *e["versions"]]).lower()
        return ((not self.wave or wave == self.wave) and (not self.category or category == self.category)
                and (not self.vendor or self.vendor.lower() in (e["vendor"]["id"].lower(), e["vendor"]["name"].lower()))
                and (not self.state or e["status"] == self.state) and (not self.q or self.q.lower() in text))

    def query(self) -> str:
        from urllib.parse import urlencode

        return urlencode({k: v for k, v in (("wave", self.wave), ("category", self.category), ("vendor", self.vendor),
                                            ("state", self.state), ("q", self.q)) if v})


def registry_data(reg: Registry, key: SigningKey, filters: Filters, now: dt.datetime) -> dict[str, Any]:
    """The open data (``usine.registry-export/2``) of the labels that pass the filters."""
    data = open_data(reg.labels(filters.wave or None), key, now)
    waves = []
    for w in data["waves"]:
        cats = [{"category": c["category"], "labels": kept} for c in w["categories"]
                if (kept := [e for e in c["labels"] if filters.keep(w["wave"], c["category"], e)])]
        if cats:
            waves.append({"wave": w["wave"], "categories": cats})
    return {**data, "waves": waves}


def rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The labels of open data, flat, with their wave and category."""
    return [{"wave": w["wave"], "category": c["category"], **e} for w in data["waves"] for c in w["categories"]
            for e in c["labels"]]


def registry_csv(data: dict[str, Any]) -> str:
    return csv_text(data)


def revocation_list(reg: Registry, key: SigningKey, now: dt.datetime | None = None) -> dict[str, Any]:
    """The current signed revocation list (every revoked label, each version), with ``next_update``; issued at
    :meth:`Registry.now` (None): every revocation dated earlier is in it."""
    now = now or reg.now()
    return sign_revocations(revocation_entries(reg.labels()), key, now=now)


def signed_export(reg: Registry, key: SigningKey, now: dt.datetime | None = None) -> dict[str, Any]:
    """``labelled.json`` of the export: the open data of every label, signed (a JWS), generated at
    :meth:`Registry.now` (None), as the revocation list."""
    now = now or reg.now()
    return key.sign_document(open_data(reg.labels(), key, now))
