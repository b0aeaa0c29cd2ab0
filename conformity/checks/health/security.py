"""Checks: security baseline (SECURITY-001/002/005/006, PRACAUTH-014/015/020, MESSAGING-006).

TLS: a request reaches the sandbox, and so its trace, only through a completed TLS handshake; each
request records the Host the software addressed, so the trace shows which listeners (trusted,
untrusted certificate, TLS 1.1 only) the software really talked to. Tokens: the trace holds the
hash prefix of every token the provider issued and of every Bearer credential presented.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from conformity.checks.evaluate import EvalContext
from conformity.checks.health.pracauth import NOMINAL, REDACTED, issued
from conformity.checks.helpers import output_of, performed, quote, step_exchanges
from conformity.checks.model import Finding, Verdict, errored, failed, passed
from conformity.checks.registry import check
from conformity.checks.trace import Exchange, Note, TraceView
from conformity.packs.health.ins import normalise_name

TLS = "security.tls_endpoints"
LEGACY_VERSIONS = ("TLSv1.1", "TLSv1", "TLSv1.0", "SSLv3", "SSLv2")
#: services that accept the provider's access token (the provider itself only at userinfo)
TOKEN_AUDIENCE = ("insi", "dmp", "mss", "directory")
#: query parameters that are credentials wherever they appear
SECRET_PARAMS = ("client_secret", "access_token", "id_token", "refresh_token", "code_verifier", "password", "token")
#: "service:path-prefix" of the GET requests whose interface defines personal data as search parameters
GET_SEARCH_INTERFACES = ("directory:/", "dmp:/patients/", "idp:/authorize")


# TLS ----------------------------------------------------------------------------------------------

def connect_step(trace: TraceView, name: str) -> Note | None:
    notes = performed(trace, "security.connect", name)
    return notes[-1] if notes else None


def host_of(note: Note) -> str:
    return urlsplit(str(note.data.get("input", {}).get("url", ""))).netloc


def reached(trace: TraceView, note: Note) -> list[Exchange]:
    """Requests the software sent to the host of the step's URL (i.e. completed TLS handshakes there)."""
    host = host_of(note)
    return [e for e in trace if e.request_headers().get("host") == host]


def control_connect_findings(trace: TraceView) -> list[Finding]:
    """The software must connect to the trusted endpoint, else refusing the others proves nothing."""
    note = connect_step(trace, "trusted")
    if note is None:
        return [Finding("the connection to the trusted endpoint was not performed")]
    if not [e for e in step_exchanges(trace, note) if e.request_headers().get("host") == host_of(note)]:
        return [Finding("the software did not reach the trusted endpoint either, so refusing the misconfigured ones "
                        "proves nothing", exchange=note.seq, expected="a request through the trusted listener",
                        got=note.data.get("output") or note.data.get("failure"))]
    return []


def refused_findings(trace: TraceView, name: str, what: str) -> list[Finding]:
    """The connection of step ``name`` (to a server with ``what``) must not complete."""
    note = connect_step(trace, name)
    if note is None:
        return [Finding(f"the connection to a server with {what} was not performed")]
    output_of(trace, "security.connect", name)  # MissingEvidence if the driver failed or lacks the action
    found = [quote(e, f"the software completed a TLS handshake with a server with {what} and sent a request",
                   where="request.headers.host", expected="connection refused", got=e.request_headers().get("host"))
             for e in reached(trace, note)]
    out = note.data.get("output") or {}
    if out.get("connected") is True:
        found.append(Finding(f"the software reports it connected to a server with {what}", exchange=note.seq,
                             where="output.connected", expected=False, got=out))
    return found


def missing_listener(trace: TraceView, name: str, what: str) -> Verdict | None:
    """An error verdict when the sandbox had no listener for step ``name`` (the scenario gave a .invalid URL)."""
    note = connect_step(trace, name)
    if note is None or not host_of(note).endswith(".invalid"):
        return None
    return errored(f"this sandbox has no listener with {what}, so the software's refusal of it cannot be verified "
                   "here; run the harness with a sandbox it starts itself (usine run without --sandbox)",
                   url=host_of(note))


@check("tls.untrusted_certificate_refused", verifies=["SECURITY-002", "MESSAGING-006"], scenario=TLS)
def untrusted_certificate_refused(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A server certificate that does not chain to the configured trust anchors is refused."""
    missing = missing_listener(trace, "untrusted", "an untrusted certificate")
    if missing is not None:
        return missing
    findings = control_connect_findings(trace) + refused_findings(trace, "untrusted", "a self-signed certificate")
    if findings:
        return failed(*findings)
    return passed("the self-signed certificate was refused; the trusted endpoint was reached")


@check("tls.version_min", verifies=["SECURITY-001", "MESSAGING-006"], scenario=TLS)
def version_min(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A server offering only TLS 1.1 is refused (TLS 1.2 minimum)."""
    missing = missing_listener(trace, "legacy_tls", "only TLS 1.1 (a sandbox started elsewhere, or a TLS library "
                               "that no longer offers TLS 1.1)")
    if missing is not None:
        return missing
    note = connect_step(trace, "legacy_tls")
    findings = control_connect_findings(trace) + refused_findings(trace, "legacy_tls", "only TLS 1.1")
    out = (note.data.get("output") or {}) if note else {}
    if out.get("tls_version") in LEGACY_VERSIONS:
        findings.append(Finding("the software negotiated an old protocol version", exchange=note.seq if note else None,
                                where="output.tls_version", expected="TLSv1.2 or TLSv1.3", got=out["tls_version"]))
    if findings:
        return failed(*findings)
    return passed("the TLS 1.1-only server was refused; the trusted endpoint was reached")


# tokens -------------------------------------------------------------------------------------------

def token_kinds(trace: TraceView) -> dict[str, str]:
    """Hash prefix → kind (access, id, refresh) of every token the provider issued."""
    kinds = {}
    for i in issued(trace):
        for kind, value in (("access", i.access), ("id", i.id_token), ("refresh", i.refresh)):
            if value:
                kinds[value] = kind
    return kinds


def bearer_findings(e: Exchange, kinds: dict[str, str]) -> list[Finding]:
    """A Bearer credential must be an access token of this session, presented to its audience."""
    auth = e.auth or {}
    kind = kinds.get(str(auth.get("token_sha256")))
    where = f"{e.service} {e.method} {e.local_path}"
    if kind == "id":
        return [quote(e, f"the software sent the ID token as a Bearer credential to {where}", where="request.auth",
                      expected="the access token", got=auth)]
    if kind == "refresh":
        return [quote(e, f"the software sent the refresh token as a Bearer credential to {where}", where="request.auth",
                      expected="refresh tokens only at the token endpoint", got=auth)]
    if kind is None or auth.get("session") != "same":
        return [quote(e, f"the software presented a Bearer credential the provider did not issue in this session "
                         f"to {where}", where="request.auth", expected="this session's access token", got=auth)]
    if e.service == "idp" and e.local_path != "/userinfo":
        return [quote(e, f"the software sent the access token to the provider's {e.local_path} endpoint",
                      where="request.auth", expected="only userinfo at the provider", got=auth)]
    if e.service != "idp" and e.service not in TOKEN_AUDIENCE:
        return [quote(e, f"the software sent the access token to {e.service}, outside its audience",
                      where="request.auth", expected=list(TOKEN_AUDIENCE), got=e.service)]
    return []


def forwarded_findings(e: Exchange, kinds: dict[str, str]) -> list[Finding]:
    """Issued tokens must not travel in URLs, headers or bodies (refresh tokens: token endpoint form only)."""
    found = []
    parts = {"request.path": e.path, "request.query": e.query, "request.headers": e.request_headers(),
             "request.body": e.raw["request"].get("body", {})}
    for where, value in parts.items():
        for h in REDACTED.findall(json.dumps(value, ensure_ascii=False)):
            kind = kinds.get(h)
            if kind is None:
                continue
            if kind == "refresh" and e.service == "idp" and e.local_path == "/token" and where == "request.body":
                continue
            found.append(quote(e, f"the software forwarded the {kind} token in {where} of a request to "
                                  f"{e.service} {e.local_path}", where=where, expected="not forwarded",
                               got=f"sha256:{h}"))
    return found


@check("token.audience_restricted", verifies=["PRACAUTH-014", "PRACAUTH-020", "SECURITY-005"], scenario=NOMINAL)
def audience_restricted(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Access tokens go only to userinfo and the services; ID and refresh tokens are never Bearer credentials."""
    kinds = token_kinds(trace)
    if not kinds:
        return failed(Finding("the provider issued no token in this scenario: the software did not log in"))
    uses = [e for e in trace if (e.auth or {}).get("scheme") == "Bearer"]
    findings = [f for e in uses for f in bearer_findings(e, kinds)]
    findings += [f for e in trace for f in forwarded_findings(e, kinds)]
    if findings:
        return failed(*findings)
    services = [e for e in uses if e.service in TOKEN_AUDIENCE]
    if not services:
        return failed(Finding("the software never presented its access token to a national service in this "
                              "scenario, so where it sends tokens is not shown"))
    refresh = "" if "refresh" in kinds.values() else " (the provider issued no refresh token)"
    return passed(f"{len(uses)} Bearer use(s), all of this session's access token at userinfo or a service{refresh}")


# URLs ---------------------------------------------------------------------------------------------

def personal_values(trace: TraceView) -> dict[str, str]:
    """Personal data the scenario handled → what it is: patients' INS, names and birth dates (typed or
    registered), practitioners' national ids."""
    values: dict[str, str] = {}
    for p in trace.fixtures.get("patients", ()):
        if p.get("ins"):
            values[p["ins"]] = "an INS"
        for traits in (p.get("traits", {}), p.get("registered_traits", {})):
            for name in ("birth_name", "first_names"):
                if len(str(traits.get(name, ""))) >= 4:
                    values[normalise_name(str(traits[name]))] = f"a patient's {name}"
            if traits.get("birth_date"):
                values[str(traits["birth_date"])] = "a patient's birth_date"
    for p in trace.fixtures.get("practitioners", ()):
        if p.get("national_id"):
            values[str(p["national_id"])] = "a practitioner's national id"
    for note in performed(trace, "patient.lookup"):
        given = note.data.get("input", {})
        for name in ("birth_name", "first_names"):
            if len(normalise_name(str(given.get(name, "")))) >= 4:
                values[normalise_name(str(given[name]))] = f"a patient's {name}"
        if given.get("birth_date"):
            values[str(given["birth_date"])] = "a patient's birth_date"
    return values


def search_interface(e: Exchange, ctx: EvalContext) -> bool:
    """A GET whose interface defines personal data as search parameters (SECURITY-006's exception)."""
    allowed = ctx.param("SECURITY-006", "get_search_interfaces", GET_SEARCH_INTERFACES)
    return e.method == "GET" and any(e.service == a.split(":", 1)[0] and e.local_path.startswith(a.split(":", 1)[1])
                                     for a in allowed)


def url_findings(e: Exchange, personal: dict[str, str], ctx: EvalContext) -> list[Finding]:
    """Secrets anywhere in the URL; personal data in the URL outside a search interface."""
    url = e.path + "?" + json.dumps(e.query, ensure_ascii=False)
    found = []
    secret_params = sorted(set(e.query) & set(SECRET_PARAMS))
    if secret_params or REDACTED.search(url):
        found.append(quote(e, "a credential (token or client secret) is in the URL", where="request.query",
                           expected="credentials in headers or bodies only", got=secret_params or "redacted secret"))
    if not search_interface(e, ctx):
        folded = normalise_name(url)
        hits = sorted({what for value, what in personal.items()
                       if value in url or (len(value) >= 6 and value in folded)})
        if hits:
            found.append(quote(e, f"personal data ({', '.join(hits)}) is in the URL of {e.method} {e.local_path}",
                               where="request.path/query", expected="personal data in the request body", got=e.path))
    return found


@check("http.no_sensitive_data_in_url", verifies=["SECURITY-006", "PRACAUTH-015"], scenario=NOMINAL)
def no_sensitive_data_in_url(trace: TraceView, ctx: EvalContext) -> Verdict:
    """No token, client secret or patient data in the path or query of any request."""
    exchanges = list(trace)
    if not exchanges:
        return failed(Finding("the software sent no request in this scenario"))
    personal = personal_values(trace)
    findings = [f for e in exchanges for f in url_findings(e, personal, ctx)]
    if findings:
        return failed(*findings)
    return passed(f"{len(exchanges)} request URL(s) free of credentials and patient data")

