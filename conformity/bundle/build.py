"""Write an evidence bundle: deterministic zip with a manifest of every file's SHA-256.

Members: ``manifest.json``, ``report.json``, ``junit.xml``, ``report.html``, one signed trace per scenario
(``traces/<scenario>.json``) and the vendor's evidence files (``evidence/<REQ-ID>/<name>``, listed by
requirement in the manifest's ``evidence``; see ``conformity.bundle.evidence``).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conformity import __version__
from conformity.files import atomic_output
from conformity.signing import canonical_json, sha256_hex

BUNDLE_FORMAT = "usine.bundle/2"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def bundle_files(report: dict[str, Any], traces: dict[str, dict[str, Any]], junit: bytes, html: str,
                 evidence: Mapping[str, bytes] | None = None) -> dict[str, bytes]:
    """The bundle's members (manifest excluded): report, JUnit, HTML, one signed trace (JWS) per scenario, evidence."""
    files = {
        "report.json": json.dumps(report, indent=2, ensure_ascii=False, sort_keys=True).encode(),
        "junit.xml": junit,
        "report.html": html.encode(),
    }
    for scenario, trace in sorted(traces.items()):
        files[f"traces/{scenario}.json"] = canonical_json(trace)
    files.update(evidence or {})
    return files


def manifest_for(report: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
    v = report["vendor"]
    return {
        "format": BUNDLE_FORMAT,
        "vendor": {"id": v["vendor_id"], "name": v["vendor_name"]},
        "software": {"id": v["software_id"], "name": v["software"], "version": v["version"],
                     "registration_id": v["registration_id"]},
        "wave": report["wave"],
        "category": report["category"],
        "harness": {"name": "usine", "version": __version__},
        "referentials": report["referentials"],
        "seed": report["seed"],
        "run_id": report["run_id"],
        "seed_source": report["seed_source"],
        "attempt": report["attempt"],
        "created": report["finished"],
        "evidence": report["evidence"],
        "files": {name: {"sha256": sha256_hex(data), "bytes": len(data)} for name, data in sorted(files.items())},
    }


def write_bundle(path: Path, report: dict[str, Any], traces: dict[str, dict[str, Any]], junit: bytes, html: str,
                 evidence: Mapping[str, bytes] | None = None) -> dict[str, Any]:
    """Write ``bundle.zip`` atomically; return its manifest."""
    files = bundle_files(report, traces, junit, html, evidence)
    manifest = manifest_for(report, files)
    with atomic_output(path, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in [("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True).encode()),
                           *sorted(files.items())]:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return manifest
