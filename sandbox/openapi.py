"""The sandbox's OpenAPI description: every response it really sends, with real schemas.

FastAPI's generated document is completed here, in one place: each operation gets the schema of its
success bodies (``SUCCESS``), every error status it can answer as ``application/problem+json`` with
the RFC 9457 schema (``ERRORS``), the security scheme that says which token it needs, and, for the
national services, the identification header software must send (``User-Agent``, PATIENTID-012).
``tests/sandbox/test_schemathesis.py`` proves the document against the running app with
schemathesis; ``tests/sandbox/test_openapi.py`` keeps ``sandbox/openapi.json`` equal to it.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

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
    "Traits": obj("birth_name first_names birth_date sex birth_place_code", birth_name=STR, first_names=STR,
                  birth_date=STR, sex={"enum": ["M", "F", "U"]}, birth_place_code=STR),
    "Fixtures": obj(
        "seed patients practitioners organisations sites", open_=True, seed=INT,
        patients=array(obj("ref scenario traits", open_=True, ref=STR, scenario=STR, traits={"type": "object"},
                           ins=STR, oid=STR, registered_traits={"type": "object"})),
        practitioners=array(obj("national_id rpps family_name given_name profession_code profession organisation "
                                "mss_address active", open_=True, national_id=STR, rpps=STR, family_name=STR,
                                given_name=STR, profession_code=STR, profession=STR, specialty_code=nullable(STR),
                                specialty=nullable(STR), organisation=STR, mss_address=STR, active=BOOL)),
        organisations=array(obj("finess name mss_address active", open_=True, finess=STR, name=STR, type_code=STR,
                                type=STR, mss_address=STR, active=BOOL)),
        sites=array(obj("site_id size", open_=True, site_id=STR, size=STR, name=STR))),
    "Session": obj(
        "session_id label seed state created endpoints credentials trust_anchors fixtures faults bound_to "
        "id_token_signed_response_alg",
        session_id=STR, label=STR, seed=INT, state={"enum": ["open", "closed"]}, created=TIME,
        endpoints=obj("idp insi dmp mss directory trace", idp=STR, insi=STR, dmp=STR, mss=STR, directory=STR,
                      trace=STR),
        credentials=obj("client_id", client_id=STR, client_secret=STR, session_token=STR,
                        client_secret_prefix=nullable(STR), session_token_prefix=nullable(STR), note=STR) | {
            "description": "In clear once, in the answer that creates the session; afterwards only prefixes."},
        trust_anchors=obj("trace_keys idp_jwks", trace_keys=STR, idp_jwks=STR),
        fixtures=ref("Fixtures"), faults={"type": "object"},
        bound_to=nullable(obj("vendor_id software_id", vendor_id=STR, software_id=STR)),
        id_token_signed_response_alg={"enum": ["RS256", "ES256"]}),
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
    "Claims": obj("sub", open_=True, sub=STR, given_name=STR, family_name=STR, preferred_username=STR,
                  SubjectNameID=STR, SubjectRefPro={"type": "object"}, profession={"type": "object"},
                  specialty={"type": "object"}),
    "LookupAnswer": {
        "oneOf": [
            obj("outcome identity", outcome={"const": "match"},
                identity=obj("ins oid traits", ins=STR, oid=STR, traits=ref("Traits"))),
            obj("outcome", outcome={"const": "no_match"}),
            obj("outcome count", outcome={"const": "multiple"}, count={"type": "integer", "minimum": 2}),
        ],
        "description": "match: one registered identity (INS, the OID of its assigning authority, the traits as "
                       "registered); no_match and multiple never carry an identity (PATIENTID-006/007)."},
    "DocumentEntry": obj(
        "unique_id status hidden metadata software site sha256 submitted replaces replaced_by deleted",
        unique_id=STR, status={"enum": ["approved", "deprecated", "deleted"]}, hidden=BOOL, hidden_at=TIME,
        level=nullable(INT), metadata={"type": "object"}, software=obj("name version registration_id", name=STR,
                                                                       version=STR, registration_id=STR),
        site=obj("id", id=STR), sha256=STR, submitted=TIME, replaces=nullable(STR), replaced_by=nullable(STR),
        deleted=nullable(TIME), document={"type": "string", "description": "The CDA, base64 (reads only)."}),
    "Message": obj("message_id from to received bytes content_sha256 sha256", open_=True, message_id=STR,
                   to=array(STR), cc=array(STR), subject=STR, body=STR, attachments=array({"type": "object"}),
                   received=TIME, bytes=INT, content_sha256=STR, sha256=STR, **{"from": STR}),
    "Address": obj("address type display_name national_id finess active", address=STR,
                   type={"enum": ["organisation", "practitioner"]}, display_name=STR, national_id=nullable(STR),
                   finess=STR, active=BOOL),
}

EXAMPLES_LOOKUP = {
    "match": {"summary": "one registered identity", "value": {"outcome": "match", "identity": {
        "ins": "199027505648460", "oid": "1.2.250.1.213.1.4.10", "traits": {
            "birth_name": "DA SILVA PEREIRA", "first_names": "LOIC", "birth_date": "1999-02-09", "sex": "M",
            "birth_place_code": "75056"}}}},
    "no_match": {"summary": "nobody with these traits", "value": {"outcome": "no_match"}},
    "multiple": {"summary": "several identities share these traits", "value": {"outcome": "multiple", "count": 2}},
}

# --- what each operation answers ---------------------------------------------------------------

#: "METHOD path" → {status: schema | (media type, schema) | None (no body)}
SUCCESS: dict[str, dict[int, Any]] = {
    "GET /health": {200: obj("status version", status={"const": "ok"}, version=STR)},
    "GET /.well-known/usine-trace-keys": {200: ref("TraceKeys")},
    "GET /.well-known/usine-infrastructure-keys": {200: ref("InfrastructureKeys")},
    "GET /admin/events": {200: obj("events next", events=array(ref("CloudEvent")), next=INT)},
    "POST /admin/events/seal": {200: obj("sealed segments", sealed=nullable({"type": "object"}), segments=INT)},
    "GET /admin/faults": {200: obj("faults", faults={"type": "object", "additionalProperties": MAP_STR})},
    "POST /admin/harness-tokens": {201: obj("token vendor expires", token=STR, expires=TIME, vendor=obj(
        "vendor_id software_id", vendor_id=STR, software_id=STR))},
    "GET /admin/installations": {200: obj("installations", installations=array(ref("Installation")))},
    "POST /admin/installations": {201: ref("Installation")},
    "GET /admin/listeners": {200: obj("listeners classes", listeners=MAP_STR, classes=MAP_STR)},
    "GET /admin/sessions": {200: obj("sessions", sessions=array(obj(
        "session_id label seed state created", session_id=STR, label=STR, seed=INT, state=STR, created=TIME)))},
    "POST /admin/sessions": {201: ref("Session")},
    "GET /admin/sessions/{session_id}": {200: ref("Session")},
    "POST /admin/sessions/{session_id}/close": {200: obj("session_id state", session_id=STR, state=STR)},
    "PUT /admin/sessions/{session_id}/faults": {200: obj("faults", faults={"type": "object"})},
    "POST /admin/sessions/{session_id}/notes": {201: obj("seq", seq=INT)},
    "GET /admin/sessions/{session_id}/trace": {200: ref("JWS")},
    "GET /s/{session_id}/trace": {200: ref("JWS")},
    "GET /s/{session_id}/idp/.well-known/openid-configuration": {200: ref("Discovery")},
    "GET /s/{session_id}/idp/jwks": {200: ref("JWKS")},
    "GET /s/{session_id}/idp/authorize": {302: None},
    "POST /s/{session_id}/idp/authorize": {302: None},
    "POST /s/{session_id}/idp/token": {200: ref("TokenResponse")},
    "GET /s/{session_id}/idp/userinfo": {200: ref("Claims")},
    "POST /s/{session_id}/idp/userinfo": {200: ref("Claims")},
    "POST /s/{session_id}/insi/lookup": {200: ref("LookupAnswer")},
    "POST /s/{session_id}/dmp/documents": {200: ref("DocumentEntry"), 201: ref("DocumentEntry")},
    "POST /s/{session_id}/dmp/documents/{unique_id}/replace": {200: ref("DocumentEntry"), 201: ref("DocumentEntry")},
    "GET /s/{session_id}/dmp/documents/{unique_id}": {200: ref("DocumentEntry")},
    "DELETE /s/{session_id}/dmp/documents/{unique_id}": {200: ref("DocumentEntry")},
    "POST /s/{session_id}/dmp/documents/{unique_id}/hide": {200: ref("DocumentEntry")},
    "GET /s/{session_id}/dmp/patients/{patient_id}/documents": {200: obj(
        "patient_id documents", patient_id=STR, documents=array(ref("DocumentEntry")))},
    "GET /s/{session_id}/dmp/value-sets": {200: obj(
        "value_sets", open_=True, value_sets={"type": "object", "additionalProperties": MAP_STR})},
    "GET /s/{session_id}/dmp/schematron": {200: ("application/xml", STR)},
    "POST /s/{session_id}/mss/messages": {201: obj("message_id", message_id=STR),
                                          200: obj("message_id duplicate", message_id=STR, duplicate={"const": True})},
    "GET /s/{session_id}/mss/mailboxes/{address}/messages": {200: array(ref("Message"))},
    "GET /s/{session_id}/directory/practitioners": {200: array(SCHEMAS["Fixtures"]["properties"]["practitioners"][
        "items"]), 304: None},
    "GET /s/{session_id}/directory/organisations": {200: array(SCHEMAS["Fixtures"]["properties"]["organisations"][
        "items"]), 304: None},
    "GET /s/{session_id}/directory/addresses": {200: array(ref("Address")), 304: None},
    "POST /prod/dmp/documents": {200: ref("DocumentEntry"), 201: ref("DocumentEntry")},
    "POST /prod/mss/messages": {201: obj("message_id", message_id=STR),
                                200: obj("message_id duplicate", message_id=STR, duplicate={"const": True})},
}

WHY = {
    400: "Something cannot be parsed in its declared syntax: the body (json-malformed) or a document it carries "
         "(base64, XML); the identity provider: an authorization request refused before its redirect URI is trusted",
    401: "No token, or one that is unknown, expired or of the wrong kind (WWW-Authenticate says which)",
    403: "A valid token that may not do this (another session, another vendor, admin only, hidden document…)",
    404: "No such test session, document, patient, mailbox or path",
    405: "Another method than the path's (the Allow header lists them)",
    409: "Conflict with what the service holds (a uniqueId or message id reused with other content, a document "
         "that is no longer current)",
    410: "The test session is closed, or the document deleted",
    413: "The body (or a document it carries) is larger than the service accepts",
    415: "The body's Content-Type is not the one the operation takes",
    422: "Everything parsed, but a value is missing, of the wrong type or breaks a rule (invalid-request lists "
         "where and why)",
    429: "Too many requests (injected fault): wait for Retry-After",
    503: "The service is temporarily unavailable (injected fault): retry after Retry-After",
}

SESSION = [404, 405, 410]
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
    "GET /admin/faults": ADMIN,
    "POST /admin/harness-tokens": ADMIN + BODY,
    "GET /admin/installations": ADMIN,
    "POST /admin/installations": ADMIN + BODY,
    "GET /admin/listeners": ADMIN,
    "GET /admin/sessions": ADMIN,
    "POST /admin/sessions": ADMIN + BODY,
    "GET /admin/sessions/{session_id}": ADMIN + [404, 410],
    "POST /admin/sessions/{session_id}/close": ADMIN + [404, 410],
    "PUT /admin/sessions/{session_id}/faults": ADMIN + [404, 410] + BODY,
    "POST /admin/sessions/{session_id}/notes": ADMIN + [404, 410] + BODY,
    "GET /admin/sessions/{session_id}/trace": ADMIN + [404],
    "GET /s/{session_id}/trace": SESSION + TOKEN,
    "GET /s/{session_id}/idp/.well-known/openid-configuration": SESSION,
    "GET /s/{session_id}/idp/jwks": SESSION,
    "GET /s/{session_id}/idp/authorize": SESSION + [400],
    "POST /s/{session_id}/idp/authorize": SESSION + [400, 413, 415],
    "POST /s/{session_id}/idp/token": SESSION + [413],
    "GET /s/{session_id}/idp/userinfo": SESSION + TOKEN,
    "POST /s/{session_id}/idp/userinfo": SESSION + TOKEN + [413],
    "POST /s/{session_id}/insi/lookup": SESSION + TOKEN + BODY + FAULTS,
    "POST /s/{session_id}/dmp/documents": SESSION + TOKEN + BODY + FAULTS + [409],
    "POST /s/{session_id}/dmp/documents/{unique_id}/replace": SESSION + TOKEN + BODY + FAULTS + [409],
    "GET /s/{session_id}/dmp/documents/{unique_id}": SESSION + TOKEN,
    "DELETE /s/{session_id}/dmp/documents/{unique_id}": SESSION + TOKEN,
    "POST /s/{session_id}/dmp/documents/{unique_id}/hide": SESSION + TOKEN,
    "GET /s/{session_id}/dmp/patients/{patient_id}/documents": SESSION + TOKEN + [422],
    "GET /s/{session_id}/dmp/value-sets": SESSION + TOKEN,
    "GET /s/{session_id}/dmp/schematron": SESSION + TOKEN,
    "POST /s/{session_id}/mss/messages": SESSION + TOKEN + BODY + FAULTS + [409],
    "GET /s/{session_id}/mss/mailboxes/{address}/messages": SESSION + TOKEN,
    "GET /s/{session_id}/directory/practitioners": SESSION + TOKEN + FAULTS + [422],
    "GET /s/{session_id}/directory/organisations": SESSION + TOKEN + FAULTS + [422],
    "GET /s/{session_id}/directory/addresses": SESSION + TOKEN + FAULTS + [422],
    "POST /prod/dmp/documents": [405] + TOKEN + BODY + [409],
    "POST /prod/mss/messages": [405] + TOKEN + BODY + [409],
}

SECURITY_SCHEMES = {
    "adminToken": {"type": "http", "scheme": "bearer", "description":
                   "The sandbox's admin token, or a harness token it issued (POST /admin/harness-tokens): a "
                   "harness token manages only the test sessions of its own vendor's software."},
    "accessToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description":
                    "An access token from the session's identity provider (POST /s/{session_id}/idp/token): a JWT "
                    "(RFC 9068) whose `aud` claim lists the base URLs of the services it is for "
                    "(`{base}/s/{session_id}/insi`, `…/dmp`, `…/mss`, `…/directory`, `…/idp/userinfo`). Send it "
                    "only to those; verify it with the provider's JWKS if you wish."},
    "sessionToken": {"type": "http", "scheme": "bearer", "description":
                     "The session token (in the answer that created the session): reads the session's trace, and "
                     "plays the patient in the shared record (reads, hide)."},
    "installationToken": {"type": "http", "scheme": "bearer", "description":
                          "The token of an installed software (POST /admin/installations), for the production role."},
    "clientSecretBasic": {"type": "http", "scheme": "basic", "description":
                          "client_secret_basic (RFC 6749 §2.3.1) with the session's client_id and client_secret; "
                          "client_secret_post (both in the form) is accepted too."},
}

ADMIN_ONLY = {"GET /admin/events", "POST /admin/events/seal", "POST /admin/harness-tokens", "GET /admin/installations",
              "POST /admin/installations", "GET /admin/sessions"}


def security(key: str) -> list[dict[str, list[str]]] | None:
    """Which token an operation needs (None: none)."""
    method, path = key.split(" ", 1)
    if path.startswith("/admin/"):
        return [{"adminToken": []}]
    if path.startswith("/prod/"):
        return [{"installationToken": []}]
    if path == "/s/{session_id}/trace":
        return [{"sessionToken": []}]
    if path.endswith("/idp/token"):
        return [{"clientSecretBasic": []}, {}]
    if "/dmp/" in path and (method == "GET" or path.endswith("/hide")):
        return [{"accessToken": []}, {"sessionToken": []}]
    service = path.split("/")[3] if path.startswith("/s/") else ""
    if service in ("insi", "dmp", "mss", "directory") or path.endswith("/userinfo"):
        return [{"accessToken": []}]
    return None


USER_AGENT = {
    "name": "User-Agent", "in": "header", "required": False,
    "schema": {"type": "string", "maxLength": 500},
    "example": "RefApp/1.0.0 (REG-0001)",
    "description": "How the calling software identifies itself to the national services (PATIENTID-012): "
                   "`<software name>/<version> (<registration id>)`, the values declared for the labelled software "
                   "(vendor.toml `software`, `version`, `registration_id`), e.g. `RefApp/1.0.0 (REG-0001)`. The "
                   "check `client.software_identified` looks for the three values in this header of every look-up.",
}

AUTHORIZE_FORM = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": obj(
    "response_type client_id redirect_uri scope state nonce login_hint", open_=True,
    response_type={"const": "code"}, client_id=STR, redirect_uri=STR, scope={
        "type": "string", "description": "space-separated; must contain openid"}, state=STR, nonce=STR,
    code_challenge={"type": "string", "description": "PKCE: BASE64URL(SHA256(verifier)), 43 characters"},
    code_challenge_method={"const": "S256"},
    login_hint={"type": "string", "description": "the practitioner to log in: national id (8 + RPPS)"},
    acr_values=STR, prompt=STR)}}}

OPERATION_IDS = {"POST /s/{session_id}/insi/lookup": "insi_lookup", "POST /s/{session_id}/idp/token": "idp_token",
                 "GET /s/{session_id}/idp/authorize": "idp_authorize_get",
                 "POST /s/{session_id}/idp/authorize": "idp_authorize_post",
                 "POST /s/{session_id}/dmp/documents": "dmp_submit", "POST /s/{session_id}/mss/messages": "mss_send"}


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
    if key == "POST /s/{session_id}/insi/lookup":
        answer["content"]["application/json"]["examples"] = EXAMPLES_LOOKUP
    if status == 302:
        answer["headers"] = {"Location": {"schema": STR, "description": "redirect_uri with code, state and iss (or "
                                                                         "error, error_description, state and iss)"}}
    if status == 201 and "documents" in key:
        answer["headers"] = {"Location": {"schema": STR, "description": "The new document's URL"}}
    if "/directory/" in key:
        answer["headers"] = {"ETag": {"schema": STR}, "Cache-Control": {"schema": STR}}
    if key.endswith("/userinfo") and status == 200:
        answer["content"]["application/jwt"] = {"schema": {"type": "string", "description": "fault idp.userinfo_signed"}}
    return answer


def _errors(key: str, statuses: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in sorted(set(statuses)):
        answer: dict[str, Any] = {"description": WHY[status], "content": {MEDIA_TYPE: {"schema": ref("Problem")}}}
        if status in (429, 503):
            answer["headers"] = {"Retry-After": {"schema": STR, "description": "seconds (absent when the "
                                                                                 "fault omit_retry_after is on)"}}
        if status == 405:
            answer["headers"] = {"Allow": {"required": True, "schema": STR}}
        if status == 401:
            answer["headers"] = {"WWW-Authenticate": {"schema": STR}}
        out[str(status)] = answer
    if key.endswith("/idp/token"):
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
    schemas.update(copy.deepcopy(SCHEMAS))
    components["securitySchemes"] = SECURITY_SCHEMES
    missing = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            key = f"{method.upper()} {path}"
            if key not in SUCCESS or key not in ERRORS:
                missing.append(key)
                continue
            op["responses"] = {str(s): _success(key, s, spec) for s, spec in SUCCESS[key].items()}
            op["responses"] |= _errors(key, ERRORS[key])
            needs = security(key)
            op["security"] = needs if needs is not None else []
            if key in ADMIN_ONLY:
                op["description"] = (op.get("description", "") + "\n\nThe admin token only.").strip()
            if key in OPERATION_IDS:
                op["operationId"] = OPERATION_IDS[key]
            if path.startswith(("/s/{session_id}/insi", "/s/{session_id}/dmp", "/s/{session_id}/mss",
                                "/s/{session_id}/directory", "/prod/")):
                op.setdefault("parameters", []).append(USER_AGENT)
            if key == "POST /s/{session_id}/idp/authorize":
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

    app.openapi = openapi  # type: ignore[method-assign]
