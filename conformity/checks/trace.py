"""A read-only view of a recorded, signed session trace, for checks to query."""

from __future__ import annotations

import base64
import bisect
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

T = TypeVar("T")

#: a signed trace's format (the sandbox writes it, ``sandbox.traces``; the agency checks it, ``agency.verify``)
TRACE_FORMAT = "usine.trace/1"
#: the note the sandbox itself writes when a session's faults change (what was asked, what is in force): the agency
#: compares them with the scenario's plan
FAULTS_NOTE = "sandbox.faults"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One recorded HTTP exchange between the software and a sandbox service."""

    raw: dict[str, Any]
    scenario: str = ""  #: the scenario whose trace holds it (set when a check reads every scenario)

    @property
    def seq(self) -> int:
        return cast("int", self.raw["seq"])

    @property
    def service(self) -> str:
        return cast("str", self.raw.get("service", ""))

    @property
    def method(self) -> str:
        return cast("str", self.raw["request"]["method"])

    @property
    def path(self) -> str:
        return cast("str", self.raw["request"]["path"])

    @property
    def local_path(self) -> str:
        """The path inside the service: ``/s/<sid>/dmp/documents`` → ``/documents``."""
        parts = self.path.split("/", 4)
        return "/" + parts[4] if len(parts) > 4 else "/"

    @property
    def query(self) -> dict[str, list[str]]:
        return cast("dict[str, list[str]]", self.raw["request"].get("query", {}))

    def param(self, name: str) -> str | None:
        """A parameter of the request (first value), read where the services read it: from the form of a POST
        carrying a urlencoded form (a POSTed authorization or token request: the identity provider reads its form
        only), else from the query (a GET's form body is not read). Read query first, a software doing no PKCE passed
        the PKCE check with ``code_challenge`` in the query of its POST and none in the form the provider acted on."""
        form = self.raw["request"].get("body", {}).get("form")
        values = form.get(name) if isinstance(form, dict) and self.method == "POST" else self.query.get(name)
        return values[0] if values else None

    @property
    def status(self) -> int:
        return cast("int", self.raw["response"]["status"])

    @property
    def outcome(self) -> str:
        return cast("str", self.raw.get("outcome", ""))

    @property
    def details(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.raw.get("outcome_details", {}))

    @property
    def auth(self) -> dict[str, Any] | None:
        return cast("dict[str, Any] | None", self.raw["request"].get("auth"))

    @property
    def request_json(self) -> Any:
        return self.raw["request"].get("body", {}).get("json")

    @property
    def response_json(self) -> Any:
        return self.raw["response"].get("body", {}).get("json")

    @property
    def response_headers(self) -> dict[str, str]:
        return cast("dict[str, str]", self.raw["response"].get("headers", {}))

    def request_headers(self) -> dict[str, str]:
        return cast("dict[str, str]", self.raw["request"].get("headers", {}))

    def request_body_bytes(self) -> bytes:
        body = self.raw["request"].get("body", {})
        if "base64" in body:
            return base64.b64decode(body["base64"])
        if "text" in body:
            return cast("bytes", body["text"].encode())
        if "json" in body:
            return json.dumps(body["json"]).encode()
        return b""


@dataclass(frozen=True, slots=True)
class Note:
    """A harness note in the trace (e.g. a driver action and its output)."""

    raw: dict[str, Any]
    scenario: str = ""

    @property
    def seq(self) -> int:
        return cast("int", self.raw["seq"])

    @property
    def kind(self) -> str:
        return cast("str", self.raw["note"])

    @property
    def data(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.raw.get("data", {}))


class TraceView:
    """Queries over one session trace: exchanges by service/method/path, harness notes."""

    def __init__(self, doc: dict[str, Any], scenario: str = ""):
        self.doc = doc
        self.scenario = scenario
        self._exchanges = [Exchange(e, scenario) for e in doc.get("exchanges", ()) if e.get("kind") == "http"]
        self._notes = [Note(e, scenario) for e in doc.get("exchanges", ()) if e.get("kind") == "note"]
        # sequence numbers, for the windows checks ask for (a step's exchanges: between two notes) by bisection; a
        # trace out of order (an edited one) is searched whole
        self._exchange_seqs = [e.seq for e in self._exchanges]
        self._note_seqs = [n.seq for n in self._notes]
        self._ordered = all(a < b for a, b in zip(self._exchange_seqs, self._exchange_seqs[1:], strict=False)) and \
            all(a < b for a, b in zip(self._note_seqs, self._note_seqs[1:], strict=False))
        self._derived: dict[Callable[[TraceView], Any], Any] = {}

    def derived(self, compute: Callable[[TraceView], T]) -> T:
        """``compute(self)``, made once for this view and given again to every check that asks (``compute`` a pure
        function of the trace; treat its result as read-only)."""
        try:
            return cast("T", self._derived[compute])
        except KeyError:
            value = self._derived[compute] = compute(self)
            return value

    @property
    def fixtures(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.doc.get("fixtures", {}))

    @property
    def session(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.doc.get("session", {}))

    def exchanges(self, service: str | None = None, *, method: str | None = None, path: str | None = None,
                  after: int = 0, before: int | None = None) -> list[Exchange]:
        """Exchanges matching a service, HTTP method, and service-local path prefix, in order."""
        out = []
        window = self._exchanges
        if self._ordered:
            lo = bisect.bisect_right(self._exchange_seqs, after)
            hi = len(window) if before is None else bisect.bisect_left(self._exchange_seqs, before)
            window = window[lo:hi]
        for e in window:
            if service and e.service != service:
                continue
            if method and e.method != method:
                continue
            if path and not e.local_path.startswith(path):
                continue
            if e.seq <= after or (before is not None and e.seq >= before):
                continue
            out.append(e)
        return out

    def note_before(self, seq: int) -> Note | None:
        """The last harness note before sequence number ``seq`` (None: there is none)."""
        if not self._ordered:
            earlier = [n for n in self._notes if n.seq < seq]
            return earlier[-1] if earlier else None
        i = bisect.bisect_left(self._note_seqs, seq)
        return self._notes[i - 1] if i else None

    def notes(self, kind: str | None = None) -> list[Note]:
        return [n for n in self._notes if kind is None or n.kind == kind]

    def performed(self, action: str | None = None) -> list[Note]:
        """The driver actions the harness asked for (notes ``driver.perform``), in order."""
        return [n for n in self.notes("driver.perform") if action is None or n.data.get("action") == action]

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self._exchanges)

    def excerpt(self, seq: int) -> dict[str, Any] | None:
        for e in self.doc.get("exchanges", ()):
            if e.get("seq") == seq:
                return cast("dict[str, Any] | None", e)
        return None


class TraceViews:
    """The views of a run's traces, shared by the checks judged on them: each trace's :class:`TraceView` (per
    scenario label) and what is derived from it alone (its step problems) made once, instead of once per check that
    reads it (every check that reads the whole run made one of each of the 19 traces of a wave run). A view is
    read-only, and kept only while it is of the very trace document given (an entry holds its document)."""

    def __init__(self) -> None:
        self._views: dict[tuple[int, str], tuple[dict[str, Any], TraceView]] = {}

    def view(self, doc: dict[str, Any], scenario: str = "") -> TraceView:
        key = (id(doc), scenario)
        found = self._views.get(key)
        if found is None or found[0] is not doc:
            found = self._views[key] = (doc, TraceView(doc, scenario))
        return found[1]

    def derived(self, doc: dict[str, Any], scenario: str, compute: Callable[[TraceView], T]) -> T:
        """``compute(view)`` of a trace, made once (``compute`` a pure function of the view; treat its result as
        read-only)."""
        return self.view(doc, scenario).derived(compute)

    def forget(self, doc: dict[str, Any]) -> None:
        """Drop the views of ``doc`` (a trace judged once, e.g. a mutated copy, need not be kept)."""
        for key in [k for k, (d, _) in self._views.items() if d is doc]:
            del self._views[key]


class RunView:
    """Every scenario trace of a run, for the checks whose rule applies to all of them (``reads_all``).

    Each trace is a :class:`TraceView` whose exchanges and notes know their scenario, so a finding
    quoting one names it (sequence numbers count within one trace).
    """

    def __init__(self, docs: dict[str, dict[str, Any]], shared: TraceViews | None = None):
        view = shared.view if shared is not None else TraceView
        self.traces = {sid: view(doc, sid) for sid, doc in sorted(docs.items())}

    def __iter__(self) -> Iterator[TraceView]:
        return iter(self.traces.values())

    def get(self, scenario: str) -> TraceView | None:
        return self.traces.get(scenario)

    def exchanges(self) -> Iterator[Exchange]:
        """Every recorded HTTP exchange of every scenario."""
        for trace in self:
            yield from trace


def views(subject: TraceView | RunView) -> list[TraceView]:
    """The traces a check reads: its scenario's, or every one of a :class:`RunView`."""
    return [subject] if isinstance(subject, TraceView) else list(subject)
