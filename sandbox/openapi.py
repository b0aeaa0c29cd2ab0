"""The sandbox's OpenAPI description: every response it really sends, with real schemas.

FastAPI's generated document is completed here, in one place: each operation gets the schema of its
success bodies (``SUCCESS``), every error status it can answer as ``application/problem+json`` with
the RFC 9457 schema (``ERRORS``), the security scheme that says which token it needs, and, for the
national services, the identification header software must send (``User-Agent``). The core describes its own
operations and the OpenID Connect provider (once per pack profile); each pack describes its services in a
:class:`PackDocument` (its sandbox module's ``OPENAPI``), merged here.
``tests/sandbox/test_schemathesis.py`` proves the document against the running app with
schemathesis; ``tests/sandbox/test_openapi.py`` keeps ``sandbox/openapi.json`` equal to it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sandbox import plugins
from sandbox.problems import MEDIA_TYPE

# --- schema helpers ----------------------------------------------------------------------------


def obj(required: str = "", open_: bool = False, **props: Any) -> dict[str, Any]:
    """An object schema: ``required`` names (space-separated), properties, closed unless ``open_``."""
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required.split()
    if not open_:
        schema["additionalProperties"] = False
    return schema


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


#: a run seed's commitment (:func:`conformity.runs.seed_commitment`)
COMMITMENT = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256 (hex) of 'usine.run-seed:' and "
              "the run's seed in decimal: the seed revealed when the run is finished must match it."}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STR, INT, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
TIME = {"type": "string", "description": "RFC 3339 date-time"}
MAP_STR = {"type": "object", "additionalProperties": {"type": "string"}}


def _json_schema_file(name: str) -> dict[str, Any]:
    doc = json.loads((resources.files("conformity") / "schemas" / name).read_text(encoding="utf-8"))
    return {k: v for k, v in doc.items() if not k.startswith("$")}


JWK = obj("kty", open_=True, kty=STR, kid=STR, use=STR, alg=STR, crv=STR, x=STR, y=STR, n=STR, e=STR, pem=STR)
KEYS = {k: v for k, v in _json_schema_file("infrastructure-keys.schema.json").items()}
KEYS["properties"]["keys"]["items"]["properties"]["kid"] = {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}

SCHEMAS: dict[str, Any] = {
    "Problem": obj(
        "type title status detail code", open_=True,
        type={"type": "string", "description": "urn:usine:problem:<code>"}, title=STR,
        status={"type": "integer", "minimum": 400, "maximum": 599}, detail=STR, instance=STR,
        code={"type": "string", "description": "The stable problem code (e.g. token-missing, invalid-request)."},
        errors=array(obj("where message", where=STR, message=STR)),
    ) | {"description": "RFC 9457 problem details; services add members of their own (findings, traits, "
                        "retry_after, limit…)."},
    "OAuthError": obj("error", open_=True, error=STR, error_description=STR, code=STR,
                      ) | {"description": "RFC 6749 §5.2 error answer of the token endpoint (and `code`, stable)."},
    "JWS": obj("protected payload signature", protected=STR, payload=STR, signature=STR) | {
        "description": "RFC 7515 flattened JSON serialization, EdDSA; the payload is RFC 8785 canonical JSON."},
    "JWK": JWK,
    "TraceKeys": obj("keys", keys=array(JWK)),
    "InfrastructureKeys": KEYS,
    "Session": obj(
        "session_id label seed state created pack endpoints credentials trust_anchors fixtures faults bound_to "
        "id_token_signed_response_alg",
        session_id=STR, label=STR, seed=INT, state={"enum": ["open", "closed"]}, created=TIME,
        pack=nullable(STR), endpoints=MAP_STR | {"description": "Service name → its base URL in this session (the "
                                                             "session's pack's services, and trace)."},
        credentials=obj("client_id", client_id=STR, client_secret=STR, session_token=STR,
                        client_secret_prefix=nullable(STR), session_token_prefix=nullable(STR), note=STR) | {
            "description": "In clear once, in the answer that creates the session; afterwards only prefixes."},
        trust_anchors=obj("trace_keys provider_jwks", trace_keys=STR, provider_jwks=MAP_STR),
        fixtures={"type": "object", "description": "The session's data, as its pack generates it from the seed."},
        faults={"type": "object"},
        bound_to=nullable(obj("vendor_id software_id", vendor_id=STR, software_id=STR)),
        run=nullable(obj("id wave category seed_source seed_commitment attempt scenario", id=STR, wave=STR,
                         category=STR, seed_source={"enum": ["sandbox", "caller"]}, seed_commitment=COMMITMENT,
                         attempt=INT, scenario=STR)) | {
            "description": "The run (POST /admin/runs) whose scenario this session plays, as its signed trace "
                           "records it; null for a session outside any run."},
        id_token_signed_response_alg={"enum": ["RS256", "ES256"]}),
    "Run": obj("run_id seed seed_commitment seed_source attempt bound_to wave category pack scenarios created "
               "finished", run_id=STR,
               seed=nullable(INT) | {"description": "The run's seed: null while the run is open if the sandbox drew "
                                                   "it (its secret: 128 bits, revealed by POST /admin/runs/{run_id}/"
                                                   "finish); the caller's from the start if it chose it."},
               seed_commitment=COMMITMENT,
               finished=nullable(TIME) | {"description": "When the run was finished (no session of it after); null "
                                                       "while it is open."},
               played=array(obj("scenario session_id", scenario=STR, session_id=STR)) | {
                   "description": "The scenarios the run's sessions played (the finish's answer only)."},
               seed_source={"enum": ["sandbox", "caller"], "description": "sandbox: drawn by the sandbox; caller: "
                            "given in the request (such a run reproduces one, and is never labelled)."},
               attempt={**INT, "description": "How many runs the token's software made for this wave and category, "
                                              "this one included."},
               bound_to=nullable(obj("vendor_id software_id", vendor_id=STR, software_id=STR)), wave=STR,
               category=STR, pack=STR, scenarios=array(STR), created=TIME),
    "Installation": obj("id vendor_id software site wave category state created", id=STR, vendor_id=STR,
                        software=obj("id name version", id=STR, name=STR, version=STR, registration_id=STR),
                        site=obj("id size", id=STR, size=STR, name=STR), wave=STR, category=STR, state=STR,
                        created=TIME, token=STR, endpoints=MAP_STR),
    "CloudEvent": obj("specversion type source id time data", open_=True, specversion={"const": "1.0"}, type=STR,
                      source=STR, id=STR, time=TIME, subject=STR, datacontenttype=STR, dataschema=STR,
                      data={"type": "object"}),
    "Discovery": obj("issuer authorization_endpoint token_endpoint jwks_uri response_types_supported "
                     "subject_types_supported id_token_signing_alg_values_supported", open_=True,
                     issuer=STR, authorization_endpoint=STR, token_endpoint=STR, userinfo_endpoint=STR, jwks_uri=STR,
                     response_types_supported=array(STR), subject_types_supported=array(STR),
                     id_token_signing_alg_values_supported={**array(STR), "contains": {"const": "RS256"}}),
    "JWKS": obj("keys", keys=array(JWK)),
    "TokenResponse": obj(
        "access_token token_type expires_in scope", access_token={
            "type": "string", "description": "A JWT (RFC 9068, typ at+jwt) signed by the provider: its `aud` claim "
            "lists the base URLs of the services it may be sent to, and nowhere else."},
        token_type={"const": "Bearer"}, expires_in=INT, id_token=STR, refresh_token=STR, scope=STR),
    "Claims": obj("sub", open_=True, sub=STR) | {"description": "The claims of the logged-in account (the pack's profile says which)."},
}

# --- what each operation answers ---------------------------------------------------------------

#: "METHOD path" → {status: schema | (media type, schema) | None (no body)}
SUCCESS: dict[str, dict[int, Any]] = {
    "GET /health": {200: obj("status version worker", status={"const": "ok"}, version=STR,
                             worker={**INT, "description": "the id of the worker process that answered"})},
    "GET /.well-known/usine-trace-keys": {200: ref("TraceKeys")},
    "GET /.well-known/usine-infrastructure-keys": {200: ref("InfrastructureKeys")},
    "GET /admin/events": {200: obj("events next", events=array(ref("CloudEvent")), next=INT)},
    "POST /admin/events/seal": {200: obj("sealed segments", sealed=nullable({"type": "object"}), segments=INT)},
    "POST /admin/events/parquet": {200: obj("file segments_file rows bytes sha256", file=STR, segments_file=STR, rows=INT,
                                            bytes=INT, sha256=STR)},
    "GET /admin/faults": {200: obj("faults", faults={"type": "object", "additionalProperties": MAP_STR})},
    "POST /admin/harness-tokens": {201: obj("token vendor witnessed expires", token=STR, expires=TIME, vendor=obj(
        "vendor_id software_id", vendor_id=STR, software_id=STR), witnessed={"type": "boolean"})},
    "GET /admin/installations": {200: obj("installations", installations=array(ref("Installation")))},
    "POST /admin/installations": {201: ref("Installation")},
    "GET /admin/listeners": {200: obj("listeners classes", listeners=MAP_STR, classes=MAP_STR)},
    "GET /admin/sessions": {200: obj("sessions", sessions=array(obj(
        "session_id label seed state created", session_id=STR, label=STR, seed=INT, state=STR, created=TIME)))},
    "POST /admin/runs": {201: ref("Run")},
    "GET /admin/runs/{run_id}": {200: ref("Run")},
    "POST /admin/runs/{run_id}/finish": {200: ref("Run")},
    "POST /admin/sessions": {201: ref("Session")},
    "GET /admin/sessions/{session_id}": {200: ref("Session")},
    "POST /admin/sessions/{session_id}/close": {200: obj("session_id state", session_id=STR, state=STR)},
    "PUT /admin/sessions/{session_id}/faults": {200: obj("faults", faults={"type": "object"})},
    "POST /admin/sessions/{session_id}/notes": {201: obj("seq", seq=INT)},
    "GET /admin/sessions/{session_id}/trace": {200: ref("JWS")},
    "GET /s/{session_id}/trace": {200: ref("JWS")},
    "GET /s/{session_id}/{provider}/.well-known/openid-configuration": {200: ref("Discovery")},
    "GET /s/{session_id}/{provider}/jwks": {200: ref("JWKS")},
    "GET /s/{session_id}/{provider}/authorize": {302: None},
    "POST /s/{session_id}/{provider}/authorize": {302: None},
    "POST /s/{session_id}/{provider}/token": {200: ref("TokenResponse")},
    "GET /s/{session_id}/{provider}/userinfo": {200: ref("Claims")},
    "POST /s/{session_id}/{provider}/userinfo": {200: ref("Claims")},
}

WHY = {
    400: "Something cannot be parsed in its declared syntax: the body (json-malformed) or a document it carries "
         "(base64, XML), or can be read two ways (duplicate-member: an object naming a member twice; "
         "query-param-repeated: a query naming a parameter twice; header-repeated: Authorization, Consent-Id or "
         "Content-Type given twice); the identity provider: an authorization request "
         "refused before its redirect URI is trusted",
    401: "No token, or one that is unknown, expired or of the wrong kind (WWW-Authenticate says which)",
    403: "A valid token that may not do this (another session, another vendor, admin only, hidden document…)",
    404: "No such test session, record (a document, a person, a mailbox…) or path",
    405: "Another method than the path's (the Allow header lists them)",
    409: "Conflict with what the service holds (a uniqueId or message id reused with other content, a document "
         "that is no longer current)",
    410: "The test session is closed (session-closed) or expired (session-expired: older than the sandbox's "
         "--session-ttl), or the document deleted",
    413: "The body (or a document it carries) is larger than the service accepts (body-too-large…), or the test "
         "session has recorded the most the sandbox keeps of one session (session-recording-full: nothing more of "
         "it is recorded; start a new session)",
    415: "The body's Content-Type is not the one the operation takes",
    422: "Everything parsed, but a value is missing, of the wrong type or breaks a rule (invalid-request lists "
         "where and why)",
    429: "Too many requests (injected fault): wait for Retry-After",
    503: "The service is temporarily unavailable (injected fault): retry after Retry-After",
}

SESSION = [404, 405, 410, 413]
TOKEN = [401, 403]
BODY = [400, 413, 415, 422]
FAULTS = [429, 503]
ADMIN = [401, 403, 405]
#: "METHOD path" → the error statuses it answers (problem documents)
ERRORS: dict[str, list[int]] = {
    "GET /health": [405],
    "GET /.well-known/usine-trace-keys": [405],
    "GET /.well-known/usine-infrastructure-keys": [405],
    "GET /admin/events": ADMIN + [422],
    "POST /admin/events/seal": ADMIN,
    "POST /admin/events/parquet": ADMIN + [409],
    "GET /admin/faults": ADMIN,
    "POST /admin/harness-tokens": ADMIN + BODY,
    "GET /admin/installations": ADMIN,
    "POST /admin/installations": ADMIN + BODY + [503],
    "GET /admin/listeners": ADMIN,
    "GET /admin/sessions": ADMIN,
    "POST /admin/runs": ADMIN + BODY + [429, 503],
    "GET /admin/runs/{run_id}": ADMIN + [404],
    "POST /admin/runs/{run_id}/finish": ADMIN + [404],
    "POST /admin/sessions": ADMIN + BODY + [404, 409, 429],
    "GET /admin/sessions/{session_id}": ADMIN + [404, 410],
    "POST /admin/sessions/{session_id}/close": ADMIN + [404, 410],
    "PUT /admin/sessions/{session_id}/faults": ADMIN + [404, 410] + BODY,
    "POST /admin/sessions/{session_id}/notes": ADMIN + [404, 410] + BODY,
    "GET /admin/sessions/{session_id}/trace": ADMIN + [404],
    "GET /s/{session_id}/trace": SESSION + TOKEN,
    "GET /s/{session_id}/{provider}/.well-known/openid-configuration": SESSION,
    "GET /s/{session_id}/{provider}/jwks": SESSION,
    "GET /s/{session_id}/{provider}/authorize": SESSION + [400],
    "POST /s/{session_id}/{provider}/authorize": SESSION + [400, 413, 415],
    "POST /s/{session_id}/{provider}/token": SESSION + [413],
    "GET /s/{session_id}/{provider}/userinfo": SESSION + TOKEN,
    "POST /s/{session_id}/{provider}/userinfo": SESSION + TOKEN + [413],
}

SECURITY_SCHEMES = {
    "adminToken": {"type": "http", "scheme": "bearer", "description":
                   "The sandbox's admin token, or a harness token it issued (POST /admin/harness-tokens): a "
                   "harness token manages only the test sessions of its own vendor's software."},
    "accessToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description":
                    "An access token from the session's identity provider (POST /s/{session_id}/<provider>/token): a "
                    "JWT (RFC 9068) whose `aud` claim lists the base URLs of the services it is for (its pack's "
                    "services and the provider's userinfo). Send it only to those; verify it with the provider's "
                    "JWKS if you wish."},
    "sessionToken": {"type": "http", "scheme": "bearer", "description":
                     "The session token (in the answer that created the session): reads the session's trace, and "
                     "plays the people the sandbox stands for where a pack's service says so."},
    "installationToken": {"type": "http", "scheme": "bearer", "description":
                          "The token of an installed software (POST /admin/installations), for the production role."},
    "clientSecretBasic": {"type": "http", "scheme": "basic", "description":
                          "client_secret_basic (RFC 6749 §2.3.1) with the session's client_id and client_secret; "
                          "client_secret_post (both in the form) is accepted too."},
}

#: an operation's own reason for a status, where it is not the general one (WHY)
WHY_HERE: dict[tuple[str, int], str] = {
    ("POST /admin/runs", 429): "vendor-bound-reached: this token's software created the most runs the sandbox allows "
                               "one vendor's software in an hour or a day (bound: runs-per-hour, runs-per-day); "
                               "Retry-After: seconds until one more is allowed",
    ("POST /admin/sessions", 429): "vendor-bound-reached: this token's software has the most live test sessions (open, "
                                   "unexpired) the sandbox allows one vendor's software (bound: live-sessions): close "
                                   "those it is done with; or its sessions recorded the most bytes the sandbox keeps "
                                   "of one vendor's software (bound: recorded-bytes, until they are swept); "
                                   "Retry-After: seconds until a place frees at the latest",
    ("POST /admin/installations", 503): "The sandbox cannot read its catalog of waves (catalog-unavailable): no "
                                        "installation is registered until the catalog it was given is readable "
                                        "again (it is read again at the next request)",
    ("POST /admin/runs", 503): "The sandbox cannot read its catalog of waves (catalog-unavailable): no run is "
                               "created until the catalog it was given is readable again",
    ("POST /admin/sessions", 404): "run-unknown: no run of this id created by this token's software (another "
                                   "software's run is not revealed)",
    ("POST /admin/sessions", 409): "scenario-already-run: this scenario of the run already has its session (a run "
                                   "plays each scenario once); run-finished: the run is finished (its seed "
                                   "revealed), it takes no session",
    ("GET /admin/runs/{run_id}", 404): "run-unknown: no run of this id created by this token's software",
    ("POST /admin/runs/{run_id}/finish", 404): "run-unknown: no run of this id created by this token's software",
}

ADMIN_ONLY = {"GET /admin/events", "POST /admin/events/seal", "POST /admin/events/parquet", "POST /admin/harness-tokens",
              "GET /admin/installations", "POST /admin/installations", "GET /admin/sessions"}


def security(key: str) -> list[dict[str, list[str]]] | None:
    """Which token an operation needs (None: none)."""
    method, path = key.split(" ", 1)
    if path.startswith("/admin/"):
        return [{"adminToken": []}]
    if path.startswith("/prod/"):
        return [{"installationToken": []}]
    if path == "/s/{session_id}/trace":
        return [{"sessionToken": []}]
    service = path.split("/")[3] if path.startswith("/s/") else ""
    if service in plugins.profiles() and path.endswith("/token"):
        return [{"clientSecretBasic": []}, {}]
    if service in plugins.profiles():
        return [{"accessToken": []}] if path.endswith("/userinfo") else None
    for document in documents():
        if document.security is not None:
            found = document.security(method, path)
            if found is not None:
                return found
    if service in plugins.services() and service not in open_services():
        return [{"accessToken": []}]
    return None


USER_AGENT = {
    "name": "User-Agent", "in": "header", "required": False,
    "schema": {"type": "string", "maxLength": 500},
    "example": "RefApp/1.0.0 (REG-0001)",
    "description": "How the calling software identifies itself to the national services: "
                   "`<software name>/<version> (<registration id>)`, the values declared for the labelled software "
                   "(vendor.toml `software`, `version`, `registration_id`), e.g. `RefApp/1.0.0 (REG-0001)`. The "
                   "packs' checks look for the three values in this header.",
}

AUTHORIZE_FORM = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": obj(
    "response_type client_id redirect_uri scope state nonce login_hint", open_=True,
    response_type={"const": "code"}, client_id=STR, redirect_uri=STR, scope={
        "type": "string", "description": "space-separated; must contain openid"}, state=STR, nonce=STR,
    code_challenge={"type": "string", "description": "PKCE: BASE64URL(SHA256(verifier)), 43 characters"},
    code_challenge_method={"const": "S256"},
    login_hint={"type": "string", "description": "the account to log in (the pack's profile says which identifier)"},
    acr_values=STR, prompt=STR)}}}

#: the provider's operations, "{provider}" standing for each profile's name
OPERATION_IDS = {"POST /s/{session_id}/{provider}/token": "{provider}_token",
                 "GET /s/{session_id}/{provider}/authorize": "{provider}_authorize_get",
                 "POST /s/{session_id}/{provider}/authorize": "{provider}_authorize_post"}


@dataclass(frozen=True, slots=True)
class PackDocument:
    """A pack's part of the description: its schemas, and what each of its operations answers ("METHOD path" keys)."""

    schemas: dict[str, Any]
    success: dict[str, dict[int, Any]]
    errors: dict[str, list[int]]
    operation_ids: dict[str, str] = field(default_factory=dict)
    #: "METHOD path" → status → the examples of that JSON answer (OpenAPI Example Objects by name)
    examples: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    #: "METHOD path" → status → the headers of that answer
    headers: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    #: which token an operation needs, where the default (an access token) does not say it (None: the default)
    security: Callable[[str, str], list[dict[str, list[str]]] | None] | None = None
    #: the schema of the pack's provider's userinfo answer (one of ``schemas``)
    claims: str = "Claims"
    #: the pack's services that need no token (public look-ups)
    open_services: tuple[str, ...] = ()


def load_examples(package: str, extra: dict[str, dict[int, dict[str, Any]]] | None = None
                  ) -> dict[str, dict[int, dict[str, Any]]]:
    """A pack's answer examples, from ``openapi_examples.json`` in its sandbox package ("METHOD path" → status →
    name → Example Object: real answers of the sandbox to the reference vendors, shortened), with ``extra``."""
    raw = json.loads((resources.files(package) / "openapi_examples.json").read_text(encoding="utf-8"))
    found = {key: {int(status): named for status, named in statuses.items()} for key, statuses in raw.items()}
    for key, statuses in (extra or {}).items():
        for status, named in statuses.items():
            found.setdefault(key, {}).setdefault(status, {}).update(named)
    return found


def documents() -> list[PackDocument]:
    """Every installed pack's description (its sandbox module's ``OPENAPI``)."""
    return [p.module.OPENAPI for p in plugins.packs().values() if hasattr(p.module, "OPENAPI")]


def open_services() -> set[str]:
    return {name for d in documents() for name in d.open_services}


def _provider_keys(table: dict[str, Any], service: str) -> dict[str, Any]:
    return {k.replace("{provider}", service): v for k, v in table.items() if "{provider}" in k}


def tables() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, str]]:
    """(schemas, success, errors, operation ids): the core's, each provider's and each pack's."""
    schemas = dict(SCHEMAS)
    success = {k: v for k, v in SUCCESS.items() if "{provider}" not in k}
    errors = {k: v for k, v in ERRORS.items() if "{provider}" not in k}
    ids: dict[str, str] = {}
    for p in plugins.packs().values():
        if p.oidc is None:
            continue
        service, document = p.oidc.service, getattr(p.module, "OPENAPI", None)
        userinfo = ref(document.claims) if document is not None else ref("Claims")
        success |= {k: {s: (userinfo if k.endswith("/userinfo") else spec) for s, spec in v.items()}
                    for k, v in _provider_keys(SUCCESS, service).items()}
        errors |= _provider_keys(ERRORS, service)
        ids |= {k: v.replace("{provider}", service) for k, v in _provider_keys(OPERATION_IDS, service).items()}
    for document in documents():
        schemas |= document.schemas
        success |= document.success
        errors |= document.errors
        ids |= document.operation_ids
    return schemas, success, errors, ids


def _content(spec: Any) -> dict[str, Any] | None:
    if spec is None:
        return None
    media, schema = spec if isinstance(spec, tuple) else ("application/json", spec)
    return {media: {"schema": schema}}


def _success(key: str, status: int, spec: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": {200: "OK", 201: "Created", 302: "Redirect to the client",
                                              304: "Not modified (If-None-Match named the current ETag)"}[status]}
    content = _content(spec)
    if content:
        answer["content"] = content
    for document in documents():
        if status in document.examples.get(key, {}):
            answer["content"]["application/json"]["examples"] = document.examples[key][status]
        if status in document.headers.get(key, {}):
            answer["headers"] = document.headers[key][status]
    if status == 302:
        answer["headers"] = {"Location": {"schema": STR, "description": "redirect_uri with code, state and iss (or "
                                                                         "error, error_description, state and iss)"}}
    if key.endswith("/userinfo") and status == 200:
        service = key.split("/")[3]
        answer["content"]["application/jwt"] = {"schema": {"type": "string",
                                                           "description": f"fault {service}.userinfo_signed"}}
    return answer


def _errors(key: str, statuses: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in sorted(set(statuses)):
        answer: dict[str, Any] = {"description": WHY_HERE.get((key, status), WHY[status]),
                                  "content": {MEDIA_TYPE: {"schema": ref("Problem")}}}
        if status in (429, 503) and (key, status) not in WHY_HERE:
            answer["headers"] = {"Retry-After": {"schema": STR, "description": "seconds (absent when the "
                                                                                 "fault omit_retry_after is on)"}}
        elif status == 429:  # a bound of the sandbox's own, not an injected fault: always said
            answer["headers"] = {"Retry-After": {"required": True, "schema": STR, "description": "seconds"}}
        if status == 405:
            answer["headers"] = {"Allow": {"required": True, "schema": STR}}
        if status == 401:
            answer["headers"] = {"WWW-Authenticate": {"schema": STR}}
        out[str(status)] = answer
    if key.endswith("/token") and key.split("/")[3] in plugins.profiles():
        for status, why in ((400, "OAuth error (RFC 6749 §5.2): invalid_request, invalid_grant…"),
                            (401, "OAuth error invalid_client (WWW-Authenticate: Basic)")):
            out[str(status)] = {"description": why, "content": {"application/json": {"schema": ref("OAuthError")}}}
    return out


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document with every response, schema, security scheme and header the sandbox really uses."""
    doc = copy.deepcopy(doc)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    all_schemas, success, errors, operation_ids = tables()
    schemas.update(copy.deepcopy(all_schemas))
    components["securitySchemes"] = SECURITY_SCHEMES
    services = tuple(f"/s/{{session_id}}/{name}" for name in plugins.services())
    missing = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            key = f"{method.upper()} {path}"
            if key not in success or key not in errors:
                missing.append(key)
                continue
            op["responses"] = {str(s): _success(key, s, spec) for s, spec in success[key].items()}
            op["responses"] |= _errors(key, errors[key])
            needs = security(key)
            op["security"] = needs if needs is not None else []
            if key in ADMIN_ONLY:
                op["description"] = (op.get("description", "") + "\n\nThe admin token only.").strip()
            if key in operation_ids:
                op["operationId"] = operation_ids[key]
            if path.startswith((*services, "/prod/")):
                op.setdefault("parameters", []).append(USER_AGENT)
            if method == "post" and path.endswith("/authorize") and path.split("/")[3] in plugins.profiles():
                op["requestBody"] = AUTHORIZE_FORM
    if missing:
        raise RuntimeError(f"sandbox.openapi describes no responses for: {', '.join(sorted(missing))}")
    return doc


def install(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            base = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = complete(base)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI documents replacing app.openapi to customise the schema
