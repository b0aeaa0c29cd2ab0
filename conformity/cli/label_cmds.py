"""``usine label verify``: offline verification of a label for third parties.

A label is VALID only when its signature verifies, it is in its validity window, and a signed revocation
list that is fresh at that time (``next_update`` not passed) does not revoke it. Exit codes:

0  VALID
1  INVALID: edited, untrusted key, malformed, expired, not yet valid, or revoked (it says which)
2  unreadable input: no such file, not JSON (or nested too deep), not a label, no key to verify with,
   a revocation list that does not verify
3  revocation status unknown: the label is otherwise valid, but no revocation list was given
4  revocation list stale: the label is otherwise valid, but the list's next_update has passed
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from conformity.cli.params import RFC3339, now_unless
from conformity.errors import InputError, SignatureError
from conformity.labels import LABEL_FORMAT, RETIRED_LABEL_FORMATS, Label, load_revocations, verify_label
from conformity.signing import KeyRing, load_json_file, unverified_payload


def _keys(paths: tuple[Path, ...]) -> KeyRing:
    from conformity.agency.submit import default_agency_key, public_key_path

    given = list(paths) or [p for p in [public_key_path(default_agency_key())] if p.is_file()]
    if not given:
        raise InputError("no agency public key: give --agency-key PEM (or set USINE_AGENCY_PUBKEY)", where="--agency-key")
    ring = KeyRing.from_paths(given)
    if not len(ring):
        raise InputError(f"no public key found in {', '.join(map(str, given))}", where="--agency-key")
    return ring


def judge(path: Path, keys: KeyRing, at: dt.datetime, revocations: Path | None) -> tuple[int, str]:
    """(exit code, verdict line) for one label file."""
    signed = load_json_file(path)  # InputError (exit 2) when unreadable
    claimed = unverified_payload(signed, source=str(path))  # InputError (exit 2) when not a signed document
    if claimed.get("format") not in (LABEL_FORMAT, *RETIRED_LABEL_FORMATS):
        raise InputError(f"not a label (expected format {LABEL_FORMAT})", file=path, where="format")
    try:
        label: Label = verify_label(signed, keys, source=str(path))
    except SignatureError as exc:
        p = exc.problems[0]
        kind = "signed by an untrusted key" if p.where == "protected.kid" else (
            "edited after signing" if p.where == "signature" else "bad signature")
        return 1, f"INVALID ({kind}): {exc}"
    except InputError as exc:
        if claimed.get("format") in RETIRED_LABEL_FORMATS:
            return 1, f"INVALID (retired label format): {exc}"
        return 1, f"INVALID (malformed or edited: does not match the label schema): {exc}"
    revoked_at, listed = None, None
    if revocations is not None:
        listed = load_revocations(revocations, keys)  # InputError (exit 2) when it does not verify
        revoked_at = listed.revoked_for(label)
    why = label.valid_at(at, revoked_at)
    d = label.doc
    scope = (f"label {label.id}: {d['software']['name']} {', '.join(d['versions'])} ({d['vendor']['name']}), "
             f"wave {d['wave']} {d['category']}")
    if why == "expired":
        return 1, f"INVALID (expired): {scope} expired at the end of {d['expires']}"
    if why == "not-yet-valid":
        return 1, f"INVALID (not yet valid): {scope} is issued {d['issued']}"
    if why == "revoked":
        return 1, f"INVALID (revoked): {scope} was revoked on {revoked_at.isoformat() if revoked_at else '?'}"
    facts = (f"issued {d['issued']}, valid through {d['expires']}; run {d['run']['id']}; "
             f"{len(d['requirements_passed'])} requirements passed by automated checks, "
             f"{sum(r['verdict'] == 'accepted' for r in d['requirements_reviewed'])} accepted on review; "
             f"signed by key {d['issuer']['key_id'][:16]}…")
    if listed is None:
        return 3, (f"REVOCATION STATUS UNKNOWN: {scope}: signature and dates are valid ({facts}), but without a "
                   "revocation list nobody can say it was not revoked; give --revocations revocations.json")
    if listed.stale_at(at):
        return 4, (f"REVOCATION LIST STALE: {scope}: signature and dates are valid ({facts}), but the revocation list "
                   f"{revocations} was to be replaced by {listed.next_update.isoformat()}: get the current one")
    return 0, f"VALID: {scope}; {facts}; not revoked (revocation list of {listed.issued.isoformat()})"


@click.group("label")
def label() -> None:
    """Labels issued by the agency: verify them offline."""


@label.command("verify")
@click.argument("label_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--agency-key", "--key", "keys", multiple=True, envvar="USINE_AGENCY_PUBKEY",
              type=click.Path(path_type=Path),
              help="The agency's public key (PEM) or a folder of them; repeatable (default: the local agency's); --key "
                   "is the older spelling.")
@click.option("--revocations", envvar="USINE_REVOCATIONS", type=click.Path(dir_okay=False, path_type=Path),
              help="The agency's signed revocations.json; without it (or when its next_update has passed) a label "
                   "is never said VALID.")
@click.option("--at", "at", type=RFC3339, help="Judge validity at this RFC 3339 time (default: now).")
@click.pass_context
def label_verify(ctx: click.Context, label_file: Path, keys: tuple[Path, ...], revocations: Path | None,
                 at: dt.datetime | None) -> None:
    """Verify LABEL_FILE: signature by the agency, content unchanged, valid now (or --at), not revoked.

    Exit 0 valid, 1 invalid, 2 unreadable input, 3 revocation status unknown (no --revocations),
    4 revocation list stale (its next_update has passed).
    """
    code, line = judge(label_file, _keys(keys), now_unless(at), revocations)
    click.echo(line)
    ctx.exit(code)
