"""`usine pay run` with inputs that read nothing or name nobody: a clear error, exit 2, no ledger, no outputs."""

from __future__ import annotations

from pathlib import Path

from tests.payments.builders import events_for, installation
from tests.payments.workspace import Outcome, Workspace

ACME = "FR7630004000031234567890143"  # acme's IBAN in the example payees file


def assert_refused_untouched(ws: Workspace, r: Outcome, *words: str) -> None:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and all(w in r.stderr for w in words), r.stderr
    assert not ws.ledger.exists() and not r.out.exists()


def test_an_events_folder_without_events_files_is_an_error(ws: Workspace, tmp_path: Path) -> None:
    """Before, a wrong or still empty folder ran over nothing: exit 0, an empty report, as if nothing was due."""
    ws.label()
    empty = tmp_path / "incoming"
    (empty / "sub.jsonl").mkdir(parents=True)  # a folder named like a file is no events file
    (empty / "notes.txt").write_text("x")
    r = ws.run(empty)
    assert_refused_untouched(ws, r, str(empty), "no events file (*.jsonl, *.parquet) in this folder")


def test_a_folder_with_events_files_is_read(ws: Workspace) -> None:
    ws.label()
    ws.events("a.jsonl", events_for(installation("750100011", "M"), 5))
    r = ws.run(ws.root / "events")
    assert r.returncode == 0, r.stderr
    assert r.summary["installations_paid"] == 1


def test_confirming_the_iban_of_a_vendor_not_in_the_payees_file_is_an_error(ws: Workspace) -> None:
    """Before, ``--confirm-iban acem=…`` (a typo) was accepted and did nothing: the agency believed it confirmed."""
    ws.label()
    events = ws.events("e.jsonl", events_for(installation("750100011", "M"), 5))
    r = ws.run(events, extra=("--confirm-iban", f"acme={ACME}", "--confirm-iban", f"acem={ACME}"))
    assert_refused_untouched(ws, r, "--confirm-iban", "'acem'", "not in the payees file")
    ok = ws.run(events, extra=("--confirm-iban", f"acme={ACME}"))  # a vendor of the file: no change to confirm, no harm
    assert ok.returncode == 0, ok.stderr
    assert ok.summary["installations_paid"] == 1 and ok.summary["orders_held"] == 0


def test_an_output_folder_in_the_labels_folder_is_an_error(ws: Workspace) -> None:
    """Before, the run wrote summary.json and refusals.json among the labels: the next run refused them as invalid
    labels (label-invalid, every run after)."""
    ws.label()
    events = ws.events("e.jsonl", events_for(installation("750100011", "M"), 5))
    for out in (ws.labels, ws.labels / "payments"):
        r = ws.run(events, out=out)
        assert r.returncode == 2 and "--out" in r.stderr and "labels folder" in r.stderr, r.stderr
        assert not ws.ledger.exists() and not (out / "summary.json").exists()


def test_an_output_folder_that_is_the_events_folder_is_an_error(ws: Workspace) -> None:
    """Before, payment-proofs.jsonl landed among the events: the next run over the folder read it as events."""
    ws.label()
    ws.events("e.jsonl", events_for(installation("750100011", "M"), 5))
    folder = ws.root / "events"
    r = ws.run(folder, out=folder)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert all(w in r.stderr for w in ("--out", "is the events folder", "payment-proofs.jsonl")), r.stderr
    assert not ws.ledger.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["e.jsonl", "e.jsonl.segments"]


def test_an_output_folder_that_holds_an_events_file_given_is_an_error(ws: Workspace) -> None:
    """Before, ``--events DATA/events/data-received.jsonl --out DATA/events`` was accepted: payment-proofs.jsonl
    landed beside the infrastructure's file, and a run over that folder (``--events DATA/events``) read it as
    events."""
    ws.label()
    events = ws.events("e.jsonl", events_for(installation("750100011", "M"), 5))
    r = ws.run(events, out=events.parent)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert all(w in r.stderr for w in ("--out", str(events), "payment-proofs.jsonl")), r.stderr
    assert not ws.ledger.exists()
    assert sorted(p.name for p in events.parent.iterdir()) == ["e.jsonl", "e.jsonl.segments"]


def test_a_file_named_twice_is_read_once(ws: Workspace) -> None:
    """Before, ``--events e.jsonl --events e.jsonl --events FOLDER`` read the file three times: 10 duplicate-event
    refusals of events the infrastructure sent once."""
    ws.label()
    events = ws.events("e.jsonl", events_for(installation("750100011", "M"), 5))
    link = ws.root / "link.jsonl"
    link.symlink_to(events)
    (ws.root / "link.jsonl.segments").symlink_to(events.with_name("e.jsonl.segments"))
    r = ws.run(events, events, ws.root / "events", link)
    assert r.returncode == 0, r.stderr
    assert r.summary["lines"] == 5 and r.summary["refusals"] == {} and r.summary["installations_paid"] == 1
    assert r.summary["events_files"] == [str(events)]


def test_a_confirmation_names_the_iban_checked_and_orders_to_no_other(ws: Workspace, tmp_path: Path) -> None:
    """Before, ``--confirm-iban acme`` confirmed whatever IBAN the payees file held when the run started: the agency
    checked the account its report named, and an insider who edited the file again before the confirmed run had the
    vendor's money ordered to a third account. The confirmation now says which account was checked; the run
    orders to it only if the payees file still gives it, else stops (exit 2) before the ledger is touched."""
    ws.label()
    old, checked, swapped_again = ("FR7630004000031234567890143", "FR7610011000201234567890188",
                                   "FR7630006000011234567890189")
    assert ws.run(ws.events("a.jsonl", events_for(installation("750100011", "M"), 5))).returncode == 0
    payees = tmp_path / "payees.toml"
    text = ws.payees.read_text(encoding="utf-8")  # type: ignore[union-attr]
    payees.write_text(text.replace(f'iban = "{old}"', f'iban = "{swapped_again}"'), encoding="utf-8")
    ws.payees = payees
    f2 = ws.events("b.jsonl", events_for(installation("690200022", "L"), 5))
    before = ws.ledger.read_bytes()
    for confirmation, says in (("acme", "--confirm-iban VENDOR=IBAN"),
                               (f"acme={checked}", f"gives vendor 'acme' the IBAN {swapped_again}, not {checked}")):
        r = ws.run(f2, extra=("--confirm-iban", confirmation))
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert ws.ledger.read_bytes() == before and not r.out.exists()
    payees.write_text(text.replace(f'iban = "{old}"', f'iban = "{checked}"'), encoding="utf-8")
    r = ws.run(f2, extra=("--confirm-iban", f"acme={checked[:4]} {checked[4:8]} {checked[8:].lower()}"))
    assert r.returncode == 0, r.stderr
    assert [(o["status"], o["iban"]) for o in r.orders] == [("ordered", checked)]
    assert r.summary["orders_held"] == 0


def test_a_labels_folder_that_is_a_loop_of_links_is_an_error(ws: Workspace, tmp_path: Path) -> None:
    """Before, ``--labels`` naming a loop of symbolic links (a → b → a) ended in a traceback, exit 1 (Path.resolve
    raises RuntimeError on a loop until Python 3.13). Found by tests/unit/test_cli_fuzz.py."""
    events = ws.events("e.jsonl", events_for(installation("750100011", "M"), 5))
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    ws.labels = tmp_path / "a"
    r = ws.run(events)
    assert_refused_untouched(ws, r, str(tmp_path / "a"))


def test_an_agency_key_folder_without_keys_is_an_error_naming_it(ws: Workspace, tmp_path: Path) -> None:
    """Before, ``--agency-key`` naming a folder without any *.pem (the wrong folder) ran with no trusted key: the
    error blamed the revocation list ("signed by an untrusted key … (trusted: none)") and named neither the option
    nor the folder. Found by tests/unit/test_cli_fuzz.py."""
    events = ws.events("e.jsonl", events_for(installation("750100011", "M"), 5))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "README.txt").write_text("the key is elsewhere")
    ws.key = tmp_path / "elsewhere"
    r = ws.run(events)
    assert_refused_untouched(ws, r, "--agency-key", str(tmp_path / "elsewhere"), "no public key")
