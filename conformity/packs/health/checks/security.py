"""Checks: security baseline (SECURITY-001/002/005/006/014/015, PRACAUTH-014/015/020, MESSAGING-006).

TLS: a request reaches the sandbox, and so its trace, only through a completed TLS handshake; each
request records the Host the software addressed, so the trace shows which listeners (trusted, and one
per bad server of the negative catalogue) the software really talked to. MESSAGING-006 is judged on
messages sent to a messaging service whose endpoint is on a bad listener. Tokens and URLs: every
exchange of every scenario; the trace holds the hash prefix of every token the provider issued, of
the client secret and of every Bearer credential presented.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import as_token, noted, output_of, performed, quote, step_exchanges
from conformity.checks.model import Finding, Missing, Verdict, about, errored, failed, judged, not_exercised, passed
from conformity.checks.oidc import REDACTED, issued
from conformity.checks.registry import check
from conformity.checks.trace import Exchange, Note, RunView, TraceView
from conformity.packs.health.checks.evidence import step_label
from conformity.packs.health.checks.pracauth import IDP, NOMINAL
from conformity.packs.health.ins import normalise_name

TLS = "security.tls_endpoints"
MESSAGING_SELF_SIGNED, MESSAGING_LEGACY, MESSAGING = "messaging.tls_self_signed", "messaging.tls_legacy", "messaging.send"
LEGACY_VERSIONS = ("TLSv1.1", "TLSv1", "TLSv1.0", "SSLv3", "SSLv2")
#: the bad servers each rule is judged on (listener classes of sandbox.tls), with what is wrong with them
UNTRUSTED = {"self_signed": "a self-signed certificate", "untrusted_root": "a certificate of an untrusted root",
             "expired": "an expired certificate", "not_yet_valid": "a certificate not yet valid",
             "wrong_host": "a certificate for another host name",
             "incomplete_chain": "a certificate whose chain does not reach a trust anchor (intermediate missing)"}
LEGACY = {"tls1_0": "only TLS 1.0", "tls1_1": "only TLS 1.1"}
WEAK_CERTIFICATES = {"weak_key": "a certificate for a 1024-bit RSA key", "weak_signature": "a certificate signed "
                     "with SHA-1"}
WEAK_CIPHERS = {"cipher_null": "only cipher suites without encryption", "cipher_static_rsa": "only cipher suites "
                "without forward secrecy (RSA key exchange)", "cipher_cbc_sha1": "only CBC cipher suites with SHA-1 MACs"}
#: services that accept the provider's access token (the provider itself only at userinfo)
TOKEN_AUDIENCE = ("insi", "dmp", "mss", "directory")
#: query parameters that are credentials wherever they appear
SECRET_PARAMS = ("client_secret", "access_token", "id_token", "refresh_token", "code_verifier", "password", "token")
#: "service:path-prefix" of the GET requests whose interface defines personal data as search parameters
GET_SEARCH_INTERFACES = ("directory:/", "dmp:/patients/", "idp:/authorize")
#: what each of those interfaces defines as search parameters, the only part of its URL personal data may be in
#: (SECURITY-006): the directory searches' query parameters, the patient id in the path of a patient's documents, the
#: authorization request's login_hint; an interface not named here is exempt as a whole
SEARCH_PARAMETERS = {"directory:/": "query", "dmp:/patients/": "path", "idp:/authorize": "query.login_hint"}


# TLS ----------------------------------------------------------------------------------------------

def connect_step(trace: TraceView, name: str) -> Note | None:
    notes = performed(trace, "security.connect", name)
    return notes[-1] if notes else None


def host_of(url: str) -> str:
    return urlsplit(url).netloc


def reached(trace: TraceView, host: str, after: int = 0, before: int | None = None) -> list[Exchange]:
    """Requests the software sent to ``host`` (i.e. completed TLS handshakes with that listener)."""
    return [e for e in trace.exchanges(after=after, before=before) if e.request_headers().get("host") == host]


def control_connect_findings(trace: TraceView) -> list[Finding]:
    """The software must connect to the trusted endpoint, else refusing the others proves nothing."""
    note = connect_step(trace, "trusted")
    if note is None:
        return [Missing("the connection to the trusted endpoint was not performed")]
    if not reached(trace, host_of(str(note.data.get("input", {}).get("url", ""))), before=note.seq):
        return [Finding("the software did not reach the trusted endpoint either, so refusing the misconfigured ones "
                        "proves nothing", exchange=note.seq, scenario=note.scenario,
                        expected="a request through the trusted listener",
                        got=note.data.get("output") or note.data.get("failure"))]
    return []


def refused_findings(trace: TraceView, name: str, what: str) -> list[Finding]:
    """The connection of step ``name`` (to a server with ``what``) must not complete."""
    note = connect_step(trace, name)
    if note is None:
        return [Missing(f"the connection to a server with {what} was not performed")]
    output_of(trace, "security.connect", name)  # MissingEvidence if the driver failed or lacks the action
    found = [quote(e, f"the software completed a TLS handshake with a server with {what} and sent a request",
                   where="request.headers.host", expected="connection refused", got=e.request_headers().get("host"))
             for e in reached(trace, host_of(str(note.data.get("input", {}).get("url", ""))))]
    out = note.data.get("output") or {}
    if out.get("connected") is True:
        found.append(Finding(f"the software reports it connected to a server with {what}", exchange=note.seq,
                             scenario=note.scenario, where="output.connected", expected=False, got=out))
    return found


def missing_listeners(trace: TraceView, classes: dict[str, str]) -> list[str]:
    """The classes this sandbox had no listener for (the scenario gave an ``.invalid`` URL)."""
    out = []
    for name in classes:
        note = connect_step(trace, name)
        if note is not None and host_of(str(note.data.get("input", {}).get("url", ""))).endswith(".invalid"):
            out.append(name)
    return out


def catalogue_verdict(trace: TraceView, classes: dict[str, str], requirement: str) -> Verdict:
    """Every bad server of ``classes`` refused (findings naming ``requirement``), the trusted one reached."""
    missing = missing_listeners(trace, classes)
    if missing:
        return errored(f"this sandbox has no listener for {', '.join(missing)}, so the software's refusal cannot be "
                       "verified here; run the harness with a sandbox it starts itself (usine run without --sandbox) "
                       "on a platform whose OpenSSL serves them", classes=missing)
    findings = control_connect_findings(trace)
    for name, what in classes.items():
        findings += refused_findings(trace, name, what)
    return judged(about([requirement], findings),
                  f"{len(classes)} bad server(s) refused ({', '.join(classes)}); the trusted endpoint was reached")


def messaging_findings(run: RunView, scenario: str, what: str) -> list[Finding] | Verdict:
    """No message reaches the messaging service whose endpoint is on a server with ``what`` (MESSAGING-006), while
    messages do reach it on the trusted listener (scenario messaging.send)."""
    trace = run.get(scenario)
    assert trace is not None
    init = trace.notes("driver.initialize")
    endpoint = str((init[-1].data.get("endpoints") or {}).get("mss", "")) if init else ""
    if host_of(endpoint).endswith(".invalid"):
        return errored(f"this sandbox has no listener with {what} for the messaging service, so the refusal cannot "
                       "be verified here", endpoint=endpoint)
    findings = []
    for note in performed(trace, "message.send"):
        for e in step_exchanges(trace, note, "mss"):
            findings.append(quote(e, f"{step_label(note)}: the software sent the message over a connection to a server "
                                     f"with {what}", where="request.headers.host", expected="no connection",
                                  got=e.request_headers().get("host")))
        if (note.data.get("output") or {}).get("status") == "sent":
            findings.append(noted(note, f"{step_label(note)}: the software reports the message sent to a server with "
                                        f"{what}", where="output.status", expected="error", got="sent"))
    if not performed(trace, "message.send"):
        findings.append(Missing(f"the scenario {scenario} never asked to send a message"))
    control = run.get(MESSAGING)
    if control is not None and not [e for e in control.exchanges("mss", method="POST") if e.status in (200, 201, 202)]:
        findings.append(Missing("no message reached the messaging service over the trusted listener either, so "
                                "refusing the misconfigured one proves nothing", scenario=MESSAGING))
    return about(["MESSAGING-006"], findings)


def tls_verdict(run: RunView, classes: dict[str, str], requirement: str, scenario: str, what: str) -> Verdict:
    """SECURITY-00x on the connect steps, MESSAGING-006 on the messages, in one verdict (each finding names its own)."""
    trace = run.get(TLS)
    assert trace is not None
    connections = catalogue_verdict(trace, classes, requirement)
    messages = messaging_findings(run, scenario, what)
    if connections.status == "error":
        return connections
    if isinstance(messages, Verdict):
        return messages
    if connections.status == "fail" or [m for m in messages if not isinstance(m, Missing)]:
        return judged([*(connections.findings if connections.status == "fail" else ()), *messages], "")
    if connections.status == "not-exercised" or messages:
        return not_exercised(*(connections.findings if connections.status == "not-exercised" else ()), *messages)
    return passed(connections.findings[0].message + f"; no message sent to a messaging service with {what}")


@check("tls.untrusted_certificate_refused", verifies=["SECURITY-002", "MESSAGING-006"], scenario=TLS,
       reads=(MESSAGING_SELF_SIGNED, MESSAGING))
def untrusted_certificate_refused(run: RunView, ctx: EvalContext) -> Verdict:
    """A server certificate that does not verify against the configured trust anchors is refused: self-signed,
    untrusted root, expired, not yet valid, another host name, incomplete chain (for messages too)."""
    return tls_verdict(run, UNTRUSTED, "SECURITY-002", MESSAGING_SELF_SIGNED, "a self-signed certificate")


@check("tls.version_min", verifies=["SECURITY-001", "MESSAGING-006"], scenario=TLS, reads=(MESSAGING_LEGACY, MESSAGING))
def version_min(run: RunView, ctx: EvalContext) -> Verdict:
    """A server offering only TLS 1.0 or 1.1 is refused (TLS 1.2 minimum), for messages too."""
    trace = run.get(TLS)
    assert trace is not None
    verdict = tls_verdict(run, LEGACY, "SECURITY-001", MESSAGING_LEGACY, "only TLS 1.1")
    old = [n for n in (connect_step(trace, c) for c in LEGACY) if n is not None
           and (n.data.get("output") or {}).get("tls_version") in LEGACY_VERSIONS]
    if verdict.status in ("pass", "fail", "not-exercised") and old:
        extra = [noted(n, "the software negotiated an old protocol version", where="output.tls_version",
                       expected="TLSv1.2 or TLSv1.3", got=n.data["output"]["tls_version"]).about("SECURITY-001")
                 for n in old]
        return failed(*(verdict.findings if verdict.status == "fail" else ()), *extra)  # a breach shown anyway
    return verdict


@check("tls.weak_certificate_refused", verifies=["SECURITY-014"], scenario=TLS)
def weak_certificate_refused(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A server certificate with a weak key (RSA under 2048 bits) or a SHA-1 signature is refused."""
    return catalogue_verdict(trace, WEAK_CERTIFICATES, "SECURITY-014")


@check("tls.weak_cipher_refused", verifies=["SECURITY-015"], scenario=TLS)
def weak_cipher_refused(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A server offering only weak cipher suites (NULL, no forward secrecy, CBC with SHA-1) is refused."""
    return catalogue_verdict(trace, WEAK_CIPHERS, "SECURITY-015")


# tokens -------------------------------------------------------------------------------------------
#
# Who is blamed: PRACAUTH-014 where the access token goes and that the ID token is never a Bearer
# credential; PRACAUTH-020 where the refresh token goes; SECURITY-005 any token presented to, or
# forwarded to, a service other than the one it was issued for (the provider's own endpoints are not
# "another service").

ACCESS, REFRESH, FORWARDED = ("PRACAUTH-014", "SECURITY-005"), ("PRACAUTH-020",), ("SECURITY-005",)


def token_kinds(trace: TraceView) -> dict[str, str]:
    """Hash prefix → kind (access, id, refresh) of every token the provider issued."""
    kinds = {}
    for i in issued(trace, IDP.service):
        for kind, value in (("access", i.access), ("id", i.id_token), ("refresh", i.refresh)):
            if value:
                kinds[value] = kind
    return kinds


def elsewhere(e: Exchange) -> tuple[str, ...]:
    """SECURITY-005 when the request goes to another service than the provider that issued the token."""
    return FORWARDED if e.service != "idp" else ()


def bearer_findings(e: Exchange, kinds: dict[str, str]) -> list[Finding]:
    """A Bearer credential must be an access token of this session, presented to its audience."""
    auth = e.auth or {}
    kind = kinds.get(str(auth.get("token_sha256")))
    where = f"{e.service} {e.method} {e.local_path}"
    if kind == "id":
        return [quote(e, f"the software sent the ID token as a Bearer credential to {where}", where="request.auth",
                      expected="the access token", got=auth).about("PRACAUTH-014", *elsewhere(e))]
    if kind == "refresh":
        return [quote(e, f"the software sent the refresh token as a Bearer credential to {where}", where="request.auth",
                      expected="refresh tokens only at the token endpoint", got=auth).about(*REFRESH, *elsewhere(e))]
    if kind is None or auth.get("session") != "same":
        return [quote(e, f"the software presented a Bearer credential the provider did not issue in this session "
                         f"to {where}", where="request.auth", expected="this session's access token", got=auth)
                .about(*ACCESS)]
    if e.service == "idp" and e.local_path != "/userinfo":
        return [quote(e, f"the software sent the access token to the provider's {e.local_path} endpoint",
                      where="request.auth", expected="only userinfo at the provider", got=auth).about(*ACCESS)]
    if e.service != "idp" and e.service not in TOKEN_AUDIENCE:
        return [quote(e, f"the software sent the access token to {e.service}, outside its audience",
                      where="request.auth", expected=list(TOKEN_AUDIENCE), got=e.service).about(*ACCESS)]
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
                               got=f"sha256:{h}").about(*forwarding_blames(e, kind)))
    return found


def forwarding_blames(e: Exchange, kind: str) -> tuple[str, ...]:
    """Who a token forwarded in a request's content blames: the refresh token's rule, the access token's audience
    (PRACAUTH-014 outside it), and SECURITY-005 for another service (or for an ID token, whose audience is the
    software itself)."""
    if kind == "refresh":
        return REFRESH + elsewhere(e)
    if kind == "access":
        outside = e.service not in TOKEN_AUDIENCE and not (e.service == "idp" and e.local_path == "/userinfo")
        return (("PRACAUTH-014",) if outside else ()) + (elsewhere(e) or (() if outside else FORWARDED))
    return FORWARDED


@check("token.audience_restricted", verifies=["PRACAUTH-014", "PRACAUTH-020", "SECURITY-005"], scenario=NOMINAL,
       reads_all=True)
def audience_restricted(run: RunView, ctx: EvalContext) -> Verdict:
    """Access tokens go only to userinfo and the services; ID and refresh tokens are never Bearer credentials."""
    findings: list[Finding] = []
    issued_any, uses, services = False, 0, 0
    for trace in run:
        kinds = token_kinds(trace)
        issued_any = issued_any or bool(kinds)
        bearers = [e for e in trace if (e.auth or {}).get("scheme") == "Bearer"]
        uses += len(bearers)
        services += sum(e.service in TOKEN_AUDIENCE for e in bearers)
        findings += [f for e in bearers for f in bearer_findings(e, kinds)]
        findings += [f for e in trace for f in forwarded_findings(e, kinds)]
    if not issued_any:
        return not_exercised(Finding("the provider issued no token in this run: the software did not log in"))
    if findings:
        return failed(*findings)
    if not services:
        return not_exercised(Finding("the software never presented its access token to a national service in this run, "
                              "so where it sends tokens is not shown"))
    return passed(f"{uses} Bearer use(s) in {len(run.traces)} scenario(s), all of their session's access token at "
                  "userinfo or a service")


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


def search_interface(e: Exchange, ctx: EvalContext) -> str | None:
    """The interface (``service:path-prefix``) of a GET that defines personal data as search parameters
    (SECURITY-006's exception), or None."""
    if e.method != "GET":
        return None
    allowed = ctx.param("SECURITY-006", "get_search_interfaces", GET_SEARCH_INTERFACES)
    return next((a for a in allowed if e.service == a.split(":", 1)[0] and e.local_path.startswith(a.split(":", 1)[1])),
                None)


def searched_url(e: Exchange, interface: str | None) -> str:
    """The part of a request's URL where personal data must not be: all of it, but the search parameters of a search
    interface (:data:`SEARCH_PARAMETERS`)."""
    exempt = SEARCH_PARAMETERS.get(interface, "all") if interface else ""
    if exempt == "all":
        return ""
    path = "" if exempt == "path" else e.path
    query = {} if exempt == "query" else {k: v for k, v in e.query.items() if f"query.{k}" != exempt}
    return path + "?" + json.dumps(query, ensure_ascii=False)


def url_findings(e: Exchange, personal: dict[str, str], ctx: EvalContext, client_secret: str | None) -> list[Finding]:
    """Secrets anywhere in the URL; personal data in the URL outside a search interface.

    Every finding concerns SECURITY-006; one about the client secret concerns PRACAUTH-015 too.
    """
    url = e.path + "?" + json.dumps(e.query, ensure_ascii=False)
    found = []
    secret_params = sorted(set(e.query) & set(SECRET_PARAMS))
    hashes = REDACTED.findall(url)
    if secret_params or hashes:
        secret = "client_secret" in secret_params or (client_secret is not None and client_secret in hashes)
        found.append(quote(e, f"a credential ({'the client secret' if secret else 'a token'}) is in the URL",
                           where="request.query", expected="credentials in headers or bodies only",
                           got=secret_params or "redacted secret")
                     .about("SECURITY-006", *(("PRACAUTH-015",) if secret else ())))
    searched = searched_url(e, search_interface(e, ctx))
    if searched:
        folded = normalise_name(searched)
        hits = sorted({what for value, what in personal.items()
                       if as_token(value, searched) or (len(value) >= 6 and as_token(value, folded))})
        if hits:
            found.append(quote(e, f"personal data ({', '.join(hits)}) is in the URL of {e.method} {e.local_path}",
                               where="request.path/query", expected="personal data in the request body", got=e.path)
                         .about("SECURITY-006"))
    return found


@check("http.no_sensitive_data_in_url", verifies=["SECURITY-006", "PRACAUTH-015"], scenario=NOMINAL, reads_all=True)
def no_sensitive_data_in_url(run: RunView, ctx: EvalContext) -> Verdict:
    """No token, client secret or patient data in the path or query of any request of any scenario."""
    findings: list[Finding] = []
    count = 0
    for trace in run:
        personal = trace.derived(personal_values)  # the same for every check and judgement of this view
        secret = trace.session.get("client_secret_sha256")
        for e in trace:
            count += 1
            findings += url_findings(e, personal, ctx, secret)
    if not count:
        return not_exercised(Finding("the software sent no request in this run"))
    if findings:
        return failed(*findings)
    return passed(f"{count} request URL(s) in {len(run.traces)} scenario(s) free of credentials and patient data")
