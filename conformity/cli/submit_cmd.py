"""``usine submit BUNDLE --agency URL --token T``: a vendor sends a bundle to the agency's service and follows it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from conformity.cli.params import BEARER_TOKEN, Seconds
from conformity.errors import InputError

#: exit codes, as ``usine agency decide``: 0 labelled, 1 refused, 3 revoked version, 4 awaiting review
EXIT = {"labelled": 0, "refused": 1, "revoked": 3, "awaiting-review": 4, "pending": 4, "expired": 1}


def _chunks(path: Path, size: int = 256 * 1024) -> Any:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


@click.command("submit")
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--agency", "agency_url", required=True, envvar="USINE_AGENCY_URL", help="The agency service's URL.")
@click.option("--token", required=True, envvar="USINE_AGENCY_TOKEN", type=BEARER_TOKEN,
              help="Your API token (better in $USINE_AGENCY_TOKEN than on a command line).")
@click.option("--ca", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="CA certificate (PEM) to trust for the agency's TLS, besides the system's.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the bundle is verified.")
@click.option("--timeout", default=300.0, show_default=True, type=Seconds(24 * 3600),
              help="Seconds to wait for verification (at most a day).")
@click.pass_context
def submit_cmd(ctx: click.Context, bundle: Path, agency_url: str, token: str, ca: Path | None, wait: bool,
               timeout: float) -> None:
    """Upload BUNDLE to the agency and report its state: findings, what awaits review, the label.

    BUNDLE is checked first, before anything is sent: a zip the agency reads, holding a manifest.json.
    Exit 0 labelled, 1 refused (every finding listed), 2 not a bundle, or refused by the service (token, size, type),
    3 the version's label was revoked, 4 awaiting the agency's review; with --no-wait, 0 once received.
    """
    import httpx

    base = agency_url.rstrip("/")
    verify: Any = True
    if ca is not None:
        from conformity.files import trust_anchor

        verify = trust_anchor(ca, "--ca")
    from conformity.agency.verify import preflight

    preflight(bundle)  # garbage is refused here, before any byte is sent (the agency judged it, a submission recorded)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/zip"}
    with httpx.Client(base_url=base, verify=verify, timeout=60.0, headers={"Accept": "application/json"}) as client:
        try:
            r = client.post("/api/v1/submissions", params={"name": bundle.name}, content=_chunks(bundle),
                            headers=headers | {"Content-Length": str(bundle.stat().st_size)})
        except httpx.HTTPError as exc:
            raise InputError(f"cannot reach the agency at {base}: {exc}", where="--agency") from exc
        doc = _answer(r, base)
        click.echo(f"received: {doc['id']} ({doc.get('bytes')} bytes, sha256 {doc.get('sha256')})")
        deadline = time.monotonic() + timeout
        while wait and doc["status"] in ("received", "verifying") and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                r = client.get(f"/api/v1/submissions/{doc['id']}", headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                raise InputError(f"the agency at {base} received the bundle as {doc['id']}, then could not be reached: "
                                 f"{exc}; follow it at {base}/api/v1/submissions/{doc['id']}", where="--agency") from exc
            doc = _answer(r, base)
    _report(doc)
    if not wait:
        ctx.exit(0)
    if doc["status"] in ("received", "verifying"):
        click.echo(f"still {doc['status']} after {timeout:.0f} s: follow it at {base}/api/v1/submissions/{doc['id']}")
        ctx.exit(5)
    ctx.exit(EXIT.get(doc["status"], 0 if doc["status"] == "verified" else 1))


def _answer(r: Any, base: str) -> dict[str, Any]:
    """The submission the agency's service answered; InputError for a refusal, or for an answer that holds none (the
    URL of another service: a web page, a proxy's)."""
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code >= 400:
        problem = body if isinstance(body, dict) else {}
        detail = problem.get("detail") or r.text[:300]
        raise InputError(f"the agency at {base} refused ({r.status_code} {problem.get('title', r.reason_phrase)}): "
                         f"{detail}", where="submit")
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not isinstance(body.get("status"), str):
        kind = r.headers.get("content-type", "no content type")
        raise InputError(f"{base} answered HTTP {r.status_code} ({kind}) holding no submission: is --agency the agency "
                         "service's URL?", where="--agency")
    return body


def _report(doc: dict[str, Any]) -> None:
    d = doc.get("decision") or {}
    sw = d.get("software") or {}
    click.echo(f"{doc['status'].upper()}: {doc['id']}" + (f" — {sw.get('name')} {sw.get('version')}, {d.get('wave')} "
                                                         f"{d.get('category')}" if sw else ""))
    for f in doc.get("findings", []):
        click.echo(f"  - {f}")
    for a in d.get("awaiting_review", []) if doc["status"] == "awaiting-review" else ():
        click.echo(f"  awaiting review: {a['id']} {a['title']}")
    for f in d.get("failed_requirements", []):
        click.echo(f"  not passed: {f['id']} {f.get('title', '')} ({f.get('verdict', '')})")
    for r in d.get("rejected_reviews", []):
        click.echo(f"  rejected on review: {r['id']} by {r['reviewer']}: {r['reason']}")
    if doc.get("submission"):
        click.echo(f"  submission {doc['submission']['id']}: {doc['submission']['state']}")
    if doc.get("label"):
        click.echo(f"  label: {doc['label']}")
