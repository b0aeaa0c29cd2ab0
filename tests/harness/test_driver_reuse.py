"""A driver reused across scenarios (``reuse = true``, method ``reset``): real processes, the real harness and sandbox.

A reused process must change nothing a verdict rests on: each scenario's error output goes into its own trace (split at
the reset marker), a driver that is not fresh is replaced by a new process, and state a driver keeps across a reset
(a token of the session that ended) makes the next scenario fail, never pass: the sandbox refuses it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import conformity
from conformity.catalog import load_catalog
from conformity.errors import InputError
from conformity.harness.driver import DriverFailure, DriverPool, StdioDriver
from conformity.harness.outputs import run_to_end
from conformity.harness.plan import make_plan
from conformity.harness.runner import Runner
from conformity.harness.sandbox_access import SandboxAccess
from conformity.harness.vendor import DriverSpec, Vendor, load_vendor
from tests.harness.helpers import VENDORS, verdicts

#: a reusable driver: ``say`` writes on stderr; ``reset`` answers as REPLY says (fresh, not fresh, no marker)
REUSABLE = r'''
import json, os, sys
REPLY = {reply!r}
def answer(rid, result):
    print(json.dumps({{"jsonrpc": "2.0", "id": rid, "result": result}}), flush=True)
for line in sys.stdin:
    msg = json.loads(line)
    method, params = msg["method"], msg.get("params") or {{}}
    if method == "shutdown":
        answer(msg["id"], None); break
    if method == "say":
        print(params["text"], file=sys.stderr, flush=True); answer(msg["id"], os.getpid())
    elif method == "spew":
        for _ in range(params["lines"]):
            print("x" * 1023, file=sys.stderr)
        sys.stderr.flush(); answer(msg["id"], None)
    elif method == "reset":
        if REPLY != "no-marker":
            print(params["marker"], file=sys.stderr, flush=True)
        answer(msg["id"], {{"fresh": True}} if REPLY in ("fresh", "no-marker") else {{"fresh": False}})
'''


def pool(tmp_path: Path, reply: str = "fresh", *, reuse: bool = True) -> DriverPool:
    script = tmp_path / "driver.py"
    script.write_text(REUSABLE.format(reply=reply))
    return DriverPool(DriverSpec(command=(sys.executable, str(script)), timeout=2.0, cwd=tmp_path, reuse=reuse))


def scenario(drivers: DriverPool, text: str, *, reusable: bool = True) -> tuple[int, str | None]:
    """One scenario's worth: a driver, a line on its stderr; (its process id, the error output the pool hands back)."""
    d = drivers.acquire()
    pid = d.call("say", {"text": text})
    return pid, drivers.release(d, reusable=reusable)


def test_a_reused_process_hands_back_each_scenarios_error_output_apart(tmp_path: Path) -> None:
    drivers = pool(tmp_path)
    try:
        first, out1 = scenario(drivers, "written in scenario one")
        second, out2 = scenario(drivers, "written in scenario two")
        third, out3 = scenario(drivers, "written in scenario three", reusable=False)  # it met a crash/timeout/garbage
        fourth, _ = scenario(drivers, "written in scenario four")
    finally:
        drivers.close()
    assert first == second == third != fourth
    assert (drivers.started, drivers.reused) == (2, 2)
    assert out1 == "written in scenario one\n" and out2 == "written in scenario two\n"
    assert out3 == "written in scenario three\n"  # shut down: its whole output since the reset, no marker in it


def test_a_scenarios_error_output_is_cut_at_1_mib_and_the_next_one_starts_empty(tmp_path: Path) -> None:
    drivers = pool(tmp_path)
    try:
        d = drivers.acquire()
        d.call("spew", {"lines": 1100})  # 1.1 MiB
        out = drivers.release(d, reusable=True)
        again, after = scenario(drivers, "next")
    finally:
        drivers.close()
    assert out is not None and out.endswith("\n… (cut at 1 MiB)\n") and len(out) < (1 << 20) + 100
    assert drivers.reused == 1 and after == "next\n"


@pytest.mark.parametrize("reply", ["not-fresh", "no-marker"])
def test_a_driver_that_is_not_fresh_is_replaced_by_a_new_process(tmp_path: Path, reply: str) -> None:
    drivers = pool(tmp_path, reply)
    try:
        first, out1 = scenario(drivers, "one")
        second, out2 = scenario(drivers, "two")
    finally:
        drivers.close()
    assert first != second and drivers.started == 2 and drivers.reused == 0
    assert (out1, out2) == ("one\n", "two\n")  # the marker, when written, is never part of a scenario's output


def test_the_reset_request_and_answer_are_those_the_protocol_schema_describes(tmp_path: Path) -> None:
    script = tmp_path / "recording.py"
    script.write_text(REUSABLE.format(reply="fresh").replace(
        "    msg = json.loads(line)\n",
        "    msg = json.loads(line)\n    open('requests.jsonl', 'a').write(line)\n"))
    drivers = DriverPool(DriverSpec(command=(sys.executable, str(script)), timeout=2.0, cwd=tmp_path, reuse=True))
    try:
        scenario(drivers, "one")
    finally:
        drivers.close()
    schema = json.loads((Path(conformity.__file__).parent / "schemas" / "driver.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    reset = [m for m in map(json.loads, (tmp_path / "requests.jsonl").read_text().splitlines()) if m["method"] == "reset"]
    assert len(reset) == 1 and list(validator.iter_errors(reset[0])) == []
    answer = {"jsonrpc": "2.0", "id": reset[0]["id"], "result": {"fresh": True}}
    assert validator.is_valid(answer)
    result = jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/reset_result"})
    assert result.is_valid({"fresh": True}) and not result.is_valid({"fresh": False})


def test_without_reuse_every_scenario_gets_a_process(tmp_path: Path) -> None:
    drivers = pool(tmp_path, reuse=False)
    try:
        pids = [scenario(drivers, str(i))[0] for i in range(3)]
    finally:
        drivers.close()
    assert len(set(pids)) == 3 and drivers.reused == 0


def test_reset_refuses_output_nobody_asked_for(tmp_path: Path) -> None:
    script = tmp_path / "chatty.py"
    script.write_text(REUSABLE.format(reply="fresh").replace(
        'answer(msg["id"], os.getpid())', 'answer(msg["id"], os.getpid()); print("{}", flush=True)'))
    drivers = DriverPool(DriverSpec(command=(sys.executable, str(script)), timeout=2.0, cwd=tmp_path, reuse=True))
    try:
        d = drivers.acquire()
        d.call("say", {"text": "x"})
        assert isinstance(d, StdioDriver)
        d._lines.get(timeout=2)  # wait for the stray line, then put it back: the pool must see it
        d._lines.put("{}\n")
        drivers.release(d, reusable=True)
        assert drivers._idle == [] and d.proc.poll() is not None
    finally:
        drivers.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"  # a zombie has exited


def test_a_pool_that_knows_its_scenarios_shuts_a_process_down_once_none_is_left(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(REUSABLE.format(reply="fresh"))
    drivers = DriverPool(DriverSpec(command=(sys.executable, str(script)), timeout=2.0, cwd=tmp_path, reuse=True),
                         scenarios=3)
    try:
        first, second = drivers.acquire(), drivers.acquire()
        one, two = first.call("say", {"text": "1"}), second.call("say", {"text": "2"})
        assert drivers.release(first, reusable=True) == "1\n"  # one scenario left: kept for it
        third = drivers.acquire()
        assert third.call("say", {"text": "3"}) == one and drivers._idle == []
        assert drivers.release(second, reusable=True) == "2\n"  # none left: reset (its output split), then shut down
        assert drivers.release(third, reusable=True) == "3\n"
        assert drivers._idle == []
    finally:
        drivers.close()
    assert not alive(one) and not alive(two)
    assert (drivers.started, drivers.reused) == (2, 1)


def test_processes_started_ahead_go_to_the_first_scenarios_in_order_and_unused_ones_are_shut_down(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(REUSABLE.format(reply="fresh"))
    spec = DriverSpec(command=(sys.executable, str(script)), timeout=2.0, cwd=tmp_path, reuse=True)
    drivers = DriverPool(spec, scenarios=2)
    drivers.start(5)  # no more than the scenarios it serves
    assert drivers.started == 2
    ahead = [d.proc.pid for d in drivers._fresh]  # type: ignore[attr-defined]  # StdioDriver: a process started ahead
    try:
        first = drivers.acquire()
        assert first.call("say", {"text": "before any other"}) == ahead[0]
        assert drivers.release(first, reusable=True) == "before any other\n"  # nothing written before it is lost
    finally:
        drivers.close()
    assert (drivers.started, drivers.reused) == (2, 0) and not any(alive(pid) for pid in ahead)

    unknown = DriverPool(spec)
    unknown.start(2)
    pids = [d.proc.pid for d in unknown._fresh]  # type: ignore[attr-defined]  # as above
    unknown.close()
    assert unknown.started == 2 and not any(alive(pid) for pid in pids)


def test_a_driver_that_cannot_start_ahead_is_reported_by_the_scenario_that_asks(tmp_path: Path) -> None:
    drivers = DriverPool(DriverSpec(command=(str(tmp_path / "missing"),), timeout=2.0, cwd=tmp_path, reuse=True),
                         scenarios=1)
    drivers.start(1)
    assert drivers._fresh == []
    with pytest.raises(DriverFailure) as failure:
        drivers.acquire()
    assert failure.value.kind == "start-failed"
    drivers.close()


def test_reuse_is_for_a_driver_the_harness_starts(tmp_path: Path) -> None:
    manifest = tmp_path / "vendor.toml"
    manifest.write_text(textwrap.dedent('''\
        format = "usine.vendor/1"
        vendor_id = "acme"
        software = "Acme"
        version = "1.0"
        registration_id = "REG-1"
        category = "HOSPITAL"
        [driver]
        url = "http://127.0.0.1:9/rpc"
        reuse = true
        '''))
    with pytest.raises(InputError, match="driver.reuse"):
        load_vendor(manifest)


# the real harness: the reference vendor reused, honestly and with a leak

#: RefApp, except that across a reset it keeps the practitioner logged in during the previous session (its tokens)
LEAKY = '''
import os, sys
sys.path.insert(0, os.getcwd())  # the reference vendor's folder: the refapp package
from refapp import app
kept = {}
honest = app.Application.access_token
def access_token(self):
    if self.practitioner is None and "practitioner" in kept:
        self.practitioner = kept["practitioner"]  # what a driver that only says it is fresh would do
    token = honest(self)
    kept["practitioner"] = self.practitioner
    return token
app.Application.access_token = access_token
from refapp.driver import main
sys.exit(main())
'''

#: two scenarios in which the software logs its first practitioner in when it first needs a token
ONLY = ("DOCSHARE-002", "DOCSHARE-005")


def reference(**changes: Any) -> Vendor:
    v = load_vendor(VENDORS / "reference" / "vendor.toml")
    return dataclasses.replace(v, driver=dataclasses.replace(v.driver, **changes))


def run(access: SandboxAccess, vendor: Vendor) -> tuple[Runner, dict[str, Any], dict[str, dict[str, Any]]]:
    runner = Runner(make_plan(load_catalog(), "2027-W2", "HOSPITAL", ONLY), vendor, 0, access, parallel=1)
    result = run_to_end(runner)
    return runner, result.report, result.traces


def refused_for_another_session(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in trace["exchanges"] if e.get("kind") == "http" and e["response"]["status"] == 403
            and "token-other-session" in str(e["response"].get("body", ""))]


@pytest.mark.slow
def test_a_reused_reference_driver_judges_as_fresh_processes_and_a_leak_fails(harness_sandbox: SandboxAccess,
                                                                              tmp_path: Path) -> None:
    fresh_runner, fresh, fresh_traces = run(harness_sandbox, reference(reuse=False))
    reused_runner, reused, reused_traces = run(harness_sandbox, reference(reuse=True))
    assert (fresh_runner.drivers.started, reused_runner.drivers.started, reused_runner.drivers.reused) == (2, 1, 1)
    assert verdicts(reused) == verdicts(fresh)
    assert [c["status"] for c in reused["checks"]] == [c["status"] for c in fresh["checks"]]
    assert not any(refused_for_another_session(t) for t in [*fresh_traces.values(), *reused_traces.values()])
    # what the software wrote during a scenario (its log file, closed by reset) names that scenario's session only
    for sid, trace in reused_traces.items():
        written = [e["data"] for e in trace["exchanges"] if e.get("note") == "software.output"]
        assert written and set(re.findall(r"ses_[A-Za-z0-9]+", json.dumps(written))) == {trace["session"]["id"]}, sid

    leaky = tmp_path / "leaky_refapp.py"
    leaky.write_text(LEAKY)
    leaky_runner, leaked, leaked_traces = run(harness_sandbox, reference(reuse=True, command=(sys.executable,
                                                                                              str(leaky))))
    assert leaky_runner.drivers.reused == 1
    second = [t for t in leaked_traces.values() if refused_for_another_session(t)]
    assert len(second) == 1, "the token kept across the reset is refused in the next session"
    worse = {r: v for r, v in verdicts(leaked).items() if v != verdicts(fresh)[r]}
    assert worse and all(v != "pass" for v in worse.values()), verdicts(leaked)
