"""Catalog commands: validate, referentials, wave show / diff, coverage."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import click

from conformity.catalog import parse_ref
from conformity.catalog.coverage import coverage, declaration_problems, with_defects
from conformity.catalog.diff import diff_waves
from conformity.catalog.render import FORMATS, diff_text, render_spec
from conformity.checks.packs import registered
from conformity.cli.common import emit, get_catalog, output_option
from conformity.defects.coverage import (
    PROVEN_LEVELS,
    broken_alone,
    defective_vendors_dirs,
    load_pack_defects,
    proving_tests,
)


@click.command()
@click.pass_context
def validate(ctx: click.Context) -> None:
    """Load and cross-check the whole catalog (exit 2 with every problem found)."""
    cat = get_catalog(ctx, with_checks=True)
    n_req = sum(len(r.requirements) for r in cat.referentials.values())
    click.echo(f"catalog OK: {len(cat.packs)} pack(s), {len(cat.referentials)} referential versions, "
               f"{n_req} requirements, {len(cat.waves)} waves ({cat.root})")


@click.group()
def referentials() -> None:
    """List and show referentials."""


@referentials.command("list")
@click.pass_context
def referentials_list(ctx: click.Context) -> None:
    """Every referential version with its status and requirement counts."""
    cat = get_catalog(ctx)
    click.echo(f"{'ID':<12}{'VERSION':<9}{'STATUS':<11}{'PUBLISHED':<12}{'REQS':>5}{'MUST':>6}  TITLE")
    for (rid, ver) in sorted(cat.referentials):
        ref = cat.referentials[(rid, ver)]
        must = sum(1 for r in ref.requirements if r.level == "MUST")
        click.echo(f"{rid:<12}{ver:<9}{ref.status:<11}{ref.published!s:<12}{len(ref.requirements):>5}{must:>6}  {ref.title}")


@referentials.command("show")
@click.argument("ref_id", metavar="ID[@VERSION]")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def referentials_show(ctx: click.Context, ref_id: str, fmt: str) -> None:
    """One referential version (the latest when no version is given)."""
    from conformity.harness.guide import action_guides, conventions

    cat = get_catalog(ctx, with_checks=True)
    rid, version = parse_ref(ref_id)
    ref = cat.referential(rid, version)
    guides = action_guides(ref.actions, ref.pack)
    if fmt == "json":
        click.echo(json.dumps({
            "id": ref.id, "version": ref.version, "title": ref.title, "owner": ref.owner, "status": ref.status,
            "published": ref.published.isoformat(), "supersedes": ref.supersedes,
            "requirements": [{"id": r.id, "title": r.title, "statement": r.statement, "level": r.level, "kind": r.kind,
                              "categories": list(r.categories), "proof": {"method": r.proof.method,
                              "checks": list(r.proof.checks), "evidence": r.proof.evidence}} for r in ref.requirements],
            "actions": [g.to_json() for g in guides],
            "conventions": [{"title": t, "text": x} for t, x in conventions(ref.pack)],
        }, indent=2, ensure_ascii=False))
        return
    click.echo(f"{ref.id} {ref.version} — {ref.title}")
    click.echo(f"owner: {ref.owner}; status: {ref.status}; published: {ref.published}"
               + (f"; supersedes {ref.supersedes}" if ref.supersedes else ""))
    click.echo(f"versions: {', '.join(cat.versions(ref.id))}")
    if ref.summary:
        click.echo(f"\n{ref.summary}")
    if ref.changes:
        click.echo(f"\nChanges: {ref.changes}")
    click.echo("")
    for r in ref.requirements:
        click.echo(f"{r.id} [{r.level}] [{r.kind}] {r.title}  ({', '.join(r.categories)})")
        click.echo(f"    {r.statement}")
        click.echo(f"    proof — {r.proof.describe()}")
    if ref.actions:
        from conformity.catalog.render import guide_text

        click.echo("\nDriver actions (conventions: usine wave show WAVE -c CATEGORY):\n")
        click.echo("\n".join(guide_text(guides, "")))


@click.group()
def wave() -> None:
    """Waves: list, the consolidated specification, the diff between two."""


@wave.command("list")
@click.pass_context
def wave_list(ctx: click.Context) -> None:
    """Every wave with its dates and categories."""
    cat = get_catalog(ctx)
    for w in sorted(cat.waves.values(), key=lambda w: w.open):
        click.echo(f"{w.id:<9} {w.title}  open {w.open}, deadline {w.submission_deadline}, "
                   f"labels until {w.label_valid_until}; categories: {', '.join(w.categories)}")


@wave.command("show")
@click.argument("wave_id", metavar="WAVE")
@click.option("--category", "-c", required=True, help="Software category (a code of the wave's pack).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@output_option
@click.pass_context
def wave_show(ctx: click.Context, wave_id: str, category: str, fmt: str, output: Path | None) -> None:
    """The ONE consolidated specification of a wave for a category."""
    from conformity.harness.guide import referential_guides
    from conformity.harness.plan import make_plan

    catalog = get_catalog(ctx, with_checks=True)  # the scenarios calling each action are the checks' own
    spec = catalog.specification(wave_id, category)
    guides = referential_guides(spec.referentials, list(make_plan(catalog, wave_id, category).scenarios))
    emit(render_spec(spec, fmt, guides), output)


@wave.command("diff")
@click.argument("wave_a", metavar="WAVE_A")
@click.argument("wave_b", metavar="WAVE_B")
@click.option("--category", "-c", help="Only this category.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@output_option
@click.pass_context
def wave_diff(ctx: click.Context, wave_a: str, wave_b: str, category: str | None, fmt: str,
              output: Path | None) -> None:
    """Added, removed and changed requirements from WAVE_A to WAVE_B: the vendor's to-do list."""
    d = diff_waves(get_catalog(ctx), wave_a, wave_b, category)
    if fmt == "json":
        emit(json.dumps(d.to_json(), indent=2, ensure_ascii=False) + "\n", output)
    else:
        emit(diff_text(d, markdown=fmt == "markdown"), output)


@click.command("coverage")
@click.option("--wave", "wave_id", help="Only the requirements of this wave.")
@click.option("--category", "-c", help="Only this category (with --wave).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Exit 1 if an automated requirement has no registered check, if an "
                                             "automated MUST or SHOULD requirement a wave pins is broken alone by no "
                                             "declared defect (trace mutation or defective vendor), if a check declares a "
                                             "requirement no wave holds, or if a requirement with no automated check "
                                             "gives a placeholder for its reason.")
@click.pass_context
def coverage_cmd(ctx: click.Context, wave_id: str | None, category: str | None, fmt: str, strict: bool) -> None:
    """Requirements → checks → the defects that prove them → the ids of the tests proving those: which are covered,
    which are proven by document or manual review, which no defect ever fails."""
    if category and not wave_id:
        raise click.UsageError("--category needs --wave (a category's requirements are a wave's)")
    catalog = get_catalog(ctx)  # missing checks are this command's output, not an error
    declared = registered().checks  # registers every pack's checks
    load_pack_defects(catalog.root)
    unheld = declaration_problems(catalog, declared, wave_id)

    vendors = defective_vendors_dirs(catalog.root)
    rows = with_defects(coverage(catalog, wave_id, category), catalog, broken_alone(catalog, vendors), wave_id,
                        proving_tests(catalog, vendors))
    blind = [r for r in rows if r.method == "automated" and r.level in PROVEN_LEVELS and r.pinned and not r.defects]
    if fmt == "json":
        click.echo(json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False))
        for problem in unheld:
            click.echo(problem, err=True)
    else:
        for r in rows:
            checks = ", ".join(r.checks) if r.checks else "-"
            note = f"  ({r.note})" if r.note else ""  # why a document or a manual review proves it, too
            defects = f"  [defects: {len(r.defects)}]" if r.method == "automated" and r.pinned else ""
            click.echo(f"{r.requirement:<34} {r.level:<7} {r.status:<16} {checks}{note}{defects}")
            if r.defects:
                click.echo(f"    defects: {', '.join(r.defects)}")
            if r.test_selector and r.pinned:
                named = f": {', '.join(r.tests)}" if r.tests else ": none in the waves pinning this version"
                click.echo(f"    tests (pytest -k {r.test_selector}){named}")
        counts = Counter(r.status for r in rows)
        click.echo("\n" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        for r in blind:
            click.echo(f"{r.requirement}: no defect breaks it alone, so nothing shows its checks can fail")
        for problem in unheld:
            click.echo(problem)
    if strict and (blind or unheld or any(r.status in ("missing-check", "check-disagrees", "no-reason") for r in rows)):
        ctx.exit(1)
