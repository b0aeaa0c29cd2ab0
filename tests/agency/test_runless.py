"""A category whose plan plays no scenario: no run is issued by the sandbox, so nothing it signed binds the bundle.

The harness still writes such a bundle (its document and manual requirements, attempt 0, the seed the caller's),
but its run id, seed source, attempt and time are the vendor's word alone: a patched harness may write attempt 1 and
``seed_source: sandbox``. The agency verifies none of it, so it refuses the bundle as evidence of a run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conformity.agency.verify import verify_bundle
from conformity.catalog import load_catalog
from conformity.checks.registry import registered_check_ids
from conformity.harness.evidence import collect, vendor_sources
from conformity.harness.outputs import run_to_end, write_outputs
from conformity.harness.plan import make_plan
from conformity.harness.runner import Runner
from conformity.harness.sandbox_access import start_local
from conformity.harness.vendor import load_vendor
from conformity.reporting.html import report_html
from conformity.reporting.junit import junit_xml
from conformity.signing import KeyRing
from tests.agency.helpers import edit_json, members, write_zip
from tests.harness.helpers import VENDORS

#: document requirements only (no check, so no scenario)
DOCUMENTS = ["PATIENTID-013", "PRACAUTH-016", "DOCSHARE-026", "MESSAGING-007", "DIRECTORY-007", "SECURITY-003"]


def test_a_bundle_of_a_category_without_scenarios_proves_no_run_and_is_refused(tmp_path: Path,
                                                                              repo_root: Path) -> None:
    root = tmp_path / "catalog"
    shutil.copytree(repo_root / "referentials", root / "referentials")
    shutil.copytree(repo_root / "waves", root / "waves")
    wave = root / "waves" / "2026-W1.toml"
    text = wave.read_text(encoding="utf-8")
    gp = '[categories.HOSPITAL]\nreferentials = { PATIENTID = "1.0", PRACAUTH = "1.0", DOCSHARE = "1.0", MESSAGING = "1.0", ' \
         'DIRECTORY = "1.0", SECURITY = "1.0" }\nrequirements = "applicable"'
    assert gp in text
    wave.write_text(text.replace(gp, gp.replace('"applicable"', json.dumps(DOCUMENTS))), encoding="utf-8")
    catalog = load_catalog(root, registered_checks=registered_check_ids())
    plan = make_plan(catalog, "2026-W1", "HOSPITAL")
    assert plan.scenarios == () and [r.id for r in plan.requirements] == DOCUMENTS
    vendor = load_vendor(VENDORS / "reference" / "vendor.toml")
    evidence, _ = collect(catalog, plan, vendor_sources(vendor.evidence))
    with start_local(tmp_path / "sandbox") as access:
        bundle = write_outputs(tmp_path / "out", run_to_end(Runner(plan, vendor, None, access, evidence)))["bundle.zip"]
    trust = KeyRing.from_paths([tmp_path / "sandbox" / "keys" / "trace-signing.pub.pem"])
    files = members(bundle)
    assert json.loads(files["manifest.json"])["attempt"] == 0  # as the harness writes it: no run issued

    def claim_a_run(doc: dict[str, object]) -> None:
        doc["seed_source"], doc["attempt"] = "sandbox", 1

    # the patched harness's bundle: a sandbox-drawn seed and a first attempt, its pages rendered again to match
    forged = edit_json(edit_json(files, "manifest.json", claim_a_run), "report.json", claim_a_run)
    report = json.loads(forged["report.json"])
    forged |= {"junit.xml": junit_xml(report), "report.html": report_html(report, {}).encode()}
    for candidate in (write_zip(tmp_path / "forged.zip", forged), bundle):
        v = verify_bundle(candidate, catalog, trust)
        assert not v.ok, candidate
        assert [(p.where, p.message.split(":")[0]) for p in v.reasons if p.file == "manifest.json"] == [
            ("run_id", "wave 2026-W1 category HOSPITAL plays no scenario")], v.reasons
