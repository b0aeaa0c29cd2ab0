"""The demo's second sector: the housing pack end to end, with the very same commands as health.

specifications and the wave diff of the housing waves → the agency's sandbox, now with the housing services
(geocoder, building registry, DPE observatory, housing data space, ProConnect-like provider) → the reference
HomeApp and a defective one run the diagnostician's tests → the agency verifies, reviews, decides → the
registry export carries the housing label → diagnosticians' firms file real DPEs, each a data-received event
of kind ``dpe`` → the payment agency pays each installation once (``usine pay run``, no code of its own for
housing) → the wave's progress page. Called by ``examples/demo.py`` with its helpers.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENDORS = ROOT / "examples" / "vendors" / "housing"
WAVE, NEXT_WAVE, CATEGORY = "2026-W3", "2027-W4", "DIAGNOSTICIAN"


def housing(out: Path, home: dict[str, str], outputs: list[tuple[str, Path]], *, usine: Callable[..., Any],
            step: Callable[[str], None], served: Callable[[Path, Path], Any],
            pending: Callable[..., tuple[str, list[str]]], reviewer: str, second_reviewer: str) -> None:
    """The housing sector's steps (numbered after health's)."""
    base = out / "housing"
    step("13. A second sector, housing: its specification and what changes between its waves")
    spec = base / "specifications" / f"{WAVE}-{CATEGORY}.html"
    usine("wave", "show", WAVE, "--category", CATEGORY, "--format", "html", "-o", str(spec))
    usine("wave", "diff", WAVE, NEXT_WAVE, "--category", CATEGORY)
    outputs.append((f"specification {WAVE} {CATEGORY}", spec))

    with served(base / "sandbox", out / "pki") as sandbox:
        step("14. Housing vendors run the diagnostician's tests against the agency's sandbox")
        ref_toml = VENDORS / "reference" / "vendor.toml"
        bad_toml = VENDORS / "defective" / "skip-nonce-check" / "vendor.toml"
        ref_out, bad_out = base / "runs" / "reference", base / "runs" / "skip-nonce-check"
        for toml, run_out, code in ((ref_toml, ref_out, 0), (bad_toml, bad_out, 1)):
            usine("run", "--wave", WAVE, "--category", CATEGORY, "--vendor", str(toml), "--out", str(run_out),
                  *sandbox.harness_args(), env={"USINE_SANDBOX_TOKEN": sandbox.harness_token(toml)}, expect=(code,),
                  quiet=True)
            summary = json.loads((run_out / "report.json").read_text())["summary"]
            print(f"  {run_out.name}: {summary['must_passed']}/{summary['must_automated']} automated MUST passed, "
                  f"failed {summary['failed_must']}")
        outputs += [("housing reference vendor: run report (HTML)", ref_out / "report.html"),
                    ("housing defective vendor: run report (HTML)", bad_out / "report.html")]

        step("15. The agency verifies the housing evidence, reviews it and labels HomeApp")
        trust = ["--trust", str(sandbox.trace_key)]
        decisions = base / "agency" / "decisions"
        usine("agency", "verify", str(ref_out / "bundle.zip"), *trust, env=home)
        usine("agency", "decide", str(ref_out / "bundle.zip"), *trust, "--out", str(decisions), expect=(4,), env=home)
        sub, awaiting = pending(decisions)
        usine("agency", "review", sub, *awaiting, "--accept", "--reviewer", reviewer,
              "--reason", "read: each document shows what the requirement asks", env=home, quiet=True,
              last_line=True)
        usine("agency", "review", sub, *awaiting, "--accept", "--reviewer", second_reviewer,  # four-eyes
              "--reason", "read again: confirmed", env=home, quiet=True, last_line=True)
        usine("agency", "decide", sub, "--out", str(decisions), env=home)
        usine("agency", "decide", str(bad_out / "bundle.zip"), *trust, "--out", str(decisions), expect=(1,), env=home)
        export = base / "agency" / "export"
        usine("agency", "registry", "export", "--out", str(export), env=home)
        outputs.append(("housing label (signed JSON)", next(decisions.glob("label-*.json"))))

        step("16. Diagnosticians' firms file DPEs with the observatory: data-received events of kind dpe")
        sys.path.insert(0, str(ROOT / "examples" / "sites"))
        from housing import Firm, simulate_firms

        homeapp = {"id": "usine-reference.homeapp", "name": "HomeApp", "version": "1.0.0",
                   "registration_id": "REG-HOME-0001"}
        firms = [Firm("41234567800019", "M", "Diagnostics Demo Lille"), Firm("52345678900021", "S", "DPE Demo Lyon")]
        simulate_firms(sandbox.url, sandbox.token, verify=str(sandbox.ca), vendor_id="usine-reference",
                       software=homeapp, wave=WAVE, category=CATEGORY, firms=firms, dpes=6)
        simulate_firms(sandbox.url, sandbox.token, verify=str(sandbox.ca), vendor_id="usine-reference",
                       software=homeapp, wave=WAVE, category=CATEGORY,
                       firms=[Firm("63456789000033", "L", "Réseau Demo Bordeaux")], dpes=2, seed=12)
        httpx.post(sandbox.url + "/admin/events/seal", verify=str(sandbox.ca),
                   headers={"Authorization": f"Bearer {sandbox.token}"}).raise_for_status()
        events = base / "sandbox" / "events" / "data-received.jsonl"
        kinds = sorted({json.loads(line)["data"]["kind"] for line in events.open()})
        print(f"{sum(1 for _ in events.open())} data-received events of kind(s) {', '.join(kinds)} from 3 installations "
              "(2 fully in use, 1 not yet)")
        infra_keys = base / "payments" / "infrastructure-keys.json"
        infra_keys.parent.mkdir(parents=True, exist_ok=True)
        infra_keys.write_text(httpx.get(sandbox.url + "/.well-known/usine-infrastructure-keys",
                                        verify=str(sandbox.ca)).text)

    step("17. The payment agency pays the diagnosticians' installations: the same usine pay run")
    pay_out, ledger = base / "payments", base / "payments" / "ledger.sqlite3"
    agency_pub = out / "usine-home" / "agency" / "agency-key.pub.pem"
    usine("pay", "run", "--wave", WAVE, "--labels", str(export / "labels"), "--agency-key", str(agency_pub),
          "--infrastructure-keys", str(infra_keys), "--payer", str(ROOT / "examples" / "payments" / "payer.toml"),
          "--payees", str(ROOT / "examples" / "payments" / "payees.toml"), "--events", str(events),
          "--ledger", str(ledger), "--out", str(pay_out))
    progress = base / "agency" / f"progress-{WAVE}.html"
    usine("agency", "progress", "--wave", WAVE, "--ledger", str(ledger), "--html", str(progress), env=home)
    outputs += [("housing payment orders (CSV)", pay_out / "payment-orders.csv"),
                ("housing wave progress page", progress)]
