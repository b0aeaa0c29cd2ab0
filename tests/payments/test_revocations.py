"""Attack 4 (payment side): a missing, stale or misplaced revocation list never lets a revoked label be paid.

The run needs exactly one revocation list (LABELS/revocations.json, or --revocations FILE), verified and
fresh at the run's time (the later of --as-of and now); otherwise it does not start: exit 4 (missing,
stale) or 2 (another list under --labels), the ledger untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.payments.builders import T0, events_for, installation, revocation, revocation_list
from tests.payments.workspace import Workspace, ledger_state

DAY = dt.timedelta(days=1)
SITE = installation("750100011", "M")
NOW = dt.datetime.now(dt.UTC)


def iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def runs(ledger: Path) -> int:
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM runs").fetchone()[0])
    finally:
        db.close()


def paid_then(ws: Workspace) -> tuple[Path, dict, int]:
    """A first, normal run (one installation paid); what the ledger holds after it."""
    ws.label()
    other = installation("690200022", "M")
    f = ws.events("e.jsonl", events_for(other, 5) + events_for(SITE, 5, first=10))
    r = ws.run(f)
    assert r.summary["installations_paid"] == 2, r.stderr
    return ws.events("more.jsonl", events_for(installation("130300033", "S"), 5, first=20)), \
        ledger_state(ws.ledger), runs(ws.ledger)


def relied_on_then_replayed(ws: Workspace, label_id: str, older: dict, now: dt.datetime, refusal: str) -> Path:
    """A run relies on a list revoking ``label_id`` (issued at ``now``); ``older`` replayed after it refuses to
    start with ``refusal``, the ledger untouched. The events file, for the test to run again."""
    ws.revoke(revocation(label_id, T0 - DAY), now=now)
    f = ws.events("e.jsonl", events_for(SITE, 5))
    r = ws.run(f)
    assert r.returncode == 0 and r.reasons() == {"label-revoked": 5} and r.summary["installations_paid"] == 0
    before, n = ledger_state(ws.ledger), runs(ws.ledger)
    (ws.labels / "revocations.json").write_text(json.dumps(older), encoding="utf-8")
    r = ws.run(f)
    assert r.returncode == 4 and "Traceback" not in r.stderr, r.stderr
    assert refusal in r.stderr, r.stderr
    assert ledger_state(ws.ledger) == before and runs(ws.ledger) == n and not r.out.exists()
    return f


def test_no_revocation_list_refuses_to_start(ws: Workspace) -> None:
    more, before, n = paid_then(ws)
    (ws.labels / "revocations.json").unlink()
    r = ws.run(more)
    assert r.returncode == 4 and "no revocation list" in r.stderr and "Traceback" not in r.stderr
    assert "revoked labels would be paid" in r.stderr
    assert ledger_state(ws.ledger) == before and runs(ws.ledger) == n and not r.out.exists()


def test_a_stale_list_refuses_to_start(ws: Workspace) -> None:
    """The issue's attack: a list validly signed, but before the revocation, and past its next_update."""
    more, before, n = paid_then(ws)
    ws.revoke(now=NOW - 3 * DAY, validity=DAY)
    r = ws.run(more)
    assert r.returncode == 4 and "is stale" in r.stderr and iso(NOW - 2 * DAY) in r.stderr
    assert ledger_state(ws.ledger) == before and runs(ws.ledger) == n


def test_a_list_fresh_now_but_not_at_the_runs_as_of_time(ws: Workspace) -> None:
    ws.label()
    ws.revoke(now=NOW, validity=DAY)
    r = ws.run(ws.events("e.jsonl", events_for(SITE, 5)), as_of=iso(NOW + 2 * DAY))
    assert r.returncode == 4 and "is stale" in r.stderr and not ws.ledger.exists()


def test_a_list_fresh_at_a_past_as_of_but_stale_now(ws: Workspace) -> None:
    ws.label()
    ws.revoke(now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC), validity=60 * DAY)  # fresh on 2026-07-01 only
    r = ws.run(ws.events("e.jsonl", events_for(SITE, 5)), as_of="2026-07-01T00:00:00Z")
    assert r.returncode == 4 and "is stale" in r.stderr and not ws.ledger.exists()


def test_the_fresh_list_refuses_what_the_stale_one_would_have_paid(ws: Workspace) -> None:
    doc = ws.label()
    ws.revoke(revocation(doc["label_id"], T0 + 2 * DAY + dt.timedelta(hours=1)))
    r = ws.run(ws.events("e.jsonl", events_for(SITE, 6)))
    assert r.returncode == 0 and r.reasons() == {"label-revoked": 3} and r.summary["installations_paid"] == 0
    assert r.summary["revocation_list"]["revocations"] == 1


def test_a_revocation_applies_to_the_version_whatever_label_covers_it(ws: Workspace) -> None:
    """A second label for the same software version and wave (e.g. issued to a repackaged bundle) is revoked too."""
    first = ws.label()
    ws.label(label_id="lbl_repackaged0001")
    ws.revoke(revocation(first["label_id"], T0 - DAY))
    r = ws.run(ws.events("e.jsonl", events_for(SITE, 5) + events_for(installation("1", "S", version="3.3"), 1)))
    assert r.reasons() == {"label-revoked": 5, "version-not-covered": 1} and r.summary["installations_paid"] == 0


def test_an_older_list_after_a_newer_one_refuses_to_start(ws: Workspace) -> None:
    """The rollback: a list validly signed and still fresh, but issued before the one the ledger's last run relied
    on (the revocation is not in it). It would pay, on this run, what the newer list refused on the last."""
    doc = ws.label()
    older = revocation_list(now=NOW - DAY)  # fresh (a week's validity), issued yesterday, before the revocation
    f = relied_on_then_replayed(ws, doc["label_id"], older, NOW,
                                f"issued {iso(NOW - DAY)}, before the list of {iso(NOW)} that run 1")
    ws.revoke(revocation(doc["label_id"], T0 - DAY), now=NOW)  # the same list again (or a newer one): runs
    assert ws.run(f).returncode == 0


def test_a_label_issued_after_the_revocation_once_reinstated_is_paid(ws: Workspace) -> None:
    """The agency revoked the version, then reinstated it and issued a new label: events after the new label's
    issue are paid under it; those between the revocation and the new label are refused; the old label stays
    revoked (it covers nothing after its revocation)."""
    first = ws.label()
    ws.label(label_id="lbl_reinstated0001", issued="2026-06-03T21:00:00Z")
    ws.revoke(revocation(first["label_id"], T0 + DAY + dt.timedelta(hours=12)))
    r = ws.run(ws.events("e.jsonl", events_for(SITE, 6)))  # one a day from T0 09:00
    assert r.returncode == 0, r.stderr
    assert r.reasons() == {"label-revoked": 1}, r.refusals  # 2026-06-03T09:00: revoked, the new label not yet issued
    assert r.summary["events_counted"] == 5
    # the same new label issued before the revocation (a second label, e.g. another category): revoked with it
    other = Workspace(ws.root / "before")
    other.label()
    other.label(label_id="lbl_earlier000001", issued="2026-06-01T00:00:00Z")
    other.revoke(revocation(first["label_id"], T0 + DAY + dt.timedelta(hours=12)))
    r = other.run(other.events("e.jsonl", events_for(SITE, 6)))
    assert r.reasons() == {"label-revoked": 4} and r.summary["events_counted"] == 2


def test_a_revocation_list_in_a_subfolder_is_an_error(ws: Workspace) -> None:
    more, before, n = paid_then(ws)
    doc = json.loads((ws.labels / "revocations.json").read_text())
    (ws.labels / "old").mkdir()
    (ws.labels / "old" / "revocations.json").write_text(json.dumps(doc))
    r = ws.run(more)
    assert r.returncode == 2 and "another revocation list" in r.stderr and "old/revocations.json" in r.stderr
    assert ledger_state(ws.ledger) == before and runs(ws.ledger) == n


def test_a_revocation_list_under_another_name_is_an_error_not_a_label(ws: Workspace) -> None:
    ws.label()
    (ws.labels / "revocations-2026-11.json").write_text(json.dumps(revocation_list(now=NOW - 30 * DAY)))
    r = ws.run(ws.events("e.jsonl", events_for(SITE, 5)))
    assert r.returncode == 2 and "a revocation list among the labels" in r.stderr and not ws.ledger.exists()


def test_revocations_option(ws: Workspace, tmp_path: Path) -> None:
    ws.label()
    elsewhere = tmp_path / "lists" / "current.json"
    elsewhere.parent.mkdir()
    (ws.labels / "revocations.json").rename(elsewhere)
    f = ws.events("e.jsonl", events_for(SITE, 5))
    r = ws.run(f, extra=("--revocations", str(elsewhere)))
    assert r.returncode == 0 and r.summary["installations_paid"] == 1, r.stderr
    assert r.summary["revocation_list"]["file"] == str(elsewhere)
    ws.revoke()  # now LABELS/revocations.json too: two lists, which one?
    r = ws.run(f, extra=("--revocations", str(elsewhere)))
    assert r.returncode == 2 and "another revocation list" in r.stderr
    (ws.labels / "revocations.json").unlink()
    r = ws.run(f, extra=("--revocations", str(tmp_path / "missing.json")))
    assert r.returncode == 4 and "no revocation list at" in r.stderr


def test_help_documents_the_exit_codes() -> None:
    out = subprocess.run([sys.executable, "-m", "conformity", "pay", "run", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "4  no revocation list, or a stale one" in out and "an earlier run of this ledger" in out and "--revocations" in out
    assert "--infrastructure-keys" in out and "3  the ledger is in use" in out
    # --agency-key is checked by the command (it may come from $USINE_AGENCY_PUBKEY): its help says it is required
    agency_key = " ".join(out.split("--agency-key PATH", 1)[1].split("--payer", 1)[0].split())
    assert "Required" in agency_key, agency_key


def test_an_older_list_of_the_same_second_after_a_newer_one_refuses_to_start(ws: Workspace) -> None:
    """The rollback within one second: ``issued`` has whole seconds, so a list the agency exported just before a
    revocation and the one just after it may say the same time. Replayed after the newer one, the older list was
    not "issued before" it and paid what the newer one revoked. The agency's lists only grow: one with fewer entries
    than the list relied on is older, and refused (exit 4)."""
    doc = ws.label()
    same_second = NOW.replace(microsecond=0)
    older = revocation_list(now=same_second)  # exported a moment before the revocation, in the same second
    f = relied_on_then_replayed(ws, doc["label_id"], older, same_second,
                                "revokes 0 label version(s), fewer than the 1 of the list that run 1")
    ws.revoke(revocation(doc["label_id"], T0 - DAY), now=same_second)  # the very list relied on, signed again: runs
    r = ws.run(f)
    assert r.returncode == 0 and r.summary["installations_paid"] == 0, r.stderr


def test_the_newer_list_of_the_same_second_is_relied_on_after_the_older(ws: Workspace) -> None:
    """The other order within one second: a run relied on the list exported just before a revocation; the list of
    the same second that holds the revocation too is the newer one (the agency's lists only grow) and is relied on,
    not refused as unordered."""
    doc = ws.label()
    same_second = NOW.replace(microsecond=0)
    ws.revoke(now=same_second)  # exported a moment before the revocation
    f = ws.events("e.jsonl", events_for(SITE, 5))
    more = ws.events("more.jsonl", events_for(installation("130300033", "S"), 5, first=20))
    r = ws.run(f)
    assert r.returncode == 0 and r.summary["installations_paid"] == 1, r.stderr
    ws.revoke(revocation(doc["label_id"], T0 - DAY), now=same_second)
    r = ws.run(more)
    assert r.returncode == 0, r.stderr
    assert r.reasons() == {"label-revoked": 5} and r.summary["installations_paid"] == 0


def test_a_later_list_with_fewer_entries_refuses_to_start(ws: Workspace) -> None:
    """A list issued later but revoking less than the one relied on (a registry restored from a backup that lost a
    revocation, or a list built by hand and signed by mistake) would pay what the other revoked: the agency's lists
    only grow, so it is refused (exit 4), the ledger untouched."""
    doc = ws.label()
    ws.revoke(revocation(doc["label_id"], T0 - DAY), now=NOW - DAY)
    f = ws.events("e.jsonl", events_for(SITE, 5))
    r = ws.run(f)
    assert r.returncode == 0 and r.reasons() == {"label-revoked": 5}, r.stderr
    before, n = ledger_state(ws.ledger), runs(ws.ledger)
    ws.revoke(now=NOW)  # later, and empty
    r = ws.run(f)
    assert r.returncode == 4 and "Traceback" not in r.stderr, r.stderr
    assert "revokes 0 label version(s), fewer than the 1 of the list that run 1 of this ledger relied on" in r.stderr
    assert ledger_state(ws.ledger) == before and runs(ws.ledger) == n and not r.out.exists()


def test_a_list_of_the_same_second_with_as_many_other_entries_cannot_be_ordered(tmp_path: Path) -> None:
    """Two lists of one second, as many entries, other ones (two registries diverged: no agency issues both): which
    is newer cannot be told, so the one not relied on is refused; the very list relied on, signed again, is not."""
    from conformity.errors import RevocationsNotFresh
    from conformity.labels import verify_revocations
    from conformity.payments.labelbook import ReliedOn, check_not_older, revocations_digest
    from conformity.signing import KeyRing
    from tests.payments.builders import AGENCY

    keys = KeyRing([AGENCY.verify_key])
    second = NOW.replace(microsecond=0)
    relied = verify_revocations(revocation_list([revocation("lbl_aaaaaaaa", T0)], now=second), keys)
    other = verify_revocations(revocation_list([revocation("lbl_bbbbbbbb", T0)], now=second), keys)
    on_record = [ReliedOn(1, iso(second), revocations_digest(relied), 1)]  # as a run before entries were recorded
    check_not_older(relied, tmp_path / "revocations.json", on_record)
    with pytest.raises(RevocationsNotFresh, match="as the list that run 1 of this ledger relied on, with as many"):
        check_not_older(other, tmp_path / "revocations.json", on_record)


def _two_more_labels(ws: Workspace) -> tuple[dict, dict, dict]:
    """Label X (the workspace's software, the one the events are of) and labels Y and Z of two other software."""
    x = ws.label()
    y = ws.label(vendor="medilab", software="medilab-lab", category="LAB", versions=("1.0",))
    z = ws.label(vendor="medilab", software="medilab-rad", category="LAB", versions=("2.0",))
    return x, y, z


@pytest.mark.parametrize("kept", [1, 2], ids=["as-many-entries", "more-entries"])
def test_a_later_list_that_lost_a_revocation_refuses_to_start(ws: Workspace, kept: int) -> None:
    """A registry restored from a backup taken before X's revocation, then given other revocations, exports a list
    issued later, with as many entries as the one relied on or more, that lacks X's: relied on, it judged again the
    events refused ``label-revoked`` and paid X. The agency's lists only grow (a revocation is never undone): a list
    that lacks a revocation a run relied on is refused (exit 4), the ledger untouched, whatever its date and size."""
    x, y, z = _two_more_labels(ws)
    ws.revoke(revocation(x["label_id"], T0 - 10 * DAY), now=NOW - dt.timedelta(hours=1))
    f = ws.events("e.jsonl", events_for(SITE, 6))
    r = ws.run(f)
    assert r.returncode == 0 and r.reasons() == {"label-revoked": 6} and r.summary["installations_paid"] == 0
    before, n = ledger_state(ws.ledger), runs(ws.ledger)
    others = [revocation(y["label_id"], NOW - dt.timedelta(minutes=5), software="medilab-lab", version="1.0"),
              revocation(z["label_id"], NOW - dt.timedelta(minutes=4), software="medilab-rad", version="2.0")]
    ws.revoke(*others[:kept], now=NOW)  # later, as many entries or more, X's lost
    r = ws.run(f)
    assert r.returncode == 4 and "Traceback" not in r.stderr, r.stderr
    assert f"does not hold the revocation of label {x['label_id']} (acme-ehr 3.2, wave" in r.stderr
    assert "that the list run 1 of this ledger relied on held" in r.stderr
    assert ledger_state(ws.ledger) == before and runs(ws.ledger) == n and not r.out.exists()
    ws.revoke(revocation(x["label_id"], T0 - 10 * DAY), *others[:kept], now=NOW)  # the agency's current list
    r = ws.run(f)
    assert r.returncode == 0 and r.reasons() == {"label-revoked": 6} and r.summary["installations_paid"] == 0


def test_a_revocation_reworded_is_the_same_revocation(ws: Workspace) -> None:
    """What identifies a revocation is the label, the version, the wave and its time; its reason is wording: a later
    list that words it otherwise still holds it, and is relied on."""
    x, y, _ = _two_more_labels(ws)
    ws.revoke(revocation(x["label_id"], T0 - 10 * DAY), now=NOW - dt.timedelta(hours=1))
    f = ws.events("e.jsonl", events_for(SITE, 6))
    assert ws.run(f).returncode == 0
    ws.revoke(revocation(x["label_id"], T0 - 10 * DAY, reason="security flaw (CVE recorded)"),
              revocation(y["label_id"], NOW - dt.timedelta(minutes=5), software="medilab-lab", version="1.0"), now=NOW)
    r = ws.run(f)
    assert r.returncode == 0 and r.reasons() == {"label-revoked": 6}, r.stderr


def test_the_revocations_a_run_relied_on_are_recorded_in_the_ledger(ws: Workspace) -> None:
    """Each run records every revocation of its list (label, software, version, wave, time in UTC), sorted: what the
    next run's list must hold."""
    x, y, _ = _two_more_labels(ws)
    ws.revoke(revocation(y["label_id"], "2026-10-02T10:00:00+02:00", software="medilab-lab", version="1.0"),
              revocation(x["label_id"], T0 - 10 * DAY), now=NOW - dt.timedelta(hours=1))
    assert ws.run(ws.events("e.jsonl", events_for(SITE, 2))).returncode == 0
    db = sqlite3.connect(f"file:{ws.ledger}?mode=ro", uri=True)
    try:
        inputs = json.loads(db.execute("SELECT inputs FROM runs").fetchone()[0])
    finally:
        db.close()
    assert inputs["revocations"]["entries"] == sorted([
        [x["label_id"], "acme-ehr", "3.2", x["wave"], (T0 - 10 * DAY).astimezone(dt.UTC).isoformat()],
        [y["label_id"], "medilab-lab", "1.0", y["wave"], "2026-10-02T08:00:00+00:00"]])


def test_a_ledger_whose_recorded_revocations_were_edited_is_refused_clearly(ws: Workspace) -> None:
    """The recorded revocations are the ledger's own: edited into something else, the run says which run and stops
    (exit 1, no traceback), before anything is recorded."""
    x, _, _ = _two_more_labels(ws)
    ws.revoke(revocation(x["label_id"], T0 - 10 * DAY), now=NOW - dt.timedelta(hours=1))
    f = ws.events("e.jsonl", events_for(SITE, 2))
    assert ws.run(f).returncode == 0
    db = sqlite3.connect(ws.ledger)
    with db:
        db.execute("UPDATE runs SET inputs = json_set(inputs, '$.revocations.entries', json('[[\"lbl\", 1]]'))")
    db.close()
    before, n = ledger_state(ws.ledger), runs(ws.ledger)
    r = ws.run(f)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "run 1 recorded its revocation list's entries wrongly (not a list of 5 strings each)" in r.stderr
    assert ledger_state(ws.ledger) == before and runs(ws.ledger) == n


def test_a_ledger_of_runs_that_recorded_no_revocations_keeps_the_older_checks(tmp_path: Path) -> None:
    """Runs of an earlier version recorded the list's time, size and digest, not its revocations: those still order
    the lists (fewer entries: older), and a list that holds more is relied on."""
    from conformity.errors import RevocationsNotFresh
    from conformity.labels import verify_revocations
    from conformity.payments.labelbook import ReliedOn, check_not_older
    from conformity.signing import KeyRing
    from tests.payments.builders import AGENCY

    keys = KeyRing([AGENCY.verify_key])
    one = verify_revocations(revocation_list([revocation("lbl_aaaaaaaa", T0)], now=NOW - DAY), keys)
    two = verify_revocations(revocation_list([revocation("lbl_aaaaaaaa", T0), revocation("lbl_bbbbbbbb", T0)],
                                             now=NOW), keys)
    legacy = [ReliedOn(1, iso(NOW - DAY), None, 2)]
    with pytest.raises(RevocationsNotFresh, match="revokes 1 label version"):
        check_not_older(one, tmp_path / "revocations.json", legacy)
    check_not_older(two, tmp_path / "revocations.json", legacy)
