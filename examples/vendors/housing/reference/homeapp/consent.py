"""The household's consent: asked for, honoured on every access, revoked; consumption transferred only if allowed."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from homeapp import defects
from homeapp.context import App, ServiceError

FISCAL = re.compile(r"^[0-9][0-9AB][0-9]{10}$")
DAYS = 180
ASK_ANYWAY = defects.register("asks-out-of-scope", "asks the data space for any kind and lets it refuse")
RETRY_REVOKED = defects.register("keeps-revoked-consent", "keeps a consent after it was revoked and tries it again")
TRANSFER_ANYWAY = defects.register("transfers-without-permission", "sends consumption data whatever the consent says")
LOCAL_REVOKE = defects.register("revokes-locally-only", "forgets a revoked consent but never tells the data space")


def request_consent(app: App, data: dict[str, Any]) -> dict[str, Any]:
    household = data["household"]
    if not FISCAL.fullmatch(household):
        return {"granted": False, "error": f"{household!r} is not a fiscal housing number"}
    body = {
        "household": household,
        "scope": data["scope"],
        "transfer_consumption": data["transfer_consumption"],
        "purpose": data["purpose"],
        "expires": (dt.date.today() + dt.timedelta(days=DAYS)).isoformat(),
    }
    try:
        r = app.call("POST", "dataspace", "/consents", json=body)
    except ServiceError as exc:
        return {"granted": False, "error": str(exc)}
    if r.status_code != 201:
        return {"granted": False, "error": f"data space answered {r.status_code}"}
    consent = r.json()
    app.consents[household] = consent
    return {
        "granted": True,
        "consent_id": consent["consent_id"],
        "scope": consent["scope"],
        "transfer_consumption": consent["transfer_consumption"],
    }


def consent_for(app: App, household: str, kind: str) -> dict[str, Any] | None:
    """The consent that allows ``kind`` for the home, or None (never one revoked, unless the defect is on)."""
    consent = app.consents.get(household)
    if consent is None or (consent.get("revoked") and not defects.active(RETRY_REVOKED)):
        return None
    if kind not in consent["scope"] and not defects.active(ASK_ANYWAY):
        return None
    return consent


def read(app: App, data: dict[str, Any]) -> dict[str, Any]:
    household, kind = data["household"], data["kind"]
    consent = consent_for(app, household, kind)
    if consent is None:
        return {"read": False, "error": f"no consent covers {kind} for this home"}
    try:
        r = app.call(
            "GET",
            "dataspace",
            f"/homes/{household}/documents",
            params={"kind": kind},
            headers={"Consent-Id": consent["consent_id"]},
        )
    except ServiceError as exc:
        return {"read": False, "error": str(exc)}
    if r.status_code == 403 and r.json().get("code") == "consent-revoked":
        consent["revoked"] = True
        return {"read": False, "error": "the household revoked its consent"}
    if r.status_code != 200:
        return {"read": False, "error": f"data space answered {r.status_code}"}
    return {"read": True, "count": len(r.json().get("documents", []))}


def revoke(app: App, data: dict[str, Any]) -> dict[str, Any]:
    consent = app.consents.get(data["household"])
    if consent is None:
        return {"revoked": False, "error": "no consent for this home"}
    consent["revoked"] = True
    if defects.active(LOCAL_REVOKE):
        return {"revoked": True}
    try:
        r = app.call("DELETE", "dataspace", f"/consents/{consent['consent_id']}")
    except ServiceError as exc:
        return {"revoked": False, "error": str(exc)}
    return {"revoked": r.status_code == 200}


def transfer(app: App, data: dict[str, Any]) -> dict[str, Any]:
    household = data["household"]
    consent = consent_for(app, household, "consumption")
    if consent is None or not (consent.get("transfer_consumption") or defects.active(TRANSFER_ANYWAY)):
        return {"transferred": False, "error": "the household did not allow its consumption data to be transferred"}
    try:
        r = app.call(
            "POST",
            "dataspace",
            f"/homes/{household}/transfers",
            headers={"Consent-Id": consent["consent_id"]},
            json={"recipient": data["recipient"], "period": data["period"]},
        )
    except ServiceError as exc:
        return {"transferred": False, "error": str(exc)}
    return {"transferred": r.status_code == 201} | (
        {} if r.status_code == 201 else {"error": f"data space answered {r.status_code}"}
    )
