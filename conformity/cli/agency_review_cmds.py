"""``usine agency review`` and ``usine agency evidence``: the reviewer's side of document and manual requirements."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import click

from conformity.cli.agency_options import registry_option, same_person_option
from conformity.cli.common import get_catalog, output_folder
from conformity.errors import InputError


@click.command("review")
@click.argument("submission")
@click.argument("requirements", nargs=-1, required=True, metavar="REQ-ID...")
@click.option("--accept", is_flag=True, help="The evidence proves the requirement.")
@click.option("--reject", is_flag=True, help="It does not (a rejected MUST refuses the label).")
@click.option("--reason", required=True, help="Why: what was checked in the evidence, or what is missing.")
@click.option("--reviewer", required=True, envvar="USINE_REVIEWER", help="Who reviews (recorded with the review).")
@registry_option
@same_person_option
@click.pass_context
def review_cmd(ctx: click.Context, submission: str, requirements: tuple[str, ...], accept: bool, reject: bool,
               reason: str, reviewer: str, registry_path: Path | str | None, same_person: dt.timedelta) -> None:
    """Record a review of the evidence for document/manual requirements of SUBMISSION (id or label id).

    Only while the submission awaits reviews (pending). Reviews are appended: a later review of a
    requirement supersedes an earlier one, which stays in the history. Four-eyes rule: a MUST
    requirement is accepted once two different reviewers accepted it (the second acceptance by the
    first reviewer is refused). Exit 0 recorded, 2 refused
    (nothing recorded): not pending, a requirement that does not apply or is automated, a document
    requirement the run carries no evidence for. Then: usine agency decide SUBMISSION.
    """
    from conformity.agency.registry import Registry
    from conformity.agency.submit import default_registry, preview, registry_exists

    if accept == reject:
        raise click.UsageError("say either --accept or --reject")
    verdict: Literal["accepted", "rejected"] = "accepted" if accept else "rejected"
    path = registry_path or default_registry()
    if not registry_exists(path):
        raise InputError("no registry here (decide a bundle first, or give --registry)", file=path)
    catalog = get_catalog(ctx)  # before anything is recorded: a catalog that does not load changes nothing
    with Registry(path) as registry:
        recorded = registry.review(submission, requirements, verdict, reason, reviewer, same_person=same_person)
        s = registry.get(submission)
        now = dt.datetime.now(dt.UTC)  # after the review, which is dated holding the write lock
        predicted = preview(registry, s, catalog, now, same_person)
    for r in recorded:
        files = ", ".join(f"{e['file']} (sha256 {e['sha256'][:16]}…)" for e in r.evidence) or "no file"
        click.echo(f"recorded: {r.requirement} [{r.level}, {r.method}] {r.verdict} by {r.reviewer} at {r.at}; "
                   f"reviewed {files}")
    waiting = ", ".join(a.id + (f" (second review: accepted by {a.accepted_by})" if a.second_review else "")
                        for a in predicted.awaiting)
    click.echo(f"submission {s.id}: " + {
        "pending": f"{len(predicted.awaiting)} MUST requirement(s) still await review: {waiting}",
        "labelled": "every applicable MUST is passed or accepted",
        "refused": "a MUST is not passed or was rejected: deciding refuses it"}[predicted.outcome]
        + f"; decide: usine agency decide {s.id}")


@click.command("evidence")
@click.argument("submission")
@click.argument("requirements", nargs=-1, metavar="[REQ-ID...]")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), callback=output_folder,
              help="Folder to write the files into (as evidence/<REQ-ID>/<name>).")
@registry_option
def evidence_cmd(submission: str, requirements: tuple[str, ...], out_dir: Path, registry_path: Path | str | None) -> None:
    """Write the evidence a run bound (all, or for some requirements) for a reviewer to read.

    Each file is the one whose SHA-256 the run's signed traces carry; every file is checked again before any is
    written. Exit 0 written, 2 refused (nothing written): an unknown submission, a requirement the run carries no
    evidence for, stored bytes that no longer match their SHA-256.
    """
    from conformity.agency.registry import Registry
    from conformity.agency.submit import default_registry, registry_exists
    from conformity.files import output_set
    from conformity.signing import sha256_hex

    path = registry_path or default_registry()
    if not registry_exists(path):
        raise InputError("no registry here (decide a bundle first, or give --registry)", file=path)
    with Registry(path) as registry:
        s = registry.get(submission)
        files = [e for e in registry.evidence(s.id) if not requirements or e.requirement in requirements]
        unknown = sorted(set(requirements) - {e.requirement for e in files})
        if unknown:
            raise InputError(f"submission {s.id} carries no evidence for {', '.join(unknown)}", where="REQ-ID")
        stored = [(e, registry.evidence_data(e.sha256)) for e in files]
        for e, data in stored:
            if sha256_hex(data) != e.sha256:
                raise InputError(f"{e.file}: stored bytes do not match their SHA-256 (registry damaged?)", file=path)
        if stored:  # the whole set or none of it: a failure part-way leaves --out as it was
            with output_set(out_dir, [e.file for e, _ in stored]) as temps:
                for e, data in stored:
                    temps[e.file].write_bytes(data)
        for e, _ in stored:
            click.echo(f"{e.requirement}: {out_dir / e.file} ({e.media_type}, {e.bytes} bytes, sha256 {e.sha256})")
    if not files:
        click.echo(f"submission {s.id} carries no evidence")
