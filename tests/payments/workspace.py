"""A payment workspace: agency key, labels folder, events files, ledger, outputs; runs `usine pay run`; the ledger's
meaning (``ledger_state``). Shared by the payments tests and the ``ws`` fixture."""

from __future__ import annotations

import csv
import functools
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformity.catalog import Catalog, load_catalog
from conformity.infrastructure_keys import load_keys
from conformity.labels import parse_time
from conformity.payments import RunOptions, RunStats, run_payments
from conformity.payments.payees import load_payees, load_payer
from conformity.payments.store import recorded_events
from conformity.signing import KeyRing
from tests.payments.builders import (
    AGENCY,
    AS_OF,
    WAVE,
    infrastructure_keys,
    revocation_list,
    signed_label,
    write_jsonl,
    write_label,
)

REPO = Path(__file__).resolve().parents[2]
PAYER = REPO / "examples" / "payments" / "payer.toml"
PAYEES = REPO / "examples" / "payments" / "payees.toml"


@dataclass
class Outcome:
    """A finished `usine pay run`: exit code, output, and the files it wrote."""

    returncode: int
    stdout: str
    stderr: str
    out: Path

    def _json(self, name: str) -> Any:
        return json.loads((self.out / name).read_text(encoding="utf-8"))

    @property
    def summary(self) -> dict[str, Any]:
        return self._json("summary.json")

    @property
    def refusals(self) -> list[dict[str, Any]]:
        return self._json("refusals.json")["refusals"]

    def reasons(self, kind: str = "event") -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.refusals:
            if r["kind"] == kind:
                counts[r["reason"]] = counts.get(r["reason"], 0) + 1
        return counts

    def csv(self, name: str) -> list[dict[str, str]]:
        with open(self.out / name, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    @property
    def orders(self) -> list[dict[str, str]]:
        return self.csv("payment-orders.csv")

    def pain_files(self) -> list[Path]:
        return sorted(self.out.glob("pain001-*.xml"))


@dataclass
class Workspace:
    """Folders and files of one test's payment agency."""

    root: Path
    catalog: Path | None = None
    payees: Path | None = PAYEES
    runs: int = field(default=0)

    def __post_init__(self) -> None:
        self.labels = self.root / "labels"
        self.labels.mkdir(parents=True, exist_ok=True)
        self.ledger = self.root / "ledger.sqlite3"
        keydir = self.root / "keys"
        AGENCY.save(keydir / "agency.pem")
        self.key = keydir / "agency.pub.pem"
        self.infrastructure = keydir / "infrastructure-keys.json"
        self.infrastructure.write_text(json.dumps(infrastructure_keys()), encoding="utf-8")
        self.revoke()

    def revoke(self, *entries: dict[str, Any], **kw: Any) -> Path:
        """(Re)write LABELS/revocations.json: a signed list of these revocations (fresh unless kw say otherwise)."""
        path = self.labels / "revocations.json"
        path.write_text(json.dumps(revocation_list(entries, **kw)), encoding="utf-8")
        return path

    def label(self, key: Any = AGENCY, name: str | None = None, **fields: Any) -> dict[str, Any]:
        """Write a signed label file; what it says (the payload)."""
        label = signed_label(key, **fields)
        write_label(self.labels, label, name)
        return label.doc

    def events(self, name: str, events: list[Any], **seal: Any) -> Path:
        """An events file sealed by the infrastructure (``key=None``: not sealed; ``every``: segment size)."""
        return write_jsonl(self.root / "events" / name, events, **seal)

    def args(self, files: tuple[Path, ...], out: Path, as_of: str, wave: str) -> list[str]:
        args = ["pay", "run", "--wave", wave, "--labels", str(self.labels), "--ledger", str(self.ledger),
                "--out", str(out), "--agency-key", str(self.key), "--payer", str(PAYER), "--as-of", as_of,
                "--infrastructure-keys", str(self.infrastructure)]
        if self.payees is not None:
            args += ["--payees", str(self.payees)]
        for f in files:
            args += ["--events", str(f)]
        if self.catalog is not None:
            args = ["--catalog", str(self.catalog)] + args
        return args

    def run(self, *files: Path, as_of: str = AS_OF, wave: str = WAVE, extra: tuple[str, ...] = (),
            out: Path | None = None) -> Outcome:
        """`usine pay run` in a subprocess, as a user runs it."""
        self.runs += 1
        out = out or self.root / f"out{self.runs}"
        env = {**os.environ, "USINE_HOME": str(self.root / "home")}
        for name in ("USINE_AGENCY_PUBKEY", "USINE_INFRASTRUCTURE_KEYS"):
            env.pop(name, None)
        proc = subprocess.run([sys.executable, "-m", "conformity", *self.args(files, out, as_of, wave), *extra],
                              capture_output=True, text=True, env=env, cwd=self.root, timeout=300, check=False)
        return Outcome(proc.returncode, proc.stdout, proc.stderr, out)

    def run_inproc(self, *files: Path, as_of: str = AS_OF, wave: str = WAVE, ledger: Path | None = None,
                   out: Path | None = None, commit_every: int = 50_000) -> RunStats:
        """The same run through the Python API (for many quick runs)."""
        self.runs += 1
        options = RunOptions(wave=wave, labels=self.labels, events=files, ledger=ledger or self.ledger,
                             out=out or self.root / f"out{self.runs}", keys=KeyRing.from_paths([self.key]),
                             infrastructure=load_keys(self.infrastructure), payer=load_payer(PAYER), payees=load_payees(self.payees),
                             as_of=parse_time(as_of),
                             commit_every=commit_every)
        return run_payments(_catalog(self.catalog), options)


@functools.cache
def _catalog(root: Path | None) -> Catalog:
    return load_catalog(root)


def ledger_state(path: Path) -> dict[str, Any]:
    """The ledger's meaning, without ids, run numbers or timestamps: payments with proofs, installations."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        payments = sorted(
            (wave, sw, site, vendor, amount, currency, label, qualified,
             tuple(db.execute("SELECT source, id, time_us FROM payment_events WHERE payment=? ORDER BY position",
                              (pid,)).fetchall()))
            for pid, wave, sw, site, vendor, amount, currency, label, qualified in db.execute(
                "SELECT id, wave, software_id, site_id, vendor_id, amount_cents, currency, label_id, qualified_time "
                "FROM payments"))
        installations = sorted(db.execute(
            "SELECT wave, software_id, site_id, vendor_id, category, site_size, status, counted, best, "
            "q_time, q_source, q_id FROM installations").fetchall())
    finally:
        db.close()
    events = recorded_events(path)  # the ledger's columnar event files
    return {"payments": payments, "installations": installations, "events": events}
