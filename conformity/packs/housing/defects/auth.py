"""Trace mutations: professional authentication (PROAUTH)."""

from __future__ import annotations

from conformity.checks.oidc import redacted_hash
from conformity.defects.edit import TraceEdit
from conformity.packs.housing.defects.common import copied, mutation
from conformity.packs.housing.scenarios.auth import LOGIN_FAULTS
from conformity.packs.housing.scenarios.common import PROVIDER

SCENARIO = LOGIN_FAULTS.id
CATEGORY = "DIAGNOSTICIAN"


@mutation(
    "implicit-flow", scenario=SCENARIO, breaks=["PROAUTH-001"], category=CATEGORY, where="request.query.response_type"
)
def implicit_flow(t: TraceEdit) -> float:
    """The software asks for the hybrid flow (response_type=code id_token) on its first login."""
    e = t.in_step("control", PROVIDER, path="/authorize")[0]
    e.raw["request"]["query"]["response_type"] = ["code id_token"]
    return e.seq


def accepts(step: str, breaks: list[str]) -> None:
    """Register a mutation: the software accepts the forged login of ``step`` and uses its access token."""

    def change(t: TraceEdit) -> float:
        note = t.step(step)
        token = t.in_step(step, PROVIDER, path="/token")[-1]
        issued = redacted_hash((token.response_json or {}).get("access_token"))
        userinfo = t.in_step("control", PROVIDER, path="/userinfo")[-1]
        raw = copied(userinfo, note.seq - 0.5)
        raw["request"]["auth"] = dict(raw["request"]["auth"]) | {"token_sha256": issued}
        seq = t.insert(raw)
        note.raw["data"]["output"] = dict(t.output("control"))
        return seq

    change.__doc__ = f"The software accepts the ID token of step {step!r} and calls userinfo with its access token."
    mutation(
        f"accepts-{step.replace('_', '-')}", scenario=SCENARIO, breaks=breaks, category=CATEGORY, where="request.auth"
    )(change)


accepts("bad_signature", ["PROAUTH-005"])
accepts("alg_none", ["PROAUTH-005"])
accepts("hs256_public_key", ["PROAUTH-005"])
accepts("unknown_kid", ["PROAUTH-005"])
accepts("wrong_audience", ["PROAUTH-006"])
accepts("expired", ["PROAUTH-006"])
accepts("wrong_acr", ["PROAUTH-007"])
accepts("wrong_nonce", ["PROAUTH-003"])


@mutation("state-not-checked", scenario=SCENARIO, breaks=["PROAUTH-002"], category=CATEGORY, where="output")
def state_not_checked(t: TraceEdit) -> float:
    """The software opens a session after a callback whose state is not the one it sent."""
    return t.set_output("state_not_echoed", dict(t.output("control")))


@mutation(
    "pkce-verifier-missing",
    scenario=SCENARIO,
    breaks=["PROAUTH-004"],
    category=CATEGORY,
    where="request.body.form.code_verifier",
)
def pkce_verifier_missing(t: TraceEdit) -> float:
    """The software redeems its first code without the PKCE verifier."""
    e = t.in_step("control", PROVIDER, path="/token")[0]
    e.raw["request"]["body"]["form"].pop("code_verifier", None)
    return e.seq


@mutation("siret-not-recorded", scenario=SCENARIO, breaks=["PROAUTH-008"], category=CATEGORY, where="output")
def siret_not_recorded(t: TraceEdit) -> float:
    """The software records the professional with a SIRET typed at installation instead of userinfo's."""
    out = t.output("control")
    out["siret"] = "00000000000000"
    return t.step("control").seq
