"""Public export of the registry: open data (CSV + JSON) of labelled software, label files, revocation list.

Layout of ``--out``::

    labelled.csv                  every label issued, by wave and category, with its status today
    labelled.json                 the same as signed open data (a JWS whose payload is usine.registry-export/2)
    labels/label-<id>.json        the signed labels (revoked and expired ones too)
    labels/revocations.json       the signed revocation list (usine.revocations/2, with issued and next_update)
    agency-key.pub.pem            the key that verifies all of them

``labels/`` is what the payment agency reads (``usine pay run --labels OUT/labels``): nothing else in it. An export
into a folder whose ``labels/`` holds anything it does not write (a label of another registry, or of this one
before it was restored from a backup: signed by the same key, revoked by no list this registry signs) is refused
before anything is written, naming what is there.

A failure half-way (an error, a kill, a full disk) leaves what a reader saw before: ``labels/`` is built in a new
folder beside it and renamed into place whole, the three files beside it are renamed into place together, after
``labels/``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformity.agency.registry import Registry, iso
from conformity.catalog.schema import schema_problems
from conformity.csvcells import Writer
from conformity.errors import InputError
from conformity.files import folder_set, output_set, write_atomic
from conformity.labels import ISSUER_NAME, Label, LabelDoc, parse_time, sign_revocations
from conformity.signing import SigningKey

EXPORT_FORMAT = "usine.registry-export/2"
#: the files beside ``labels/``, written together
OPEN_DATA = ("labelled.json", "labelled.csv", "agency-key.pub.pem")
CSV_COLUMNS = ("wave", "category", "label_id", "status", "vendor_id", "vendor_name", "software_id", "software_name",
               "registration_id", "versions", "issued", "expires", "revoked", "revoked_reason", "bundle_sha256", "run_id")


@dataclass(frozen=True, slots=True)
class Exported:
    """What an export wrote."""

    labels: int
    revoked: int
    out: Path


def label_status(doc: LabelDoc, revoked: str | None, now: dt.datetime) -> str:
    """``valid``, ``revoked``, ``expired`` or ``not-yet-valid`` at ``now``."""
    return Label(dict(doc)).valid_at(now, parse_time(revoked) if revoked else None) or "valid"


def entry(doc: LabelDoc, revoked: str | None, reason: str | None, now: dt.datetime) -> dict[str, Any]:
    """One label as an open-data record."""
    out = {"label_id": doc["label_id"], "status": label_status(doc, revoked, now), "vendor": doc["vendor"],
           "software": doc["software"], "versions": doc["versions"], "issued": doc["issued"],
           "expires": doc["expires"], "referentials": doc["referentials"],
           "requirements_passed": len(doc["requirements_passed"]), "bundle_sha256": doc["bundle_sha256"],
           "file": f"labels/label-{doc['label_id']}.json"}
    if "run" in doc:  # labels issued before runs were identities (usine.label/1) name none
        out["run_id"] = doc["run"]["id"]
        out["requirements_reviewed"] = sum(r["verdict"] == "accepted" for r in doc["requirements_reviewed"])
    if revoked:
        out["revoked"], out["revoked_reason"] = revoked, reason
    return out


def _order(e: dict[str, Any]) -> tuple[Any, ...]:
    return (e["vendor"]["id"], e["software"]["id"], e["versions"], e["label_id"])


def open_data(labels: list[tuple[LabelDoc, str | None, str | None]], key: SigningKey,
              now: dt.datetime) -> dict[str, Any]:
    """The JSON open data: waves → categories → labels, sorted."""
    tree: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for doc, revoked, reason in labels:
        tree.setdefault(doc["wave"], {}).setdefault(doc["category"], []).append(entry(doc, revoked, reason, now))
    return {"format": EXPORT_FORMAT, "generated": iso(now), "issuer": {"name": ISSUER_NAME, "key_id": key.kid},
            "waves": [{"wave": w, "categories": [{"category": c, "labels": sorted(es, key=_order)}
                                                 for c, es in sorted(cats.items())]}
                      for w, cats in sorted(tree.items())]}


def csv_text(data: dict[str, Any]) -> str:
    """The open data as CSV, one row per label (the csv module does the quoting, ``conformity.csvcells`` puts a ``'``
    before a text a spreadsheet would run as a formula)."""
    buf = io.StringIO()
    writer = Writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for w in data["waves"]:
        for c in w["categories"]:
            for e in c["labels"]:
                row = {"wave": w["wave"], "category": c["category"], "label_id": e["label_id"],
                       "status": e["status"], "vendor_id": e["vendor"]["id"], "vendor_name": e["vendor"]["name"],
                       "software_id": e["software"]["id"], "software_name": e["software"]["name"],
                       "registration_id": e["software"]["registration_id"], "versions": " ".join(e["versions"]),
                       "issued": e["issued"], "expires": e["expires"], "revoked": e.get("revoked", ""),
                       "revoked_reason": e.get("revoked_reason", ""), "bundle_sha256": e["bundle_sha256"],
                       "run_id": e.get("run_id", "")}
                writer.writerow(row[column] for column in CSV_COLUMNS)
    return buf.getvalue()


def _dump(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _refuse_strays(folder: Path, written: set[str]) -> None:
    """InputError naming what ``folder`` holds that the export does not write (the payment agency relies on all)."""
    if not folder.is_dir():
        return
    strays = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                    if str(p.relative_to(folder)) not in written or not (p.is_file() and not p.is_symlink()))
    if strays:
        raise InputError(f"{len(strays)} file(s) or folder(s) in it that this registry's export does not write "
                         f"({', '.join(strays[:5])}{', …' if len(strays) > 5 else ''}): the payment agency relies on "
                         "every label there, and no revocation list of this registry revokes these; export into an "
                         "empty folder, or remove them", file=folder)


def revocation_entries(labels: list[tuple[LabelDoc, str | None, str | None]]) -> list[dict[str, Any]]:
    """The revocation list's entries: one for each version of each revoked label (``labels``: the registry's
    (label, revoked, reason))."""
    return [{"label_id": d["label_id"], "software_id": d["software"]["id"], "version": v, "wave": d["wave"],
             "revoked": r, "reason": why} for d, r, why in labels if r for v in d["versions"]]


def export_registry(registry: Registry, key: SigningKey, out: Path, now: dt.datetime | None = None,
                    retired: Collection[str] = ()) -> Exported:
    """Write the public export of every label in the registry into ``out``: the labels as they were signed, the
    revocation list and the open data signed by ``key``. ``retired``: key ids of the agency's former keys (a key
    rotated out still vouches for the labels it signed); a label signed by any other key is refused (the wrong
    agency key given, or another agency's registry)."""
    now = now or registry.now()  # as of every revocation dated before it (Registry.now)
    labels = registry.labels()
    foreign = sorted({d["issuer"]["key_id"] for d, _, _ in labels} - {key.kid} - set(retired))
    if foreign:
        raise InputError(f"the registry holds labels signed by key(s) {', '.join(k[:16] + '…' for k in foreign)}, "
                         f"not by the given agency key {key.kid[:16]}…"
                         + (f" nor a retired one given ({', '.join(k[:16] + '…' for k in sorted(retired))})"
                            if retired else "")
                         + ": give the agency's current key (--key), and each former key whose labels are still "
                         "in the registry (--retired-key FORMER.pub.pem)", where="--key")
    data = open_data(labels, key, now)
    problems = schema_problems("registry-export", data, "labelled.json")
    if problems:
        raise InputError(problems)
    _refuse_strays(out / "labels", {f"label-{doc['label_id']}.json" for doc, _, _ in labels} | {"revocations.json"})
    revocations = revocation_entries(labels)
    # two sets, each whole or not at all: labels/ built aside and swapped in, then the open data beside it; the
    # open data goes in place last, so every label file it names is there (never a new list of old labels)
    with output_set(out, OPEN_DATA) as temps, folder_set(out / "labels") as folder:
        for doc, _, _ in labels:
            write_atomic(folder / f"label-{doc['label_id']}.json", _dump(registry.label_signed(doc["label_id"])))
        write_atomic(folder / "revocations.json", _dump(sign_revocations(revocations, key, now=now)))
        write_atomic(temps["labelled.json"], _dump(key.sign_document(data)))
        write_atomic(temps["labelled.csv"], csv_text(data))
        write_atomic(temps["agency-key.pub.pem"], key.verify_key.pem())
    return Exported(len(labels), len(revocations), out)
