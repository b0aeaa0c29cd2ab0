"""A bounded schemathesis run over the whole sandbox API, in process, against the real app.

Every operation of the OpenAPI document is called with schemathesis' generated requests (explicit
examples, then fuzzing; positive data; seeded) carrying the credentials the operation's security
names, on a fresh test session each time. The checks are schemathesis' own: no server error, every
status code, content type, header and body as the document describes them.
"""

from __future__ import annotations

import base64
import tempfile
import weakref
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conformity.packs.health.ins import normalise_name
from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.openapi import security
from sandbox.packs.health import practitioner_claims
from sandbox.packs.health.samples import issue_access_token, session_submission
from sandbox.sessions import create_session

ADMIN = "schemathesis-admin-token"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
#: seeded and small: the whole API in well under a minute on one core
CONFIG = {"seed": 20261201, "generation": {"mode": "positive", "max-examples": 6},
          "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}}


class Sandbox:
    """The real app, with an installation for the production role."""

    def __init__(self, data: Path):
        self.app = create_app(SandboxConfig(data_dir=data, admin_token=ADMIN, seal_seconds=3600))
        self.store = self.app.state.store
        from fastapi.testclient import TestClient

        with TestClient(self.asgi) as client:
            r = client.post("/admin/installations", headers={"Authorization": f"Bearer {ADMIN}"}, json={
                "vendor_id": "acme", "software": {"id": "acme-ehr", "name": "Acme", "version": "1.0",
                                                  "registration_id": "REG-ACME-EHR"},
                "site": {"id": "750100011", "size": "M"}, "wave": "2026-W1", "category": "GP"})
            assert r.status_code == 201, r.text
            self.installation_token = r.json()["token"]

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The app, its lifespan left out: each schemathesis call opens and closes one, and the app's shutdown
        closes its store (the module's sandbox lives as long as the module)."""
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)

    def session(self) -> dict[str, Any]:
        return create_session(self.store, "http://testserver", seed=1)

    def install(self, category: str, wave: str = "2026-W3") -> str:
        """The token of a new installation of a housing category (what the housing production services take)."""
        from fastapi.testclient import TestClient

        with TestClient(self.asgi) as client:
            r = client.post("/admin/installations", headers={"Authorization": f"Bearer {ADMIN}"}, json={
                "vendor_id": "acme", "software": {"id": "acme-home", "name": "Acme", "version": "1.0",
                                                  "registration_id": "REG-ACME"},
                "site": {"id": "41234567800019", "size": "M"}, "wave": wave, "category": category})
            assert r.status_code == 201, r.text
            return str(r.json()["token"])


def _sandbox() -> Sandbox:
    """Built when the module is collected (schemathesis makes one test per operation from the loaded schema);
    its folder goes with the process."""
    tmp = tempfile.TemporaryDirectory(prefix="usine-schemathesis-")
    built = Sandbox(Path(tmp.name))
    weakref.finalize(built, tmp.cleanup)
    return built


SANDBOX = _sandbox()
#: operation → the statuses it answered in this run
SEEN: dict[str, set[int]] = {}
schema = schemathesis.openapi.from_asgi("/openapi.json", SANDBOX.asgi, config=schemathesis.Config.from_dict(CONFIG))


def credentials(case: Any, sandbox: Sandbox) -> None:
    """A fresh session in the path and the token the operation's security names in the headers."""
    session = sandbox.session() if "session_id" in (case.path_parameters or {}) else None
    if session is not None:
        case.path_parameters["session_id"] = session["id"]
    needs = security(f"{case.method.upper()} {case.operation.path}") or [{}]
    kind = next(iter(needs[0]), None)
    headers = dict(case.headers or {})
    token = {"adminToken": ADMIN, "installationToken": sandbox.installation_token}.get(kind or "")
    if session is not None and kind == "accessToken":
        token = issue_access_token(sandbox.store, session["id"], session["fixtures"]["practitioners"][0]["national_id"])
    elif session is not None and kind == "sessionToken":
        token = session["session_token"]
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif session is not None and kind == "clientSecretBasic":
        pair = f"{session['client_id']}:{session['client_secret']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    case.headers = headers


@schema.parametrize()
@settings(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@pytest.mark.xdist_group("schemathesis")
def test_the_sandbox_answers_as_its_openapi_says(case: Any) -> None:
    credentials(case, SANDBOX)
    response = case.call()
    SEEN.setdefault(f"{case.method.upper()} {case.operation.path}", set()).add(response.status_code)
    case.validate_response(response, checks=CHECKS)



def call(method: str, path: str, session: dict[str, Any] | None, token: str | None, **parts: Any) -> Any:
    """One explicit request through schemathesis, validated with the same checks; its response."""
    operation = schema[path][method]
    path_parameters = dict(parts.pop("path_parameters", {}))
    if session is not None:
        path_parameters["session_id"] = session["id"]
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "RefApp/1.0.0 (REG-0001)"} if token else {}
    headers |= parts.pop("headers", {})
    case = operation.Case(path_parameters=path_parameters or None, headers=headers, **parts)
    response = case.call()
    SEEN.setdefault(f"{method} {path}", set()).add(response.status_code)
    case.validate_response(response, checks=CHECKS)
    return response


@pytest.mark.xdist_group("schemathesis")
def test_success_answers_match_their_schemas() -> None:
    """The answers random data rarely reaches (a look-up that matches, a stored document, a delivered message,
    userinfo), sent explicitly and checked the same way."""
    session = SANDBOX.session()
    fixtures = session["fixtures"]
    practitioner = fixtures["practitioners"][0]
    token = issue_access_token(SANDBOX.store, session["id"], practitioner["national_id"])
    outcomes = set()
    for patient in fixtures["patients"]:
        r = call("POST", "/s/{session_id}/insi/lookup", session, token, body=patient["traits"]
                 | {k: normalise_name(patient["traits"][k]) for k in ("birth_name", "first_names")},
                 media_type="application/json")
        outcomes.add(r.json()["outcome"])
    assert outcomes == {"match", "no_match", "multiple"}
    body = session_submission(fixtures)
    uid = body["metadata"]["unique_id"]
    assert call("POST", "/s/{session_id}/dmp/documents", session, token, body=body,
                media_type="application/json").status_code == 201
    assert call("POST", "/s/{session_id}/dmp/documents", session, token, body=body,
                media_type="application/json").status_code == 200
    doc = {"path_parameters": {"unique_id": uid}}
    assert call("GET", "/s/{session_id}/dmp/documents/{unique_id}", session, token, **doc).status_code == 200
    patient_id = body["metadata"]["patient_id"].split("^")[0]
    assert call("GET", "/s/{session_id}/dmp/patients/{patient_id}/documents", session, token,
                path_parameters={"patient_id": patient_id}).json()["documents"]
    assert call("POST", "/s/{session_id}/dmp/documents/{unique_id}/hide", session, session["session_token"],
                **doc).status_code == 200
    new = session_submission(fixtures)
    assert call("POST", "/s/{session_id}/dmp/documents/{unique_id}/replace", session, token, body=new,
                media_type="application/json", **doc).status_code == 201
    assert call("DELETE", "/s/{session_id}/dmp/documents/{unique_id}", session, token,
                path_parameters={"unique_id": new["metadata"]["unique_id"]}).status_code == 200
    message = {"from": practitioner["mss_address"], "to": [fixtures["organisations"][0]["mss_address"]],
               "subject": "CR", "body": "ci-joint", "message_id": "msg-schemathesis-1"}
    assert call("POST", "/s/{session_id}/mss/messages", session, token, body=message,
                media_type="application/json").status_code == 201
    assert call("POST", "/s/{session_id}/mss/messages", session, token, body=message,
                media_type="application/json").json()["duplicate"] is True
    assert call("GET", "/s/{session_id}/mss/mailboxes/{address}/messages", session, token,
                path_parameters={"address": message["to"][0]}).json()
    grant = {"sub": practitioner["national_id"], "client_id": session["client_id"], "scopes": ["openid"],
             "auth_time": 0, "practitioner": practitioner, "userinfo": practitioner_claims(practitioner)}
    SANDBOX.store.put_token("userinfo-token", "access", session["id"], grant, ttl=600)
    for method in ("GET", "POST"):
        assert call(method, "/s/{session_id}/idp/userinfo", session, "userinfo-token").status_code == 200
    # sent by the installation's own software (its registration id and version)
    prod = session_submission(fixtures, site="750100011") | {"software": {
        "name": "Acme", "version": "1.0", "registration_id": "REG-ACME-EHR"}}
    assert call("POST", "/prod/dmp/documents", None, SANDBOX.installation_token, body=prod,
                media_type="application/json").status_code == 201
    assert call("POST", "/prod/mss/messages", None, SANDBOX.installation_token, body=message,
                media_type="application/json").status_code == 201


@pytest.mark.xdist_group("schemathesis")
def test_the_housing_data_space_answers_match_their_schemas() -> None:
    """The data space's successes (a consent granted, read and revoked; a quote deposited, again, read back; a
    transfer; the production role's deposit), sent explicitly and checked the same way."""
    from tests.sandbox.test_http_rules import quote

    session = SANDBOX.session()
    token = issue_access_token(SANDBOX.store, session["id"], session["fixtures"]["practitioners"][0]["national_id"])
    fiscal = session["fixtures"]["homes"][0]["fiscal_number"]
    asked = {"household": fiscal, "scope": ["quote", "consumption"], "transfer_consumption": True,
             "purpose": "renovation quote", "expires": "2099-12-31"}
    consent = call("POST", "/s/{session_id}/dataspace/consents", session, token, body=asked,
                   media_type="application/json")
    assert consent.status_code == 201
    cid = consent.json()["consent_id"]
    home = {"path_parameters": {"fiscal": fiscal}, "headers": {"Consent-Id": cid}}
    assert call("GET", "/s/{session_id}/dataspace/consents/{consent_id}", session, token,
                path_parameters={"consent_id": cid}).json()["status"] == "granted"
    import json

    doc = json.loads(quote(b"2.5", "Q-schemathesis"))
    doc["home"]["fiscal_number"] = fiscal
    for status in (201, 200):
        assert call("POST", "/s/{session_id}/dataspace/homes/{fiscal}/quotes", session, token, body=doc,
                    media_type="application/json", **home).status_code == status
    read = call("GET", "/s/{session_id}/dataspace/homes/{fiscal}/documents", session, token,
                query={"kind": "quote"}, **home)
    assert read.status_code == 200
    assert call("POST", "/s/{session_id}/dataspace/homes/{fiscal}/transfers", session, token, body={
        "recipient": "Energy adviser", "period": "2026-01"}, media_type="application/json", **home).status_code == 201
    assert call("DELETE", "/s/{session_id}/dataspace/consents/{consent_id}", session, token,
                path_parameters={"consent_id": cid}).json()["status"] == "revoked"
    # production: a contractor's installation deposits under a consent the household granted to it, an adviser's
    # transfers; a test session's consent is none of theirs
    home["path_parameters"] = {"fiscal": fiscal}
    contractor, adviser = (SANDBOX.install(category) for category in ("CONTRACTOR", "ADVISER"))
    assert call("POST", "/prod/dataspace/homes/{fiscal}/quotes", None, contractor, body=doc,
                media_type="application/json", **home).json()["code"] == "consent-unknown"
    granted = {}
    for token in (contractor, adviser):
        r = call("POST", "/prod/dataspace/consents", None, token, body=asked | {"scope": ["quote", "consumption"]},
                 media_type="application/json")
        assert r.status_code == 201
        granted[token] = {"Consent-Id": r.json()["consent_id"]}
        assert call("GET", "/prod/dataspace/consents/{consent_id}", None, token,
                    path_parameters={"consent_id": r.json()["consent_id"]}).json()["status"] == "granted"
    for status in (201, 200):
        assert call("POST", "/prod/dataspace/homes/{fiscal}/quotes", None, contractor, body=doc,
                    media_type="application/json", path_parameters=home["path_parameters"],
                    headers=granted[contractor]).status_code == status
        assert call("POST", "/prod/dataspace/homes/{fiscal}/transfers", None, adviser, body={
            "recipient": "Energy adviser", "period": "2026-01"}, media_type="application/json",
            path_parameters=home["path_parameters"], headers=granted[adviser]).status_code == status
    assert call("DELETE", "/prod/dataspace/consents/{consent_id}", None, adviser,
                path_parameters={"consent_id": granted[adviser]["Consent-Id"]}).json()["status"] == "revoked"
