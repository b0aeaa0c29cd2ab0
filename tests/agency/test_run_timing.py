"""How long a run's scenarios took, by the sandbox's signed times, and the agency told of a scenario played slowly.

The harness opens a scenario's session as it starts playing it and plays it in seconds; a session opened long before
its last exchange is a scenario played by hand, or whose inputs were studied first (`conformity.agency.timing`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from conformity.agency.decision import Facts, decide
from conformity.agency.submit import decide_bundle
from conformity.agency.timing import LONG_SCENARIO, Longest, longest_scenario, scenario_seconds
from conformity.agency.verify import RunIdentity, verify_bundle
from conformity.catalog import Catalog
from conformity.signing import KeyRing, SigningKey, canonical_json, unverified_payload
from tests.agency.helpers import CATEGORY, DECIDED, WAVE, Runs, members, write_zip

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def _trace(created: str, *times: str) -> dict:
    return {"session": {"created": created}, "exchanges": [{"seq": i + 1, "time": t} for i, t in enumerate(times)]}


def test_a_scenario_lasts_from_its_sessions_opening_to_its_last_exchange() -> None:
    assert scenario_seconds(_trace("2026-06-01T10:00:00+00:00", "2026-06-01T10:00:00.400Z",
                                   "2026-06-01T10:00:07.900Z")) == 7
    assert scenario_seconds(_trace("2026-06-01T10:00:00+00:00")) is None  # nothing recorded: says nothing
    assert scenario_seconds({"session": {}, "exchanges": [{"time": "2026-06-01T10:00:00Z"}]}) is None
    assert scenario_seconds(_trace("yesterday", "2026-06-01T10:00:00Z")) is None
    # an exchange stamped before the session's second (its opening has whole seconds): 0, never negative
    assert scenario_seconds(_trace("2026-06-01T10:00:01+00:00", "2026-06-01T10:00:00.900Z")) == 0
    longest = longest_scenario({"a": _trace("2026-06-01T10:00:00+00:00", "2026-06-01T10:00:03Z"),
                                "b": _trace("2026-06-01T10:00:00+00:00", "2026-06-01T10:20:05Z"),
                                "c": _trace("2026-06-01T10:00:00+00:00")})
    assert longest == Longest("b", 1205) and longest.long and longest.said() == "20 min 5 s"
    assert longest_scenario({}) is None


def test_a_long_scenario_is_a_warning_in_the_decision_and_kept_in_the_registry(catalog: Catalog) -> None:
    from tests.agency.test_decision_rules import _facts, _reviewable, _reviews, _rows

    rows = _rows(catalog)
    reviews = _reviews({r: "accepted" for r in _reviewable(catalog, "MUST")}, rows)
    quick = dataclasses.replace(_facts(catalog), longest=Longest("docshare.nominal", 9))
    assert decide(quick, reviews, catalog.wave(WAVE), NOW).warnings == ()
    limit = int(LONG_SCENARIO.total_seconds())
    at_limit = dataclasses.replace(quick, longest=Longest("docshare.nominal", limit))
    assert decide(at_limit, reviews, catalog.wave(WAVE), NOW).warnings == ()
    slow = dataclasses.replace(quick, longest=Longest("docshare.nominal", limit + 1))
    d = decide(slow, reviews, catalog.wave(WAVE), NOW)
    assert d.outcome == "labelled"  # a warning to the agency, not a refusal: a slow driver may answer in 10 minutes
    assert len(d.warnings) == 1 and "scenario docshare.nominal lasted 15 min 1 s" in d.warnings[0]
    ident = RunIdentity("v", "v.app", "1.0", WAVE, CATEGORY, "0123456789abcdef")
    kept = Facts.from_json(ident, slow.to_json(), slow.rows, slow.failed, slow.evidence)
    assert kept.longest == slow.longest  # decided again from the registry: warned again
    old = slow.to_json()
    del old["run"]["longest"]  # a run recorded before the agency kept its times
    assert Facts.from_json(ident, old, slow.rows, slow.failed, slow.evidence).longest is None


def test_a_verified_run_says_its_longest_scenario_and_a_slow_one_is_pointed_out(
        runs: Runs, catalog: Catalog, trust: KeyRing, tmp_path: Path) -> None:
    """The reference run's scenarios take seconds; the same run with one session opened an hour before its
    exchanges (what only the sandbox signs: its key here) verifies, and its decision says which and how long."""
    v = verify_bundle(runs.reference, catalog, trust)
    assert v.ok and v.longest is not None and not v.longest.long, v.longest
    assert v.longest.scenario in {n[len("traces/"):-len(".json")] for n in members(runs.reference) if n.startswith("traces/")}
    files = members(runs.reference)
    name = sorted(n for n in files if n.startswith("traces/"))[0]
    doc = unverified_payload(json.loads(files[name]))
    opened = dt.datetime.fromisoformat(doc["session"]["created"]) - dt.timedelta(hours=1)
    doc["session"]["created"] = opened.isoformat(timespec="seconds")
    files[name] = canonical_json(SigningKey.load(runs.sandbox_key).sign_document(doc))
    slow = write_zip(tmp_path / "slow.zip", files)
    v = verify_bundle(slow, catalog, trust)
    scenario = name[len("traces/"):-len(".json")]
    assert v.ok and v.longest is not None and v.longest.scenario == scenario and v.longest.seconds >= 3600
    outcome = decide_bundle(slow, catalog, trust, tmp_path / "r.sqlite3", tmp_path / "agency.pem", tmp_path / "out",
                            now=DECIDED)
    assert outcome.doc["run"]["longest"] == {"scenario": scenario, "seconds": v.longest.seconds}
    assert any(f"scenario {scenario} lasted {v.longest.said()} from its session's opening" in w
               for w in outcome.doc["warnings"]), outcome.doc["warnings"]


def test_the_longest_scenario_of_equals_is_the_last_by_id() -> None:
    """``longest_scenario`` takes the tuples' own order (seconds, then scenario id): the same answer whatever the
    order of the traces, the most seconds first, of equals the last scenario id."""
    from conformity.agency.timing import longest_scenario

    def trace(last: str) -> dict[str, object]:
        return {"session": {"created": "2026-01-01T00:00:00Z"}, "exchanges": [{"time": last}]}

    traces = {"S-B": trace("2026-01-01T00:01:00Z"), "S-C": trace("2026-01-01T00:00:30Z"),
              "S-A": trace("2026-01-01T00:01:00Z"), "S-D": {"exchanges": []}}
    for order in (traces, dict(reversed(list(traces.items())))):
        found = longest_scenario(order)
        assert found is not None and (found.scenario, found.seconds) == ("S-B", 60)
    assert longest_scenario({"S-D": {"exchanges": []}}) is None
