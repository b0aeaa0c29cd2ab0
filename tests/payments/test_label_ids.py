"""One label id, one label: copies count once, different documents under one id are refused, never picked by name."""

from __future__ import annotations

from pathlib import Path

from conformity.payments.labelbook import load_labelbook
from conformity.signing import KeyRing
from tests.payments.builders import AGENCY, events_for, installation, signed_label, write_label
from tests.payments.workspace import Workspace


def test_copies_of_one_label_count_once(ws: Workspace) -> None:
    """Before, the export's file and a copy (or the feed's mirror) were two valid labels: labels_valid 2."""
    label = signed_label()
    write_label(ws.labels, label)
    write_label(ws.labels / "mirror", label, name=f"label-{label.doc['label_id']}.json")
    r = ws.run(ws.events("e.jsonl", events_for(installation("750100011", "M"), 5)))
    assert r.returncode == 0, r.stderr
    assert r.summary["installations_paid"] == 1 and r.reasons("label") == {}
    [order] = r.orders
    assert order["label_id"] == label.doc["label_id"]
    loaded = load_labelbook(ws.labels, KeyRing.from_paths([ws.key]))
    assert [lbl.id for lbl in loaded.labels()] == [label.doc["label_id"]] and loaded.files == 2


def test_two_documents_under_one_label_id_are_both_refused(ws: Workspace, tmp_path: Path) -> None:
    """Before, both verified and the first file read (by name) was recorded in the ledger as the label a payment
    names, whichever one covered the events: here the second, which names another software, paid its events."""
    first = signed_label(label_id="lbl_AAAAAAAAAAAA")
    other = signed_label(AGENCY, label_id="lbl_AAAAAAAAAAAA", software="other-ehr", versions=("9.9",))
    write_label(ws.labels, first, name="a.json")
    write_label(ws.labels, other, name="b.json")
    loaded = load_labelbook(ws.labels, KeyRing.from_paths([ws.key]))
    assert list(loaded.labels()) == []
    assert sorted(Path(p.file).name for p in loaded.refused) == ["a.json", "b.json"]
    assert all("given by 2 label files that say different things" in p.message for p in loaded.refused)
    events = events_for(installation("750100011", "M"), 5) + events_for(
        installation("750100022", "M", software="other-ehr", version="9.9"), 5, first=100)
    r = ws.run(ws.events("e.jsonl", events))
    assert r.returncode == 0, r.stderr
    assert r.summary["installations_paid"] == 0
    assert r.reasons("label") == {"label-invalid": 2} and r.reasons() == {"label-invalid": 10}
