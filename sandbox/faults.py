"""The faults a test session can inject into the sandbox's services, for security scenarios.

Set with ``PUT /admin/sessions/{id}/faults`` as ``{"<service>": {<fault>: <value>}}``; a service
set to ``null`` or ``{}`` is cleared. Each service reads its own with ``deps.fault``.
"""

from __future__ import annotations

from typing import Any

#: ID-token forgeries (the OpenID Foundation's RP certification tests, as faults a session sets); kid_absent is a
#: valid token without a kid in its header (the JWKS holds one key)
ID_TOKEN_FAULTS = ("bad_signature", "wrong_issuer", "wrong_audience", "expired", "wrong_nonce", "alg_none",
                   "unknown_kid", "wrong_acr", "stale_auth_time", "issued_in_future", "foreign_azp",
                   "hs256_public_key", "kid_absent", "nonce_missing", "several_audiences_no_azp", "nbf_in_future",
                   "iat_missing", "exp_missing", "sub_missing", "wrong_at_hash", "wrong_c_hash")
USERINFO_SIGNED = ("valid", "bad_signature")
INS_FAULTS = ("short_ins", "wrong_oid")

CATALOGUE: dict[str, dict[str, str]] = {
    "idp": {
        "id_token": "one of " + ", ".join(ID_TOKEN_FAULTS) + ": the next ID tokens are forged that way",
        "state_not_echoed": "true: the authorization redirect carries a state other than the one sent",
        "userinfo_other_sub": "true: userinfo answers with another practitioner's claims (sub differs from the ID token's)",
        "userinfo_signed": "valid or bad_signature: userinfo answers a JWT signed by the provider (application/jwt), "
                           "its signature corrupted for bad_signature",
        "rotate_keys": "true: the provider has rotated its signing key: the JWKS publishes the new key only and it "
                       "signs the ID tokens",
        "discovery_other_issuer": "true: the discovery document names another issuer than the provider's",
    },
    "insi": {"unavailable": "n: the next n look-ups answer 503 with Retry-After",
             "ins": "one of " + ", ".join(INS_FAULTS) + ": single matches carry a 13-character INS or a non-INS OID"},
    "dmp": {
        "unavailable": "n: the next n submissions answer 503 (after storing nothing)",
        "retry_after": "seconds announced in Retry-After (default 1)",
        "slow": "seconds: every answer is delayed this long",
        "lost_replies": "n: the next n submissions are stored, then answered 503 with Retry-After (a reply lost "
                        "after the record committed)",
        "patient_hides": "n: the patient hides the next n newly stored documents from professionals at once",
    },
    "mss": {"unavailable": "n: the next n sends answer 503 with Retry-After"},
    "directory": {"unavailable": "n: the next n searches answer 503 with Retry-After",
                  "max_age": "seconds announced in Cache-Control max-age (default 300)"},
}


#: faults every service but the identity provider has: answers refused, and its connection failing (sandbox.network)
NETWORK = {
    "rate_limited": "n: the next n requests answer 429 with Retry-After",
    "omit_retry_after": "true: 503 and 429 answers carry no Retry-After",
    "reset": "n: the connection of the next n requests is reset before they are processed",
    "dropped_replies": "n: the next n requests are processed, then their connection is closed without an answer",
    "stall": "n: the next n requests are processed, then their answer is held until the software gives up (or 32 s)",
}
for _service in ("insi", "dmp", "mss", "directory"):
    CATALOGUE[_service] = {**CATALOGUE[_service], **NETWORK}
    CATALOGUE[_service].setdefault("unavailable", "n: the next n requests answer 503 with Retry-After")
    CATALOGUE[_service].setdefault("retry_after", "seconds announced in Retry-After (default 1)")


def validate_faults(faults: Any) -> list[str]:
    """Every problem with a faults document (empty list: valid)."""
    if not isinstance(faults, dict):
        return ["faults must be an object keyed by service"]
    errors = []
    for service, spec in faults.items():
        if service not in CATALOGUE:
            errors.append(f"unknown service {service!r} (services: {', '.join(CATALOGUE)})")
            continue
        if spec is None:
            continue
        if not isinstance(spec, dict):
            errors.append(f"{service}: faults must be an object")
            continue
        for name, value in spec.items():
            if name not in CATALOGUE[service]:
                errors.append(f"{service}: unknown fault {name!r} (known: {', '.join(CATALOGUE[service])})")
            elif name == "id_token" and value not in ID_TOKEN_FAULTS and value is not None:
                errors.append(f"idp.id_token: {value!r} is not one of {', '.join(ID_TOKEN_FAULTS)}")
            elif name == "max_age" and not (isinstance(value, int) and 0 <= value <= 86400):
                errors.append(f"{service}.max_age: expected seconds 0..86400")
            elif name in ("unavailable", "retry_after", "lost_replies", "patient_hides", "rate_limited", "reset",
                          "dropped_replies", "stall") \
                    and not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100):
                errors.append(f"{service}.{name}: expected an integer 0..100")
            elif name == "slow" and not (isinstance(value, (int, float)) and 0 <= value <= 30):
                errors.append(f"{service}.slow: expected seconds 0..30")
            elif name in ("state_not_echoed", "userinfo_other_sub", "rotate_keys", "discovery_other_issuer",
                          "omit_retry_after") and not isinstance(value, bool):
                errors.append(f"{service}.{name}: expected true or false")
            elif name == "userinfo_signed" and value not in USERINFO_SIGNED and value is not None:
                errors.append(f"idp.userinfo_signed: {value!r} is not one of {', '.join(USERINFO_SIGNED)}")
            elif service == "insi" and name == "ins" and value not in INS_FAULTS and value is not None:
                errors.append(f"insi.ins: {value!r} is not one of {', '.join(INS_FAULTS)}")
    return errors
