"""Helpers shared by the agency tests: the agency key, the test runs' record, bundle surgery, the CLI, labels."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from joserfc.util import urlsafe_b64encode

from conformity.agency.registry import Registry
from conformity.agency.submit import Outcome, decide_bundle, decide_submission
from conformity.bundle.evidence import Attached
from conformity.catalog import Catalog
from conformity.cli import cli
from conformity.harness.evidence import collect, vendor_sources
from conformity.harness.outputs import run_to_end, write_outputs
from conformity.harness.plan import make_plan
from conformity.harness.runner import Runner
from conformity.harness.sandbox_access import SandboxAccess, start_local
from conformity.harness.vendor import load_vendor
from conformity.signing import KeyRing, SigningKey, canonical_json, sha256_hex, unverified_payload
from tests.harness.helpers import VENDORS

WAVE, CATEGORY = "2026-W1", "HOSPITAL"
DEFECT, DEFECT_FAILS = "skip-nonce-check", "PRACAUTH-004"
SUBSET = ("PRACAUTH-001", "PRACAUTH-004")
#: a fixed decision time inside the wave (labels issued then), so dates in tests do not depend on today
DECIDED = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
AGENCY = SigningKey.from_seed(b"usine tests: the labelling agency (agency tests)")


@dataclass(frozen=True)
class Runs:
    """The bundles of the session and the sandbox key that signed their traces."""

    reference: Path
    defective: Path
    other_seed: Path
    rerun: Path          # the reference again, its seed given (the reference's), another run
    trust: Path          # the sandbox's public key (what the agency trusts)
    sandbox_key: Path    # its private key (only to build hostile inputs)
    root: Path           # the session's folder (the sandbox's data is in root / "sandbox")


def _run(access: SandboxAccess, catalog: Catalog, out: Path, vendor: str, only: tuple[str, ...], seed: int | None,
         evidence: Attached | None = None) -> Path:
    """A real run; its evidence is the vendor.toml's [evidence] table unless ``evidence`` is given."""
    manifest = VENDORS / "reference" / "vendor.toml" if vendor == "reference" else VENDORS / "defective" / vendor / "vendor.toml"
    v = load_vendor(manifest)
    plan = make_plan(catalog, WAVE, CATEGORY, only)
    if evidence is None:
        evidence, _ = collect(catalog, plan, vendor_sources(v.evidence))
    result = run_to_end(Runner(plan, v, seed, access, evidence))
    return write_outputs(out, result)["bundle.zip"]


def extra_run(runs: Runs, catalog: Catalog, name: str, vendor: str = "reference", only: tuple[str, ...] = (),
              seed: int | None = None, evidence: Attached | None = None) -> Path:
    """Another run against the session's sandbox data (the same trusted key), made when a test needs it."""
    with start_local(runs.root / "sandbox") as access:
        return _run(access, catalog, runs.root / name, vendor, only, seed, evidence)


# ---------------------------------------------------------------------------------------------- bundles
def members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def write_zip(path: Path, files: dict[str, bytes], *, fix_manifest: bool = True) -> Path:
    """A bundle from members; with ``fix_manifest``, the manifest lists every other member's hash and size."""
    files = dict(files)
    if fix_manifest:
        manifest = json.loads(files["manifest.json"])
        manifest["files"] = {n: {"sha256": sha256_hex(d), "bytes": len(d)} for n, d in sorted(files.items())
                             if n != "manifest.json"}
        files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def edit_json(files: dict[str, bytes], name: str, edit: Callable[[Any], None]) -> dict[str, bytes]:
    doc = json.loads(files[name])
    edit(doc)
    return {**files, name: json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode()}


def edit_signed(files: dict[str, bytes], name: str, edit: Callable[[Any], None]) -> dict[str, bytes]:
    """Edit the payload of a signed member (a JWS) and keep its signature: what a forger would try."""
    signed = json.loads(files[name])
    doc = unverified_payload(signed)
    edit(doc)
    forged = {**signed, "payload": urlsafe_b64encode(canonical_json(doc)).decode()}
    return {**files, name: json.dumps(forged).encode()}


def trace_payloads(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """Scenario → trace (the payload of each signed trace of a bundle)."""
    return {n[len("traces/"):-5]: unverified_payload(json.loads(d)) for n, d in files.items() if n.startswith("traces/")}


def raw_zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]], *, stored: bool = False,
            comment: bytes = b"") -> Path:
    """A zip of exactly these members, in this order (deflated unless ``stored``), with an archive comment."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
        zf.comment = comment
    return path


def usine(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def accept_all(registry: Path | str, submission: str, *, when: dt.datetime = DECIDED, reviewer: str = "A. Reviewer",
               second: str | None = "B. Second", except_: tuple[str, ...] = ()) -> list[str]:
    """Accept every document/manual requirement of a pending submission that can be reviewed, by ``reviewer``
    then (four-eyes) by ``second`` (None: no second review); their ids."""
    with Registry(registry) as reg:
        s = reg.get(submission)
        evidenced = {e.requirement for e in reg.evidence(s.id)}
        todo = [r.id for r in s.rows() if r.method in ("document", "manual") and r.id not in except_
                and (r.id in evidenced or r.method == "manual")]
        reg.review(s.id, todo, "accepted", "evidence read: it shows what the requirement asks", reviewer, when)
        if second is not None:
            reg.review(s.id, todo, "accepted", "read again: confirmed", second, when)
    return todo


def label_bundle(bundle: Path, catalog: Catalog, trust: KeyRing, registry: Path, key: Path, out: Path,
                 now: dt.datetime = DECIDED) -> Outcome:
    """Decide a bundle (pending: reviews awaited), accept its evidence, decide again: the label."""
    first = decide_bundle(bundle, catalog, trust, registry, key, out, now=now)
    assert first.doc["outcome"] == "pending", first.doc
    accept_all(registry, first.doc["submission"], when=now)
    done = decide_submission(first.doc["submission"], catalog, registry, key, out, now=now)
    assert done.labelled, done.doc
    return done


def snapshot(db_path: Path) -> list[str]:
    """Every row of every table, as SQL: equal snapshots mean an unchanged registry."""
    if not db_path.exists():
        return []
    db = sqlite3.connect(db_path)
    try:
        return list(db.iterdump())
    finally:
        db.close()
