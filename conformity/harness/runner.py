"""Run a plan: each scenario in its own sandbox session with a fresh driver; then evaluate every check.

A fresh driver is a new process, or, for a driver that declares ``reuse``, a process that served an earlier scenario
and answered ``reset`` (:class:`conformity.harness.driver.DriverPool`).

The runner only orchestrates and records: every driver request and answer is posted to the
session as a harness note, so the signed trace holds all the evidence a verdict rests on.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import InitVar, dataclass, field
from typing import Any

import httpx
import jsonschema

from conformity import __version__, plugins
from conformity.bundle.evidence import Attached
from conformity.catalog import Action
from conformity.catalog.schema import definition_validator, schema_errors
from conformity.checks.evaluate import EvalContext, evaluate_check
from conformity.checks.registry import CHECKS
from conformity.checks.trace import TraceView, TraceViews
from conformity.harness.driver import PROTOCOL, Driver, DriverFailure, DriverPool
from conformity.harness.events import (
    CheckEvaluated,
    Event,
    RunFinished,
    RunStarted,
    ScenarioFinished,
    ScenarioStarted,
)
from conformity.harness.logs import appended, offsets
from conformity.harness.plan import Plan
from conformity.harness.report import build_report
from conformity.harness.sandbox_access import (
    SandboxAccess,
    SandboxUnavailable,
    close_session,
    export_trace,
    open_session,
    refusal,
)
from conformity.harness.scenario import SCENARIOS, Perform, Scenario, ScenarioContext, SetFaults, Shrink
from conformity.harness.shrink import shrink
from conformity.harness.vendor import Vendor
from conformity.jsonio import members
from conformity.runs import new_run_id, scenario_seed, seed_commitment
from conformity.signing import unverified_payload


def eval_context(plan: Plan, software: dict[str, str]) -> EvalContext:
    """What checks may know besides the trace; rebuilt identically by the agency from a bundle."""
    return EvalContext(wave=plan.wave, category=plan.category, software=software,
                       referentials=plan.referential_versions(), requirements=tuple(p.id for p in plan.requirements),
                       parameters={p.id: p.applied.requirement.parameters for p in plan.requirements},
                       scenarios=plan.scenarios)


def driver_fixtures(pack: str, fixtures: dict[str, Any]) -> dict[str, Any]:
    """What the software under test knows locally, as the run's pack says (never what the services must tell it)."""
    return plugins.get(pack).driver_fixtures(fixtures)


def initialize_params(pack: str, session: dict[str, Any], scenario: str, seed: int, endpoints: dict[str, str],
                      ca_certificates: list[str], vendor: Vendor) -> dict[str, Any]:
    """What the harness sends a driver's ``initialize`` (``initialize_params`` of the driver protocol's schema) for
    a scenario of a run of ``pack`` in the test ``session`` (as the sandbox's admin API gave it)."""
    return {
        "protocol": PROTOCOL,
        "session": {"id": session["session_id"], "seed": seed, "scenario": scenario},
        "endpoints": endpoints,
        "credentials": {"client_id": session["credentials"]["client_id"],
                        "client_secret": session["credentials"]["client_secret"]},
        "trust_anchors": {"ca_certificates": ca_certificates},
        "software": {"name": vendor.software, "version": vendor.version, "registration_id": vendor.registration_id},
        "fixtures": driver_fixtures(pack, session["fixtures"]),
    }


#: driver processes a run starts before the sandbox (:func:`driver_pool`)
EARLY_DRIVERS = 1


def driver_pool(plan: Plan, vendor: Vendor, early: int = EARLY_DRIVERS) -> DriverPool:
    """The driver pool of a run of ``plan``, its first ``early`` processes already starting: started before the
    sandbox, they import the software while it starts, and the first scenarios (the longest) wait for neither. The
    caller hands it to the :class:`Runner`, which closes it, or closes it if the run never starts."""
    pool = DriverPool(vendor.driver, scenarios=len(plan.scenarios))
    pool.start(early)
    return pool


@dataclass
class Runner:
    """A run of ``plan``: the sandbox issues it (``POST /admin/runs``: its id, its seed unless ``seed`` is given, its
    attempt number), then each scenario plays in a session of that run."""

    plan: Plan
    vendor: Vendor
    seed: int | None  # None: the sandbox draws it (the only seed a run for a label may have)
    access: SandboxAccess
    evidence: Attached = field(default_factory=Attached)  # bound into every trace's scenario.start note
    #: scenarios driven at once, each in its own session with its own driver process (1: one after another; 0: every
    #: scenario of the plan at once). Most of a scenario is waiting on the software (its retries, its timeouts), but
    #: starting a driver costs CPU (an interpreter and its imports): on 2 cores, 6 at once beat all 19 of a wave
    #: (benchmarks/harness_run.py --parallel)
    parallel: int = 6
    #: the run's driver processes (default: a new pool, its processes started as scenarios ask; :func:`driver_pool`
    #: makes one whose first processes are started before the sandbox is)
    driver_pool: InitVar[DriverPool | None] = None

    def __post_init__(self, driver_pool: DriverPool | None) -> None:
        self.drivers = driver_pool or DriverPool(self.vendor.driver, scenarios=len(self.plan.scenarios))
        # the sandbox's, once the run is created (``_create_run``): every trace of the run names it, signed
        self.run_id, self.run_seed, self.seed_source, self.attempt = "", 0, "sandbox", 0
        self._open_run = False  # a run the sandbox issued and this harness has not finished yet
        #: the run seed is known from the start when the caller chose it; the sandbox's reveals it at the finish
        self.known_seed: int | None = None
        self.commitment = ""
        self.actions: dict[str, Action] = {a.name: a for a in self.plan.spec.actions}
        self.parameters = {r.id: dict(r.parameters) for ref in self.plan.spec.referentials for r in ref.requirements}
        #: the actions' schemas, compiled once for every step of every scenario
        self.inputs = {name: jsonschema.Draft202012Validator(a.input) for name, a in self.actions.items()}
        self.outputs = {name: jsonschema.Draft202012Validator(a.output) for name, a in self.actions.items()}
        for sid in self.plan.scenarios:
            for name in SCENARIOS.get(sid).actions:
                if name not in self.actions:
                    raise SandboxUnavailable(f"scenario {sid} uses action {name!r}, which no pinned referential declares")

    def context(self) -> EvalContext:
        return eval_context(self.plan, self.vendor.identity())

    def run(self) -> Iterator[Event]:
        # what exists now (catalog, plan, sandbox, modules) lives as long as the run: out of the collector's sight, a
        # full collection (which holds the interpreter, the in-process sandbox serving the software included) scans
        # the run's own objects only, tens of milliseconds instead of a tenth of a second or more
        gc.freeze()
        try:
            yield from self._run()
        finally:
            gc.unfreeze()
            self.drivers.close()
            if self._open_run:
                self._abandon_run()

    def _abandon_run(self) -> None:
        """A run stopped before its end (interrupted, or an error): finished at the sandbox all the same, so that its
        sessions left open give their vendor's places back at once, not hours later; best effort, never raising (the
        run's own error, if any, is what the caller sees)."""
        self._open_run = False
        try:
            with self.access.admin() as admin:
                admin.post(f"/admin/runs/{self.run_id}/finish", timeout=5)
        except (httpx.HTTPError, OSError):
            pass

    def _run(self) -> Iterator[Event]:
        started = time.time()
        self.access = self.access.bind(self.vendor.vendor_id, self.vendor.software_id)  # sessions stamped with it
        self._create_run()
        yield RunStarted(self.plan.wave, self.plan.category, self.known_seed, self.plan.scenarios,
                         len(self.plan.requirements), run_id=self.run_id, seed_source=self.seed_source,
                         attempt=self.attempt)
        traces: dict[str, dict[str, Any]] = {}
        results: dict[str, ScenarioFinished] = {}
        total = len(self.plan.scenarios)
        ctx = self.context()
        self._views = TraceViews()  # each trace's view made once for every check that reads it
        judged: dict[str, CheckEvaluated] = {}
        # the longest scenarios first, so that the run lasts about as long as its longest scenario
        order = sorted(self.plan.scenarios, key=lambda s: -SCENARIOS.get(s).expected_seconds)
        workers = max(1, self.parallel or total)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="usine-scenario") as pool:
            # the processes started ahead go to the first scenarios, the longest, in this order (taken here: the
            # scenario threads would race for them)
            ahead = {sid: self.drivers.acquire() for sid in order[:self.drivers.started_ahead]}
            futures = {pool.submit(self.run_scenario, SCENARIOS.get(sid), ahead.get(sid)): sid for sid in order}
            pending = set(futures)
            for i, sid in enumerate(self.plan.scenarios, start=1):
                sc = SCENARIOS.get(sid)
                yield ScenarioStarted(sid, sc.title, i, total)
                while sid not in results:
                    # while scenarios still run (mostly waiting on the software), judge the checks whose traces
                    # are all in: the same pure function on the same traces, only sooner
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        result = future.result()
                        results[futures[future]] = result
                        if result.trace is not None:
                            traces[result.scenario] = result.trace
                    self._judge_ready(traces, set(results), ctx, judged, final=not pending)
                yield results[sid]
        self._finish_run(results)
        self._judge_ready(traces, set(results), ctx, judged, final=True)
        evaluated = [judged[cid] for cid in self.plan.checks]
        yield from evaluated
        report = build_report(self.plan, self.vendor, self.run_seed, [results[s] for s in self.plan.scenarios],
                              evaluated, started=started, sandbox_url=self.access.base_url, run_id=self.run_id,
                              seed_source=self.seed_source, attempt=self.attempt, evidence=self.evidence.to_json())
        yield RunFinished(report)

    def _create_run(self) -> None:
        """Ask the sandbox for the run: its id, its seed (drawn there unless this runner was given one) and its
        attempt number (how many runs this software made for the wave and category).

        A plan without scenarios (document and manual requirements only) plays nothing in the sandbox: no run is
        issued; its id is made here, its seed recorded as the caller's and its attempt 0 (no bundle of it can cover
        a wave's category: the agency labels none)."""
        if not self.plan.scenarios:
            self.run_id = new_run_id()
            self.run_seed, self.seed_source, self.attempt = self.seed or 0, "caller", 0
            self.known_seed = self.run_seed
            return
        body: dict[str, Any] = {"wave": self.plan.wave, "category": self.plan.category,
                                "pack": self.plan.spec.wave.pack, "scenarios": list(self.plan.scenarios)}
        if self.seed is not None:
            body["seed"] = self.seed
        try:
            with self.access.admin() as admin:
                r = admin.post("/admin/runs", json=body)
        except httpx.HTTPError as exc:
            raise SandboxUnavailable(f"the sandbox could not create the run: {exc}") from exc
        if r.status_code != 201:
            raise SandboxUnavailable(f"the sandbox refused to create the run: {refusal(r)}")
        run = r.json()
        self.run_id, self.commitment = str(run["run_id"]), str(run["seed_commitment"])
        self._open_run = True
        self.seed_source, self.attempt = str(run["seed_source"]), int(run["attempt"])
        if run.get("seed") is not None:  # the caller's (a sandbox-drawn seed stays the sandbox's until the finish)
            self.known_seed = self.run_seed = int(run["seed"])

    def _finish_run(self, results: dict[str, ScenarioFinished]) -> None:
        """Finish the run at the sandbox (no session of it after) and take its seed, now revealed: it must be the one
        the sandbox committed to, and give each scenario's session the seed it had."""
        if not self.plan.scenarios:
            return
        self._open_run = False
        try:
            with self.access.admin() as admin:
                r = admin.post(f"/admin/runs/{self.run_id}/finish")
        except httpx.HTTPError as exc:
            raise SandboxUnavailable(f"the sandbox could not finish run {self.run_id}: {exc}") from exc
        if r.status_code != 200:
            raise SandboxUnavailable(f"the sandbox refused to finish run {self.run_id}: {refusal(r)}")
        seed = r.json().get("seed")
        if not isinstance(seed, int) or seed_commitment(seed) != self.commitment:
            raise SandboxUnavailable(f"the sandbox revealed seed {seed!r} for run {self.run_id}, not the one it "
                                     "committed to: a sandbox of another usine version?")
        self.run_seed = seed
        for sid, result in results.items():
            had = members(members(result.trace).get("session")).get("seed") if result.trace else None
            if had is not None and had != scenario_seed(seed, sid):
                raise SandboxUnavailable(f"the sandbox gave scenario {sid}'s session seed {had}, not the run's "
                                         f"{scenario_seed(seed, sid)}: a sandbox of another usine version?")

    def _judge_ready(self, traces: dict[str, dict[str, Any]], finished: set[str], ctx: EvalContext,
                     judged: dict[str, CheckEvaluated], *, final: bool) -> None:
        """Evaluate every check not yet judged whose scenarios have all finished (every check when ``final``)."""
        for cid in self.plan.checks:
            if cid in judged:
                continue
            check = CHECKS.get(cid)
            needs = set(self.plan.scenarios) if check.reads_all else set(check.scenarios)
            if not final and not needs <= finished:
                continue
            t0 = time.perf_counter()
            verdict = evaluate_check(cid, traces, ctx, self._views)
            judged[cid] = CheckEvaluated(cid, check.scenario, verdict, round((time.perf_counter() - t0) * 1000, 3))

    def run_scenario(self, sc: Scenario, started: Driver | None = None) -> ScenarioFinished:
        """Run one scenario in a session of its own, with the driver ``started`` for it (default: one from the
        pool)."""
        t0 = time.perf_counter()
        # the seed the sandbox derives for the run's session: known here only when the caller chose the run's (a
        # sandbox-drawn run seed is revealed at the finish; the session's answer gives its scenario's seed)
        seed = scenario_seed(self.known_seed, sc.id) if self.known_seed is not None else None
        if seed is not None:
            for draw in sc.draws:  # its generated inputs are drawn while its session opens and its driver starts
                draw.ahead(seed)
        failures: list[dict[str, Any]] = []
        # the driver process starts (its interpreter, its imports) while the session is being opened
        driver: Driver | DriverFailure
        try:
            driver = started if started is not None else self.drivers.acquire()
        except DriverFailure as f:
            driver = f
        released: list[bool] = []  # _drive hands the driver back to the pool
        try:
            with self.access.admin() as admin:
                r = open_session(admin, {"run_id": self.run_id, "scenario": sc.id,
                                         "label": f"{self.vendor.software_id} {sc.id}",
                                         "pack": self.plan.spec.wave.pack})
                session = r.json()
                sid = session["session_id"]
                if seed is None and isinstance(session.get("seed"), int):
                    seed = int(session["seed"])
                    for draw in sc.draws:  # drawn while the driver initializes (the first step waits for them)
                        draw.ahead(seed)
                if seed is None or session.get("seed") != seed:
                    raise SandboxUnavailable(f"the sandbox gave scenario {sc.id}'s session seed {session.get('seed')}, "
                                             f"not the run's {seed}: a sandbox of another usine version?")
                if members(session.get("run")).get("seed_commitment") != self.commitment:
                    raise SandboxUnavailable(f"the sandbox recorded scenario {sc.id}'s session in a run committed to "
                                             f"{members(session.get('run')).get('seed_commitment')!r}, not "
                                             f"{self.commitment!r}: a sandbox of another usine version?")
                bound = {"vendor_id": self.vendor.vendor_id, "software_id": self.vendor.software_id}
                if session.get("bound_to") != bound:
                    raise SandboxUnavailable(f"the sandbox token is bound to {session.get('bound_to')}, "
                                             f"not to {bound}: ask the agency for this software's harness token")

                def note(kind: str, data: dict[str, Any]) -> None:
                    admin.post(f"/admin/sessions/{sid}/notes", json={"kind": kind, "data": data}).raise_for_status()

                note("scenario.start", {"scenario": sc.id, "title": sc.title, "seed": seed, "run_id": self.run_id,
                                        "harness": __version__,
                                        "vendor": self.vendor.identity(), "wave": self.plan.wave,
                                        "category": self.plan.category, "evidence": self.evidence.to_json()})
                failures = self._drive(sc, session, seed, admin, note, driver, released)
                note("scenario.end", {"scenario": sc.id, "driver_failures": len(failures)})
                trace = export_trace(admin, sid)
                close_session(admin, sid)  # asked again if its answer is lost; never fails the scenario
                signed = trace.json()
                return ScenarioFinished(sc.id, sid, unverified_payload(signed, source=f"trace of {sc.id}"),
                                        round(time.perf_counter() - t0, 3), tuple(failures), signed_trace=signed)
        except httpx.HTTPError as exc:
            return ScenarioFinished(sc.id, None, None, round(time.perf_counter() - t0, 3), tuple(failures),
                                    error=f"sandbox error: {exc}")
        finally:
            if not isinstance(driver, DriverFailure) and not released:
                driver.close()  # the scenario ended before its driver was driven
            if seed is not None:
                for draw in sc.draws:
                    draw.forget(seed)

    def _shrink(self, step: Shrink, sid: str, driver: Any, admin: httpx.Client, note: Any) -> None:
        """Run a Shrink step: candidates performed by the driver, each a ``shrink.attempt`` note; then the result."""

        def trace() -> TraceView:
            return TraceView(unverified_payload(export_trace(admin, sid).json()))

        def perform(candidate: dict[str, Any]) -> dict[str, Any]:
            data: dict[str, Any] = {"action": step.action, "input": candidate}
            try:
                data["output"] = driver.call("perform", {"action": step.action, "input": candidate})
            except DriverFailure as f:
                data["failure"] = f.to_json()
            note("shrink.attempt", data)
            return data

        def refused_now() -> int | None:
            t = trace()
            last = t.notes("shrink.attempt")[-1]
            earlier = [n.seq for n in t.notes() if n.seq < last.seq]
            for e in t.exchanges(step.service, after=earlier[-1] if earlier else 0, before=last.seq):
                if e.outcome == step.outcome:
                    return e.seq
            return None

        result = shrink(step, trace(), perform, refused_now)
        note("shrink.result", result or {"action": step.action, "skipped": "no refused input to shrink"})

    def _endpoints(self, sc: Scenario, session: dict[str, Any]) -> dict[str, str]:
        """The session's endpoints, those the scenario moves to a bad listener on it (an ``.invalid`` host when the
        sandbox has no such listener: the software cannot reach it, and the checks say the situation is missing)."""
        endpoints = dict(session["endpoints"])
        listeners = self.access.listeners()
        for service, listener in sc.endpoints_on.items():
            other = listeners.get(listener, f"https://{listener.replace('_', '-')}.listener-unavailable.invalid")
            endpoints[service] = endpoints[service].replace(self.access.base_url, other, 1)
        endpoints.pop("trace", None)
        return endpoints

    def _drive(self, sc: Scenario, session: dict[str, Any], seed: int, admin: httpx.Client, note: Any,
               driver: Driver | DriverFailure, released: list[bool]) -> list[dict[str, Any]]:
        params = initialize_params(self.plan.spec.wave.pack, session, sc.id, seed, self._endpoints(sc, session),
                                   self.access.ca_certificates, self.vendor)
        logs = offsets(self.vendor.logs_of(session["session_id"]))
        if isinstance(driver, DriverFailure):
            note("driver.failure", {"method": "start", **driver.to_json()})
            return [driver.to_json()]
        failures: list[dict[str, Any]] | None = None
        try:
            failures = self._steps(sc, session, seed, admin, note, driver, params)
            return failures
        finally:
            # a reusable driver is reset for the next scenario unless this one met a crash, a timeout or garbage
            reusable = failures is not None and all(f.get("kind") == "rpc-error" for f in failures)
            stderr = self.drivers.release(driver, reusable=reusable)
            released.append(True)
            written = {"stderr": stderr, "logs": appended(logs)}
            if written["stderr"] or written["logs"]:
                note("software.output", {k: v for k, v in written.items() if v})

    def _steps(self, sc: Scenario, session: dict[str, Any], seed: int, admin: httpx.Client, note: Any,
               driver: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        failures: list[dict[str, Any]] = []
        try:
            init = driver.call("initialize", params)
        except DriverFailure as f:
            note("driver.failure", {"method": "initialize", **f.to_json()})
            return [f.to_json()]
        errors = sorted(e.message for e in definition_validator("driver", "initialize_result").iter_errors(init))
        if errors:  # its list of actions is what the run relies on: not a list of names, nothing is run
            failure = {"kind": "invalid-answer", "message": "its answer does not match the driver protocol's "
                       f"initialize_result (conformity/schemas/driver.schema.json): {'; '.join(errors[:5])}",
                       "raw": json.dumps(init)[:2000]}
            note("driver.failure", {"method": "initialize", **failure})
            return [failure]
        supported = init["actions"]
        note("driver.initialize", {"result": init, "endpoints": params["endpoints"]})
        ctx = ScenarioContext(fixtures=session["fixtures"], seed=seed, endpoints=params["endpoints"],
                              listeners=self.access.listeners(), parameters=self.parameters,
                              inputs={a.name: frozenset(a.input.get("properties", {})) for a in self.actions.values()})
        for step in sc.steps:
            if isinstance(step, Shrink):
                self._shrink(step, session["session_id"], driver, admin, note)
                continue
            if isinstance(step, SetFaults):
                r = admin.put(f"/admin/sessions/{session['session_id']}/faults", json=step.faults)
                r.raise_for_status()
                note("fault.set", {"faults": step.faults})
                continue
            assert isinstance(step, Perform)
            payload = step.resolve(ctx)
            self.inputs[step.action].validate(payload)  # a harness bug if this fails
            record: dict[str, Any] = {"action": step.action, "name": step.name, "input": payload}
            if step.action not in supported:
                note("driver.perform", record | {"unsupported": True})
                continue
            try:
                out = driver.call("perform", {"action": step.action, "input": payload})
            except DriverFailure as f:
                failures.append(f.to_json())
                note("driver.perform", record | {"failure": f.to_json()})
                if f.kind in ("crash", "timeout", "unreachable"):
                    break
                continue
            errors = schema_errors(self.outputs[step.action], out)  # where each is, for the vendor to fix
            if errors:
                record["output_invalid"] = errors
            note("driver.perform", record | {"output": out})
            if step.name:
                ctx.outputs[step.name] = out
        return failures
