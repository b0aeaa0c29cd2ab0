"""A decision as the vendor and the agency read it: JSON (``usine.decision/2``, schema ``decision``) and text."""

from __future__ import annotations

from typing import Any

from conformity.agency.decision import DECISION_FORMAT, Decision, Facts

HEADLINE = {"labelled": "LABELLED", "pending": "PENDING", "refused": "REFUSED", "revoked": "REVOKED"}


def who_of_facts(f: Facts) -> dict[str, Any]:
    i = f.identity
    return {"vendor": {"id": i.vendor_id, "name": f.vendor_name},
            "software": {"id": i.software_id, "name": f.software_name, "version": i.version,
                         "registration_id": f.registration_id},
            "wave": i.wave, "category": i.category,
            "run": {"id": i.run_id, "seed": f.seed, "harness": f.harness, "started": f.run_started}}


def who_of_manifest(m: dict[str, Any] | None) -> dict[str, Any]:
    """What an unverified bundle claims (shown as such: nothing in it is proven)."""
    m = m or {}
    return {"vendor": m.get("vendor"), "software": m.get("software"), "wave": m.get("wave"),
            "category": m.get("category"), "run": None}


def decision_doc(d: Decision, who: dict[str, Any], *, recorded: bool, bundle: tuple[str, str],
                 label_id: str | None = None, already: str | None = None,
                 labelled_by: tuple[str, str] | None = None, verified: bool | None = None) -> dict[str, Any]:
    """The decision as JSON: outcome, what was tested, and every ground it rests on.

    ``recorded``: the run is in the registry (whether or not this step wrote anything); ``verified``
    defaults to whether the decision rests on verified facts.
    """
    doc: dict[str, Any] = {
        "format": DECISION_FORMAT, "outcome": d.outcome, "submission": d.submission, "recorded": recorded,
        "bundle": {"name": bundle[0], "sha256": bundle[1]},
        "verified": d.facts is not None if verified is None else verified, "decided": d.decided,
        **who,
        "reasons": [{"file": p.file, "where": p.where, "message": p.message} for p in d.reasons],
        "failed_requirements": [f.to_json() for f in d.failed],
        "rejected_reviews": [r.to_json() for r in d.rejected],
        "missing_evidence": [m.to_json() for m in d.missing_evidence],
        "awaiting_review": [a.to_json() for a in d.awaiting],
        "reviews": [r.to_json() for r in d.reviewed],
        "not_reviewed_should": list(d.not_reviewed),
        "waived": [w.to_json() for w in d.waived],
        "warnings": list(d.warnings),
    }
    if label_id:
        doc["label_id"] = label_id
    if already:
        doc["already_decided"] = already
    if d.revoked:
        doc["revocation"] = dict(d.revoked)
    if labelled_by:
        doc["labelled_by"] = {"label_id": labelled_by[0], "submission": labelled_by[1]}
    return doc


def _who_line(doc: dict[str, Any]) -> str:
    sw, vendor = doc.get("software") or {}, doc.get("vendor") or {}
    return (f"{sw.get('name', '?')} {sw.get('version', '?')} ({vendor.get('id', '?')}), wave {doc.get('wave') or '?'}, "
            f"category {doc.get('category') or '?'}")


def decision_text(doc: dict[str, Any]) -> str:
    """A decision as a vendor reads it: the outcome, then why, requirement by requirement."""
    run = doc.get("run") or {}
    recorded = ("in the registry" if doc["recorded"] else
                "not recorded: the evidence did not verify" if not doc["verified"] else "not recorded")
    lines = [f"{HEADLINE[doc['outcome']]}: {_who_line(doc)}"
             + (f" (already decided on {doc['already_decided']})" if doc.get("already_decided") else ""),
             f"submission {doc['submission']}" + (f", run {run['id']}" if run.get("id") else "")
             + f" ({recorded}); bundle {doc['bundle']['name']} sha256 {doc['bundle']['sha256']}", ""]
    if doc.get("label_id"):
        lines.append(f"label {doc['label_id']}")
    if doc.get("labelled_by"):
        by = doc["labelled_by"]
        lines.append(f"This version already holds label {by['label_id']} in this wave and category (from submission "
                     f"{by['submission']}): one label per tested version, none issued for this run.")
    if doc.get("revocation"):
        r = doc["revocation"]
        lines.append(f"Label {r['label_id']} of this version was revoked on {r['revoked']}: {r['reason']}")
        lines.append("No label is issued for this software version in this wave until the agency reinstates it "
                     "(usine agency registry reinstate LABEL --reason TEXT).")
    if doc["reasons"]:
        lines.append(f"The evidence does not verify ({len(doc['reasons'])} reason(s)):" if not doc["verified"]
                     else f"{len(doc['reasons'])} reason(s):")
        for r in doc["reasons"]:
            where = f" at {r['where']}" if r["where"] else ""
            lines.append(f"  - {r['file'] or 'bundle'}{where}: {r['message']}")
    if doc["failed_requirements"]:
        lines.append(f"{len(doc['failed_requirements'])} applicable automated MUST requirement(s) not passed:")
        for f in doc["failed_requirements"]:
            lines.append(f"  - {f['id']} [{f['level']}] {f['title']}: {f['verdict']} (checks: {', '.join(f['checks'])})")
            for finding in f["findings"]:
                detail = ""
                if "exchange" in finding:
                    detail += f" (exchange {finding['exchange']})"
                if finding.get("where"):
                    detail += f" at {finding['where']}"
                if "expected" in finding or "got" in finding:
                    detail += f"; expected {finding.get('expected')!r}, got {finding.get('got')!r}"
                lines.append(f"      · {finding['message']}{detail}")
    if doc["rejected_reviews"]:
        lines.append(f"{len(doc['rejected_reviews'])} MUST requirement(s) rejected on review:")
        for r in doc["rejected_reviews"]:
            lines.append(f"  - {r['id']} [{r['level']}, {r['method']}] {r['title']}: rejected by {r['reviewer']} on "
                         f"{r['reviewed']}: {r['reason']}")
    if doc["missing_evidence"]:
        lines.append(f"{len(doc['missing_evidence'])} document MUST requirement(s) without evidence in this run (never "
                     "reviewable: attach it with usine run --evidence REQ-ID=FILE and submit a new run):")
        for m in doc["missing_evidence"]:
            lines.append(f"  - {m['id']} {m['title']} (usine wave show says what to provide)")
    if doc["awaiting_review"] and doc["outcome"] == "pending":
        lines.append(f"{len(doc['awaiting_review'])} MUST requirement(s) await the agency's review "
                     f"(usine agency review {doc['submission']} REQ-ID --accept|--reject ...):")
        for a in doc["awaiting_review"]:
            attached = ", ".join(a["attached"]) or "no file (a witnessed manual check)"
            second = (f" — accepted by {a['accepted_by']}, awaits a second reviewer (four-eyes)"
                      if a.get("second_review") else "")
            lines.append(f"  - {a['id']} [{a['method']}] {a['title']}: {attached}{second}")
    elif doc["awaiting_review"]:
        lines.append(f"{len(doc['awaiting_review'])} other MUST requirement(s) not reviewed: "
                     + ", ".join(a["id"] for a in doc["awaiting_review"]))
    if doc["reviews"] and doc["outcome"] != "refused":
        lines.append(f"{len(doc['reviews'])} requirement(s) reviewed:")
        for r in doc["reviews"]:
            lines.append(f"  - {r['id']} [{r['level']}] {r['verdict']} by {r['reviewer']} on {r['reviewed']}")
    if doc["not_reviewed_should"]:
        lines.append(f"SHOULD requirement(s) not reviewed (they do not block a label): {', '.join(doc['not_reviewed_should'])}")
    for w in doc.get("waived", ()):
        lines.append(f"WAIVED by the agency: {w['id']} ({w['verdict']}) by {w['decider']} on {w['waived']}: {w['reason']}")
    for w in doc.get("warnings", ()):
        lines.append(f"note: {w}")
    return "\n".join(lines) + "\n"
