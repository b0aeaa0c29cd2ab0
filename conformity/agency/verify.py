"""Verify an evidence bundle and re-derive its verdicts; every reason to refuse it, not only the first.

In order: the zip is read safely; the manifest matches its schema; every member matches the manifest's
hash and size, none is missing or extra; the wave and category exist and the manifest pins the wave's
referential versions; each trace is signed by a trusted sandbox key and belongs to this run (the session's run the
sandbox recorded is the manifest's: id, wave, category, seed source, attempt, and the trace's scenario; its
``scenario.start`` note names the manifest's vendor, software, version, wave, category, seed, run id and
harness version, and binds the same evidence files as the manifest) and shows the whole scenario (the faults
it sets, a note for each of its steps, its end); the evidence is for document and manual requirements of
the plan, of an allowed type judged by content (and a category that plays no scenario is refused: no run issued
by the sandbox binds it); the report is consistent with the manifest (closed schema)
and covers every applicable requirement; and every check is evaluated again on the traces and compared with
the report's check and requirement verdicts.

What a verified bundle proves is a run: :attr:`Verification.identity` (vendor, software, version, wave,
category, run id), never the bytes of the zip that carried it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conformity import jsonio
from conformity.agency import rederive
from conformity.agency.bundlezip import DEFAULT_LIMITS, BundleArchive, ZipLimits, open_bundle
from conformity.agency.timing import Longest, longest_scenario
from conformity.bundle import evidence as ev
from conformity.catalog import Catalog
from conformity.catalog.schema import schema_problems
from conformity.checks.model import Verdict
from conformity.checks.registry import CHECKS
from conformity.checks.trace import FAULTS_NOTE, TRACE_FORMAT
from conformity.errors import InputError, Problem, SignatureError
from conformity.harness.plan import Plan, make_plan
from conformity.harness.report import RequirementRow, rows_of, summary_of
from conformity.harness.runner import eval_context
from conformity.harness.scenario import SCENARIOS, Perform, SetFaults
from conformity.jsonio import members
from conformity.labels import utc_now
from conformity.plugins import register_all
from conformity.runs import read_seed, scenario_seed, seed_commitment
from conformity.signing import KeyRing, canonical_json, sha256_hex, verify_document

MANIFEST, REPORT = "manifest.json", "report.json"
#: manifest field → key of the harness's vendor identity (``Vendor.identity()``)
IDENTITY = (("vendor", "id", "vendor_id"), ("vendor", "name", "vendor_name"), ("software", "id", "software_id"),
            ("software", "name", "software"), ("software", "version", "version"),
            ("software", "registration_id", "registration_id"))


@dataclass(slots=True)
class Verification:
    """The outcome of verifying one bundle: reasons to refuse it (none when verified) and what was re-derived."""

    bundle: Path
    bundle_sha256: str
    verified_at: str
    reasons: list[Problem] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    plan: Plan | None = None
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    rows: list[RequirementRow] = field(default_factory=list)
    run_started: str | None = None
    longest: Longest | None = None  # the run's longest scenario, by the sandbox's signed times
    evidence_data: dict[str, bytes] = field(default_factory=dict)  # member name → bytes of each evidence file

    @property
    def ok(self) -> bool:
        return not self.reasons and self.plan is not None and bool(self.rows)

    @property
    def identity(self) -> RunIdentity:
        """What was tested (only meaningful once verified: every field is bound by the signed traces)."""
        assert self.manifest is not None
        return RunIdentity.of(self.manifest)

    @property
    def evidence(self) -> tuple[ev.EvidenceFile, ...]:
        return ev.from_json(self.manifest["evidence"]) if self.manifest else ()


@dataclass(frozen=True, slots=True)
class RunIdentity:
    """A submission's identity: the run that was tested, as the signed traces bind it."""

    vendor_id: str
    software_id: str
    version: str
    wave: str
    category: str
    run_id: str

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> RunIdentity:
        return cls(manifest["vendor"]["id"], manifest["software"]["id"], manifest["software"]["version"],
                   manifest["wave"], manifest["category"], manifest["run_id"])

    @property
    def submission_id(self) -> str:
        """``sub_`` + 20 hex digits of the SHA-256 of the identity (RFC 8785 JSON): the same run, the same id."""
        return "sub_" + sha256_hex(canonical_json(asdict(self)))[:20]


def parse_json(data: bytes, name: str, reasons: list[Problem]) -> Any:
    """A member as strict, bounded JSON (see ``conformity.jsonio``), or None with a reason."""
    try:
        return jsonio.loads(data, source=name)
    except InputError as exc:
        reasons.extend(exc.problems)
    return None


def preflight(path: Path, limits: ZipLimits = DEFAULT_LIMITS) -> None:
    """What a sender checks before uploading ``path``: a zip the agency reads (within ``limits``) holding a
    ``manifest.json`` that is a JSON object; InputError naming the file otherwise. Signatures, the manifest's schema
    and the verdicts stay the agency's to judge (its schema may be newer than the sender's)."""
    archive = open_bundle(path, limits)
    if archive.problems:
        raise InputError(archive.problems)
    raw = archive.members.get(MANIFEST)
    if raw is None:
        raise InputError(f"not a bundle: the zip holds no {MANIFEST} (give the bundle.zip `usine run` wrote)",
                         file=path)
    reasons: list[Problem] = []
    manifest = parse_json(raw, MANIFEST, reasons)
    if reasons:
        raise InputError([Problem(str(path), p.where, f"{MANIFEST}: {p.message}") for p in reasons])
    if not isinstance(manifest, dict):
        raise InputError(f"not a bundle: its {MANIFEST} is not a JSON object", file=path)


def check_files(archive: BundleArchive, manifest: dict[str, Any], reasons: list[Problem]) -> None:
    """Every listed file present with its hash and size; no file the manifest does not list."""
    listed = manifest["files"]
    refused = {p.where for p in archive.problems}
    for name, entry in sorted(listed.items()):
        data = archive.members.get(name)
        if data is None:
            if repr(name) not in refused:
                reasons.append(Problem(MANIFEST, f"files.{name}", "listed file is missing from the bundle"))
            continue
        if len(data) != entry["bytes"]:
            reasons.append(Problem(name, "", f"is {len(data)} bytes, the manifest says {entry['bytes']}"))
        if sha256_hex(data) != entry["sha256"]:
            reasons.append(Problem(name, "", "SHA-256 differs from the manifest's (edited after the run?)"))
    for name in archive.names:
        if name != MANIFEST and name not in listed and repr(name) not in refused:
            reasons.append(Problem(name, "", "extra file: the manifest does not list it"))


def manifest_identity(manifest: dict[str, Any]) -> dict[str, str]:
    return {key: manifest[part][sub] for part, sub, key in IDENTITY}



def trace_problems(name: str, scenario: str, doc: Any, manifest: dict[str, Any], keys: KeyRing) -> list[Problem]:
    """Why a trace (its verified payload) cannot be trusted as evidence of this run: format, or another run's note."""
    if doc.get("format") != TRACE_FORMAT:
        return [Problem(name, "format", f"not a trace (format {doc.get('format')!r}, expected {TRACE_FORMAT})")]
    starts = [e for e in doc.get("exchanges") or () if isinstance(e, dict) and e.get("kind") == "note"
              and e.get("note") == "scenario.start"]
    if len(starts) != 1:
        return [Problem(name, "exchanges", f"{len(starts)} scenario.start notes (expected exactly one)")]
    note = members(starts[0].get("data"))
    vendor = members(note.get("vendor"))
    session = members(doc.get("session"))
    bound = session.get("bound_to")
    want = {"vendor_id": manifest["vendor"]["id"], "software_id": manifest["software"]["id"]}
    if bound is None:
        return [Problem(name, "session.bound_to", "the session was created with the sandbox's admin token, not this "
                                                  "software's harness token: its notes cannot be attributed to it")]
    if bound != want:
        return [Problem(name, "session.bound_to", f"the session is bound to {_json(bound)}, not {_json(want)}")]
    found = _run_problems(name, scenario, session, manifest)
    if found:
        return found
    seed = scenario_seed(read_seed(manifest["seed"]), scenario)
    expected = {"scenario": scenario, "wave": manifest["wave"], "category": manifest["category"], "seed": seed,
                "run_id": manifest["run_id"], "harness": manifest["harness"]["version"],
                **{f"vendor.{k}": v for k, v in manifest_identity(manifest).items()}}
    got = {"scenario": note.get("scenario"), "wave": note.get("wave"), "category": note.get("category"),
           "seed": note.get("seed"), "run_id": note.get("run_id"), "harness": note.get("harness"),
           **{f"vendor.{k}": vendor.get(k) for k, _ in manifest_identity(manifest).items()}}
    wrong = [f"{k} {got[k]!r} (expected {v!r})" for k, v in expected.items() if got[k] != v]
    if session.get("seed") != seed:
        wrong.append(f"session seed {session.get('seed')!r} (expected {seed})")
    if wrong:
        return [Problem(name, "scenario.start", "trace of another run (validly signed, but its note names "
                                                + "; ".join(wrong) + ")")]
    bound = note.get("evidence", {})
    if bound != manifest["evidence"]:
        reqs = sorted(r for r in set(members(bound)) | set(manifest["evidence"])
                      if members(bound).get(r) != manifest["evidence"].get(r))
        return [Problem(name, "scenario.start.evidence", "the evidence this run bound in its signed note differs from "
                                                         f"the manifest's for {', '.join(reqs) or 'its listing'} "
                                                         "(files swapped, added or removed after the run)")]
    return _faults_problems(name, scenario, doc) or _steps_problems(name, scenario, doc)


def _run_problems(name: str, scenario: str, session: dict[str, Any], manifest: dict[str, Any]) -> list[Problem]:
    """The session's run, as the sandbox signed it, must be the manifest's run, for this trace's scenario: the same
    id (the sandbox made it: traces of several runs cannot be mixed), wave and category, the same attempt number and
    the same seed source (the manifest cannot hide earlier attempts, nor a seed the vendor chose), and a seed
    commitment the manifest's seed matches (the seed is the one the sandbox drew, and kept secret until the run was
    finished)."""
    run = session.get("run")
    if not isinstance(run, dict):
        return [Problem(name, "session.run", "the session belongs to no run issued by the sandbox (created without "
                                             "run_id and scenario): it cannot be evidence of this run")]
    expected = {"id": manifest["run_id"], "wave": manifest["wave"], "category": manifest["category"],
                "seed_source": manifest["seed_source"], "attempt": manifest["attempt"], "scenario": scenario}
    wrong = [f"{'run_id' if k == 'id' else k} {run.get(k)!r} (expected {v!r})" for k, v in expected.items()
             if run.get(k) != v]
    if not wrong and run.get("seed_commitment") != seed_commitment(read_seed(manifest["seed"])):
        # the seed the sandbox committed to when it issued the run (secret until its finish) is not the manifest's
        return [Problem(name, "session.run", f"the manifest's seed {manifest['seed']} is not the one the sandbox "
                                             "committed to when it issued the run (its seed_commitment, signed in the "
                                             "trace): the seed is not the sandbox's, or the trace is of an older "
                                             "sandbox that answered a run's seed at once")]
    if wrong:
        return [Problem(name, "session.run", "trace of another run or attempt (validly signed, but the sandbox "
                                             "recorded its session's run with " + "; ".join(wrong) + ")")]
    return []


#: driver failures after which a scenario stops (``Runner._steps``): its later faults are never set
_STOPPING = ("crash", "timeout", "unreachable")


def _faults_problems(name: str, scenario: str, doc: dict[str, Any]) -> list[Problem]:
    """The faults the sandbox recorded setting in the session (its own notes) must be the scenario's, in its order:
    the harness runs on the vendor's machine, and a check's situation often is a fault (a max-age of 0, a 503).
    Fewer (the first ones) only when the scenario stopped before the next: its driver failed for good in one of the
    steps that come before that fault, and no later step is in the trace."""
    steps = SCENARIOS.get(scenario).steps
    planned = [step.faults for step in steps if isinstance(step, SetFaults)]
    exchanges = [e for e in doc.get("exchanges") or () if isinstance(e, dict)]
    faults = [i for i, e in enumerate(exchanges) if e.get("kind") == "note" and e.get("note") == FAULTS_NOTE]
    recorded = [members(exchanges[i].get("data")).get("set") for i in faults]
    if recorded == planned:
        return []
    if recorded == planned[:len(recorded)]:
        # the steps between the last fault set and the first one missing: the only ones that may have run since
        segment = [k for k, step in enumerate(steps) if isinstance(step, SetFaults)]
        lo = segment[len(recorded) - 1] if recorded else -1
        allowed = {(step.action, step.name) for step in steps[lo + 1:segment[len(recorded)]] if isinstance(step, Perform)}
        if _stopped(exchanges[faults[-1] + 1:] if faults else exchanges, allowed):
            return []
    return [Problem(name, FAULTS_NOTE, f"the faults set in this session are not scenario {scenario}'s: it plans "
                                       f"{_json(planned)}, the sandbox recorded {_json(recorded)}")]


def _steps_problems(name: str, scenario: str, doc: dict[str, Any]) -> list[Problem]:
    """The trace must show the whole scenario: its ``scenario.end`` note, and a ``driver.perform`` note for each of
    its steps, in order (fewer only when the driver failed for good). A harness fetches its session's signed trace
    whenever it likes: a trace fetched before a step that fails would otherwise pass for the whole scenario, and
    checks that read every trace of the run would judge only what the other scenarios exercised."""
    exchanges = [e for e in doc.get("exchanges") or () if isinstance(e, dict)]
    notes = [e for e in exchanges if e.get("kind") == "note"]
    ends = [members(e.get("data")).get("scenario") for e in notes if e.get("note") == "scenario.end"]
    if ends != [scenario]:
        return [Problem(name, "scenario.end", f"{len(ends)} scenario.end notes for {scenario} (expected exactly one): "
                                              "a trace fetched before the scenario ended")]
    planned = [(step.action, step.name) for step in SCENARIOS.get(scenario).steps if isinstance(step, Perform)]
    performed = [(d.get("action"), d.get("name")) for d in
                 (members(e.get("data")) for e in notes if e.get("note") == "driver.perform")]
    if performed == planned or (performed == planned[:len(performed)] and _stopped(exchanges, set(performed))):
        return []
    return [Problem(name, "driver.perform", f"the trace records {len(performed)} of the {len(planned)} steps of "
                                            f"scenario {scenario}, not in its order or cut short without a driver "
                                            "failure")]


def _stopped(after: list[dict[str, Any]], allowed: set[tuple[Any, Any]]) -> bool:
    """Whether the scenario stopped within the steps ``allowed``: every step noted in ``after`` is one of them, and
    its driver failed for good (at start, at initialize, or in one of those steps)."""
    performed = [members(e.get("data")) for e in after if e.get("kind") == "note" and e.get("note") == "driver.perform"]
    if any((d.get("action"), d.get("name")) not in allowed for d in performed):
        return False
    return any(e.get("kind") == "note" and e.get("note") == "driver.failure" for e in after) or \
        any(members(d.get("failure")).get("kind") in _STOPPING for d in performed)


def evidence_problems(archive: BundleArchive, manifest: dict[str, Any], plan: Plan) -> list[Problem]:
    """The manifest's evidence: for document/manual requirements of the plan, each file a listed member of
    an allowed type (judged again from its bytes), within bounds; no evidence member left unlisted."""
    out: list[Problem] = []
    applicable = {p.id: p.applied for p in plan.requirements}
    listed: set[str] = set()
    total = count = 0
    for req, files in sorted(manifest["evidence"].items()):
        where = f"evidence.{req}"
        applied = applicable.get(req)
        if applied is None:
            out.append(Problem(MANIFEST, where, f"evidence for {req}, which {plan.wave} {plan.category} does not apply"))
        elif applied.requirement.proof.method == "automated":
            out.append(Problem(MANIFEST, where, f"evidence for {req}, which is proven by automated checks: its verdict "
                                                "is re-derived from the traces, never reviewed"))
        for i, f in enumerate(files):
            listed.add(f["file"])
            total, count = total + f["bytes"], count + 1
            if not f["file"].startswith(f"{ev.PREFIX}{req}/"):
                out.append(Problem(MANIFEST, f"{where}[{i}].file", f"{f['file']!r} is not under {ev.PREFIX}{req}/"))
            entry = manifest["files"].get(f["file"])
            if entry is None or (entry["sha256"], entry["bytes"]) != (f["sha256"], f["bytes"]):
                out.append(Problem(MANIFEST, f"{where}[{i}]", f"{f['file']} is not a member of the bundle with this "
                                                              "hash and size"))
                continue
            data = archive.members.get(f["file"])
            if data is None:
                continue  # missing or unsafe: already a reason
            try:
                media_type = ev.sniff(data)
            except InputError as exc:
                out.append(Problem(f["file"], "", exc.problems[0].message))
                continue
            if media_type != f["media_type"]:
                out.append(Problem(f["file"], "", f"is {media_type}, the manifest says {f['media_type']}"))
    for name in sorted(n for n in manifest["files"] if n.startswith(ev.PREFIX) and n not in listed):
        out.append(Problem(name, "", "evidence file that the manifest's evidence does not list for any requirement"))
    if count > ev.MAX_FILES or total > ev.MAX_TOTAL_BYTES:
        out.append(Problem(MANIFEST, "evidence", f"{count} evidence files, {total} bytes: more than the "
                                                 f"{ev.MAX_FILES} files or {ev.MAX_TOTAL_BYTES} bytes allowed"))
    return out


def _referential_problems(manifest: dict[str, Any], plan: Plan) -> list[Problem]:
    pinned, claimed = plan.referential_versions(), manifest["referentials"]
    out = []
    for rid in sorted(set(pinned) | set(claimed)):
        if claimed.get(rid) != pinned.get(rid):
            out.append(Problem(MANIFEST, f"referentials.{rid}",
                               f"{plan.wave} {plan.category} pins {rid} {pinned.get(rid, '(not pinned)')}, "
                               f"the bundle was run against {claimed.get(rid, '(absent)')}"))
    return out


def _report_problems(report: dict[str, Any], manifest: dict[str, Any], identity: dict[str, str]) -> list[Problem]:
    """The report's run identity against the manifest's and the traces' (``identity``)."""
    out = []
    for key in ("wave", "category", "seed", "run_id", "seed_source", "attempt", "referentials", "harness", "evidence"):
        if report.get(key) != manifest[key]:
            out.append(Problem(REPORT, key, f"{_json(report.get(key))} differs from the manifest's {_json(manifest[key])}"))
    if report["vendor"] != identity:
        diff = sorted(k for k in set(identity) | set(report["vendor"]) if report["vendor"].get(k) != identity.get(k))
        out.append(Problem(REPORT, "vendor", f"vendor identity differs from the traces' on {', '.join(diff)}"))
    return out


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def verify_bundle(path: Path, catalog: Catalog, keys: KeyRing, limits: ZipLimits = DEFAULT_LIMITS) -> Verification:
    """Verify a bundle; InputError only when it is not a readable zip (every other problem is a reason)."""
    register_all()  # the checks the agency re-runs must be registered
    archive = open_bundle(path, limits)
    v = Verification(path, archive.sha256, utc_now(), list(archive.problems))
    reasons = v.reasons
    raw = archive.members.get(MANIFEST)
    if raw is None:
        if repr(MANIFEST) not in {p.where for p in archive.problems}:
            reasons.append(Problem(MANIFEST, "", "the bundle has no manifest.json"))
        return v
    manifest = parse_json(raw, MANIFEST, reasons)
    if manifest is None:
        return v
    found = schema_problems("bundle-manifest", manifest, MANIFEST)
    if found:
        reasons.extend(found)
        return v
    v.manifest = manifest
    check_files(archive, manifest, reasons)
    try:
        plan = make_plan(catalog, manifest["wave"], manifest["category"])
    except InputError as exc:
        reasons.extend(Problem(MANIFEST, p.where, p.message) for p in exc.problems)
        return v
    v.plan = plan
    if not plan.scenarios:
        # the harness issues no run for such a plan (attempt 0): its run id, seed source, attempt and time would be
        # the vendor's word alone, which a patched harness writes as it likes (attempt 1, a sandbox seed)
        reasons.append(Problem(MANIFEST, "run_id", f"wave {plan.wave} category {plan.category} plays no scenario: no "
                                                   "run issued by the sandbox, nor any trace it signed, binds this "
                                                   "bundle's run id, seed, attempt or time; it is not evidence of a "
                                                   "run and cannot be labelled"))
    reasons.extend(_referential_problems(manifest, plan))
    reasons.extend(evidence_problems(archive, manifest, plan))
    v.evidence_data = {f.file: archive.members[f.file] for f in v.evidence if f.file in archive.members}
    _verify_run(v, archive, manifest, plan, keys)
    return v


def _verify_run(v: Verification, archive: BundleArchive, manifest: dict[str, Any], plan: Plan, keys: KeyRing) -> None:
    """Traces, report, coverage and re-derivation (the manifest and plan are known)."""
    reasons = v.reasons
    traces: dict[str, dict[str, Any]] = {}
    rejected: set[str] = set()
    for name in sorted(n for n in manifest["files"] if n.startswith("traces/")):
        scenario = name[len("traces/"):-len(".json")]
        if scenario not in plan.scenarios:
            reasons.append(Problem(name, "", f"trace of scenario {scenario!r}, which {plan.wave} {plan.category} "
                                             "does not run"))
            continue
        data = archive.members.get(name)  # a missing or unsafe member is already a reason
        signed = parse_json(data, name, reasons) if data is not None else None
        doc, found = None, []
        if signed is not None:
            try:
                doc = verify_document(signed, keys, source=name)
            except SignatureError as exc:
                found = exc.problems
        if doc is not None:
            found = trace_problems(name, scenario, doc, manifest, keys)
        reasons.extend(found)
        if doc is None or found:
            rejected.add(scenario)
        else:
            traces[scenario] = doc
    created = sorted(str(t["session"].get("created")) for t in traces.values() if t.get("session", {}).get("created"))
    v.run_started = created[0] if created else None
    v.longest = longest_scenario(traces)
    identity = next((_start_vendor(t) for t in traces.values()), None) or {
        **manifest_identity(manifest), "category": manifest["category"]}
    v.verdicts = rederive.rederive(plan, eval_context(plan, identity), traces)
    v.rows = rederive.rows_for(plan, v.verdicts)
    report = _load_report(archive, reasons)
    if report is None:
        return
    v.report = report
    reasons.extend(_report_problems(report, manifest, identity))
    reasons.extend(_scenario_problems(report, manifest, traces, plan))
    claimed_rows = rows_of(report)  # schema-valid: every row field present and of its type
    covered = {r.id for r in claimed_rows}
    planned = [p.id for p in plan.requirements]
    missing = [r for r in planned if r not in covered]
    if missing:
        reasons.append(Problem(REPORT, "requirements", f"the run does not cover {len(missing)} applicable "
                                                       f"requirement(s) of {plan.wave} {plan.category}: {', '.join(missing)}"))
    extra = sorted(covered - set(planned))
    if extra:
        reasons.append(Problem(REPORT, "requirements", f"requirement(s) {', '.join(extra)} do not apply to "
                                                       f"{plan.wave} {plan.category}"))
    skip_checks = {c for c in plan.checks
                   if set(CHECKS.get(c).scenarios) & rejected or (rejected and CHECKS.get(c).reads_all)}
    skip_rows = {p.id for p in plan.requirements if set(p.checks) & skip_checks}
    expected = {c for p in plan.requirements if p.id in covered for c in p.checks}
    reasons.extend(rederive.compare_checks(report["checks"], v.verdicts, expected, skip_checks))
    reasons.extend(rederive.compare_rows(claimed_rows, v.rows, skip_rows))
    if not skip_checks and not missing:
        reasons.extend(rederive.compare_summary(summary_of(report), v.rows))
    if not rejected:
        reasons.extend(rederive.compare_problems(report.get("problems", []), traces))
    reasons.extend(rendered_problems(archive, report, traces))


def rendered_problems(archive: BundleArchive, report: dict[str, Any], traces: dict[str, dict[str, Any]]) -> list[Problem]:
    """junit.xml and report.html must be exactly what report.json and the traces render to (no fake green page)."""
    from conformity.reporting.html import report_html
    from conformity.reporting.junit import junit_xml

    out = []
    renderers: tuple[tuple[str, Callable[[], bytes]], ...] = (
        ("junit.xml", lambda: junit_xml(report)), ("report.html", lambda: report_html(report, traces).encode()))
    for name, render in renderers:
        data = archive.members.get(name)
        if data is not None and data != render():
            out.append(Problem(name, "", "differs from what report.json and the traces render to (edited after the run?)"))
    return out


def _start_vendor(trace: dict[str, Any]) -> dict[str, str] | None:
    for e in trace.get("exchanges", ()):
        if e.get("kind") == "note" and e.get("note") == "scenario.start":
            return dict(e["data"]["vendor"])
    return None


def _load_report(archive: BundleArchive, reasons: list[Problem]) -> dict[str, Any] | None:
    data = archive.members.get(REPORT)
    if data is None:
        return None
    report = parse_json(data, REPORT, reasons)
    if report is None:
        return None
    found = schema_problems("report", report, REPORT)
    reasons.extend(found)
    return None if found else report


def _scenario_problems(report: dict[str, Any], manifest: dict[str, Any], traces: dict[str, dict[str, Any]],
                       plan: Plan) -> list[Problem]:
    """The report's scenarios name exactly the bundle's traces, with the sessions the traces record."""
    out = []
    listed = {n for n in manifest["files"] if n.startswith("traces/")}
    named = set()
    for i, s in enumerate(report["scenarios"]):
        if s["trace"] is None:
            continue
        named.add(s["trace"])
        if s["trace"] != f"traces/{s['id']}.json" or s["trace"] not in listed:
            out.append(Problem(REPORT, f"scenarios[{i}].trace", f"names {s['trace']!r}, not a trace of the bundle"))
        elif s["id"] in traces and traces[s["id"]]["session"].get("id") != s["session_id"]:
            out.append(Problem(REPORT, f"scenarios[{i}].session_id",
                               f"session {s['session_id']!r} is not the session of the trace "
                               f"({traces[s['id']]['session'].get('id')!r})"))
    for name in sorted(listed - named):
        out.append(Problem(name, "", "trace that the report's scenarios do not name"))
    return out

