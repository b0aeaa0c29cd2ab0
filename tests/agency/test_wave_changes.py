"""A run is evidence against the specification it was verified under: when the catalog the agency decides with
states the wave's specification otherwise (a requirement promoted to MUST, one no longer applied, a referential
pinned at another version), a run recorded before and still awaiting reviews gets no label for a specification
it was never judged against."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conformity.agency.registry import Registry
from conformity.agency.submit import decide_bundle, decide_submission
from conformity.catalog import Catalog
from conformity.catalog.schema import schema_problems
from conformity.signing import KeyRing
from tests.agency.helpers import CATEGORY, DECIDED, WAVE, Runs, accept_all


def _changed(catalog: Catalog, **fields: object) -> Catalog:
    wave = catalog.wave(WAVE)
    wc = replace(wave.categories[CATEGORY], **fields)  # type: ignore[arg-type]  # a field of WaveCategory
    return replace(catalog, waves={**catalog.waves, WAVE: replace(wave, categories={**wave.categories, CATEGORY: wc})})


@pytest.mark.parametrize("change", ["promoted", "excluded", "repinned"])
def test_a_pending_run_gets_no_label_once_its_wave_specification_changed(change: str, runs: Runs, catalog: Catalog,
                                                                         trust: KeyRing, tmp_path: Path) -> None:
    registry, key, out = tmp_path / "r.sqlite3", tmp_path / "agency.pem", tmp_path / "out"
    first = decide_bundle(runs.reference, catalog, trust, registry, key, out, now=DECIDED)
    assert first.doc["outcome"] == "pending", first.doc
    sub = first.doc["submission"]
    accept_all(registry, sub, when=DECIDED)
    with Registry(registry) as reg:
        rows = reg.get(sub).rows()
    wc = catalog.wave(WAVE).categories[CATEGORY]
    if change == "promoted":  # a SHOULD the run was never held to is now a MUST of the wave
        rid = next(r.id for r in rows if r.level == "SHOULD")
        now, words = _changed(catalog, promote=wc.promote | {rid}), [rid, "MUST", "SHOULD"]
    elif change == "excluded":  # the wave no longer applies a requirement the run was judged on
        rid = next(r.id for r in rows if r.method == "automated" and r.level == "MUST")
        now, words = _changed(catalog, exclude={**wc.exclude, rid: "withdrawn"}), [rid, "no longer"]
    else:  # the wave pins another version of a referential than the one the run was made against
        now, words = _changed(catalog, referentials={**wc.referentials, "SECURITY": "1.1"}), ["SECURITY", "1.1", "1.0"]
    done = decide_submission(sub, now, registry, key, out, now=DECIDED)
    assert not done.labelled and done.doc["outcome"] == "refused", done.doc
    assert schema_problems("decision", done.doc, "decision") == []
    messages = " ".join(r["message"] for r in done.doc["reasons"])
    assert "specification" in messages and all(w in messages for w in words), messages
    assert not list(out.glob("label-*.json"))
    with Registry(registry) as reg:
        assert reg.get(sub).label_id is None and reg.labels() == []
    # the catalog the run was verified under still labels it (nothing else kept it from its label)
    again = tmp_path / "again.sqlite3"
    decide_bundle(runs.reference, catalog, trust, again, key, tmp_path / "out2", now=DECIDED)
    accept_all(again, sub, when=DECIDED)
    assert decide_submission(sub, catalog, again, key, tmp_path / "out2", now=DECIDED).labelled
