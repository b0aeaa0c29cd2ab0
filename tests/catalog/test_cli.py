"""The catalog commands as a user runs them: exit codes, formats, and what each output contains."""

from __future__ import annotations

import html
import json
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformity import plugins
from conformity.catalog import load_catalog
from conformity.cli import cli
from tests.helpers import without_mutations_breaking


def test_validate_shipped_catalog(usine) -> None:
    result = usine("validate")
    assert result.exit_code == 0, result.output
    assert "catalog OK" in result.output and "4 waves" in result.output and "2 pack(s)" in result.output


def test_validate_broken_catalog_exits_2_with_the_file(catalog_copy: Path, edit, usine) -> None:
    path = edit("referentials/health/MESSAGING/1.0.toml", 'level = "MUST"', 'level = "MAYBE"')
    result = usine("--catalog", catalog_copy, "validate")
    assert result.exit_code == 2
    assert str(path) in result.stderr and "requirements[0].level" in result.stderr and "'MAYBE'" in result.stderr


def test_referentials_list_and_show(usine) -> None:
    listing = usine("referentials", "list").output
    for rid in ("PATIENTID", "PRACAUTH", "DOCSHARE", "MESSAGING", "DIRECTORY", "SECURITY", "ETHICS"):
        assert rid in listing
    latest = usine("referentials", "show", "DOCSHARE")
    assert latest.exit_code == 0 and latest.output.startswith("DOCSHARE 2.2")
    pinned = usine("referentials", "show", "DOCSHARE@1.0")
    assert pinned.output.startswith("DOCSHARE 1.0") and "DOCSHARE-001" in pinned.output
    as_json = json.loads(usine("referentials", "show", "PRACAUTH@1.1", "--format", "json").output)
    assert as_json["version"] == "1.1" and as_json["supersedes"] == "1.0"


def test_unknown_referential_or_version_exits_2(usine) -> None:
    r = usine("referentials", "show", "NOPE")
    assert r.exit_code == 2 and "unknown referential 'NOPE'" in r.stderr
    r = usine("referentials", "show", "DOCSHARE@7.0")
    assert r.exit_code == 2 and "no version '7.0'" in r.stderr and "1.0, 2.0" in r.stderr


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(v for k, v in attrs if k == "id" and v)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_wave_show_html_has_every_requirement_with_its_proof(usine, repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "spec.html"
    r = usine("wave", "show", "2027-W2", "--category", "HOSPITAL", "--format", "html", "-o", out)
    assert r.exit_code == 0, r.output
    page = _Collector()
    page.feed(out.read_text())
    spec = load_catalog(repo_root).specification("2027-W2", "HOSPITAL")
    text = " ".join(page.text)
    for a in spec.requirements:
        assert a.id in page.ids, a.id
        assert a.requirement.statement[:60] in text
    for ref in spec.referentials:
        assert ref.id in page.ids
    assert "Funding" in text and "Proof of use" in text
    assert "promoted from SHOULD" in text


def test_wave_show_text_and_markdown(usine) -> None:
    text = usine("wave", "show", "2026-W1", "--category", "LAB").output
    assert "Not required in this wave" in text and "DOCSHARE-025" in text
    md = usine("wave", "show", "2026-W1", "-c", "GP", "--format", "markdown").output
    assert md.startswith("# ") and "### PATIENTID-001" in md


def test_wave_show_unknown_category_exits_2(usine) -> None:
    r = usine("wave", "show", "2026-W1", "--category", "RADIOLOGY")
    assert r.exit_code == 2 and "has no category 'RADIOLOGY'" in r.stderr
    r = usine("wave", "show", "1999-W9", "--category", "GP")
    assert r.exit_code == 2 and "unknown wave" in r.stderr


def test_wave_diff_lists_real_differences(usine) -> None:
    r = usine("wave", "diff", "2026-W1", "2027-W2", "--category", "HOSPITAL", "--format", "json")
    d = json.loads(r.output)
    (cat,) = d["categories"]
    assert cat["added"] and cat["changed"]
    assert {"referential": "DOCSHARE", "from": "1.0", "to": "2.2"} in cat["pinned"]
    assert {"referential": "PRACAUTH", "from": "1.0", "to": "1.3"} in cat["pinned"]
    assert {"referential": "SECURITY", "from": "1.0", "to": "1.3"} in cat["pinned"]
    added = {a["id"] for a in cat["added"]}
    assert {"PRACAUTH-021", "PRACAUTH-025", "SECURITY-014", "SECURITY-015", "SECURITY-016"} <= added
    changed_fields = {f["field"] for c in cat["changed"] for f in c["fields"]}
    assert {"level", "statement"} <= changed_fields
    full = usine("wave", "diff", "2026-W1", "2027-W2").output
    assert "RADIOLOGY: category added in 2027-W2" in full
    assert "RADIOLOGY: category removed in 2026-W1" in usine("wave", "diff", "2027-W2", "2026-W1").output
    across = usine("wave", "diff", "2026-W1", "2026-W3")  # health and housing: nothing to compare
    assert across.exit_code == 2 and "a diff compares two waves of one sector" in across.stderr


def test_wave_diff_with_itself_is_empty(usine) -> None:
    d = json.loads(usine("wave", "diff", "2027-W2", "2027-W2", "--format", "json").output)
    for c in d["categories"]:
        assert not (c["added"] or c["removed"] or c["changed"] or c["pinned"] or c["funding"])


def test_wave_diff_reversed_swaps_added_and_removed(usine) -> None:
    fwd = json.loads(usine("wave", "diff", "2026-W1", "2027-W2", "-c", "GP", "--format", "json").output)
    rev = json.loads(usine("wave", "diff", "2027-W2", "2026-W1", "-c", "GP", "--format", "json").output)
    ids = lambda items: sorted(x["id"] for x in items)  # noqa: E731
    assert ids(fwd["categories"][0]["added"]) == ids(rev["categories"][0]["removed"])
    assert ids(fwd["categories"][0]["changed"]) == ids(rev["categories"][0]["changed"])


def test_coverage_lists_every_requirement_with_its_proof_method(usine, repo_root: Path) -> None:
    rows = json.loads(usine("coverage", "--wave", "2026-W1", "--format", "json").output)
    cat = load_catalog(repo_root)
    expected = {a.requirement.ref for c in cat.waves["2026-W1"].categories for a in cat.specification("2026-W1", c).requirements}
    assert {r["requirement"] for r in rows} == expected
    manual = [r for r in rows if r["method"] != "automated"]
    assert manual and all(r["note"] for r in manual), "a requirement with no automated check says why"
    text = usine("coverage", "--wave", "2026-W1").output  # the text says it too (it printed "document  -")
    assert all(f"({r['note']})" in text for r in manual), text


def test_coverage_of_a_category_needs_its_wave(usine) -> None:
    r = CliRunner().invoke(cli, ["coverage", "-c", "GP"])
    assert r.exit_code == 2 and "--category needs --wave" in r.output, r.output


def test_a_written_page_is_for_others_to_read(usine, tmp_path: Path) -> None:
    """A specification written with -o is published: the umask's mode, not the 0600 of usine's private files."""
    import os

    old = os.umask(0o022)
    try:
        r = usine("wave", "show", "2026-W1", "--category", "GP", "-o", tmp_path / "spec.txt")
    finally:
        os.umask(old)
    assert r.exit_code == 0 and (tmp_path / "spec.txt").stat().st_mode & 0o777 == 0o644


def test_validate_refuses_a_check_id_no_pack_registers(catalog_copy: Path, edit, usine) -> None:
    path = edit("referentials/health/PRACAUTH/1.0.toml", '"oidc.nonce_verified"', '"oidc.nonce_forgotten"')
    result = usine("--catalog", catalog_copy, "validate")
    assert result.exit_code == 2
    assert str(path) in result.stderr and "oidc.nonce_forgotten" in result.stderr and "not registered" in result.stderr


def test_coverage_reports_a_missing_check_instead_of_failing(catalog_copy: Path, edit, usine) -> None:
    edit("referentials/health/PRACAUTH/1.0.toml", '"oidc.nonce_verified"', '"oidc.nonce_forgotten"')
    result = usine("--catalog", catalog_copy, "coverage", "--wave", "2026-W1", "--strict")
    assert result.exit_code == 1
    assert "missing-check" in result.output and "oidc.nonce_forgotten" in result.output


def _squeezed(text: str) -> str:
    return "".join(html.unescape(text).split())


def test_the_specification_gives_each_action_with_its_schemas_example_scenarios_and_conventions(
        usine, repo_root: Path, tmp_path: Path) -> None:
    """What a vendor reads to write a driver, in every format of wave show and in referentials show."""
    spec = load_catalog(repo_root).specification("2026-W1", "GP")
    assert {a.name for a in spec.actions} >= {"practitioner.login", "patient.lookup", "message.send"}
    usine("wave", "show", "2026-W1", "-c", "GP", "--format", "html", "-o", tmp_path / "spec.html")
    outputs = {"text": usine("wave", "show", "2026-W1", "-c", "GP").output,
               "markdown": usine("wave", "show", "2026-W1", "-c", "GP", "--format", "markdown").output,
               "html": (tmp_path / "spec.html").read_text()}
    for fmt, out in outputs.items():
        flat = _squeezed(out)
        for a in spec.actions:
            for schema in (a.input, a.output):
                assert _squeezed(json.dumps(schema, indent=2, ensure_ascii=False)) in flat, (fmt, a.name)
        assert "patientid.lookups" in out and "Who is logged in" in out and "initialize" in out, fmt
        assert out.lower().count("example input") >= len(spec.actions), fmt
    text = usine("referentials", "show", "PATIENTID").output
    assert "patient.lookup" in text and "input schema" in text.lower() and "output schema" in text.lower()
    shown = json.loads(usine("referentials", "show", "PATIENTID", "--format", "json").output)
    lookup = next(a for a in shown["actions"] if a["name"] == "patient.lookup")
    assert lookup["input"]["required"] and lookup["output"]["required"] and lookup["scenarios"]
    assert {c["title"] if isinstance(c, dict) else c[0] for c in shown["conventions"]} >= {"Who is logged in"}


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_a_wave_page_gives_the_conventions_of_its_own_pack_only(usine, repo_root: Path, fmt: str) -> None:
    """A housing page said how health fixtures look and who logs in there (every installed pack's conventions)."""
    packs = plugins.installed()
    assert sum(1 for p in packs.values() if p.conventions) >= 2  # else the rule below proves nothing
    for wave in load_catalog(repo_root).waves.values():
        page = html.unescape(usine("wave", "show", wave.id, "-c", next(iter(wave.categories)), "--format", fmt).output)
        for pack in packs.values():
            for title, _ in pack.conventions:
                assert (title in page) == (pack.id == wave.pack), (wave.id, fmt, title)


def test_a_referential_gives_the_conventions_of_its_own_pack_only(usine, repo_root: Path) -> None:
    for ref in {r.id: r for r in load_catalog(repo_root).referentials.values() if r.actions}.values():
        shown = json.loads(usine("referentials", "show", ref.id, "--format", "json").output)
        titles = {c["title"] for c in shown["conventions"]}
        for pack in plugins.installed().values():
            for title, _ in pack.conventions:
                assert (title in titles) == (pack.id == ref.pack), (ref.id, title)


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_who_logs_in_first_is_worded_from_the_pack_declaration(usine, monkeypatch: pytest.MonkeyPatch,
                                                               fmt: str) -> None:
    """A scenario needing a session before any login said "log in the first fixture practitioner: no
    practitioner.login before" whatever the pack: the core's words, not the pack's login action and user."""
    def page() -> str:
        return html.unescape(usine("wave", "show", "2026-W1", "-c", "GP", "--format", fmt).output)

    health = plugins.installed()["health"]
    monkeypatch.setitem(plugins.installed(), "health", replace(health, login_action="clinician.login"))
    assert "no clinician.login before" in page() and "practitioner.login before" not in page()
    renamed = {"login_action": "clinician.login", "first_account": "the first fixture clinician"}
    monkeypatch.setitem(plugins.installed(), "health", replace(health, **renamed))
    text = page()
    assert "no clinician.login before: log in the first fixture clinician" in text
    assert "practitioner.login before" not in text and "fixture practitioner" not in text


def test_coverage_strict_fails_on_an_automated_must_requirement_no_defect_breaks(
        catalog_copy: Path, edit, usine, monkeypatch: pytest.MonkeyPatch) -> None:
    """PRACAUTH-002 is a SHOULD in 2026-W1, broken alone there by its mutations: promoted in a copy of 2026-W1, it is
    an automated MUST they still break. Without them, it is one no defect breaks there, and --strict says so and
    fails, promoted (a MUST) or not (a SHOULD)."""
    assert usine("--catalog", catalog_copy, "coverage", "--wave", "2026-W1", "--strict").exit_code == 0
    edit("waves/2026-W1.toml", 'requirements = "applicable"', 'requirements = "applicable"\npromote = ["PRACAUTH-002"]')
    assert usine("--catalog", catalog_copy, "coverage", "--wave", "2026-W1", "--strict").exit_code == 0
    without_mutations_breaking(monkeypatch, "PRACAUTH-002")
    for catalog in (catalog_copy, load_catalog().root):  # promoted to MUST, and as shipped (a SHOULD)
        lenient = usine("--catalog", catalog, "coverage", "--wave", "2026-W1")
        strict = usine("--catalog", catalog, "coverage", "--wave", "2026-W1", "--strict")
        assert lenient.exit_code == 0 and strict.exit_code == 1, strict.output
        blind = [line for line in strict.output.splitlines() if "no defect breaks it alone" in line]
        assert blind == ["PRACAUTH@1.0#PRACAUTH-002: no defect breaks it alone, so nothing shows its checks can fail"]


def test_a_command_imports_only_what_it_needs_and_help_lists_every_command() -> None:
    """Commands are imported when asked for: ``usine validate`` loads neither DuckDB nor the web stack."""
    import subprocess
    import sys

    from click.testing import CliRunner

    from conformity.cli import COMMANDS, cli

    code = ("import sys\nfrom conformity.cli import cli\ntry:\n    cli(['validate'])\nexcept SystemExit as e:\n"
            "    print(e.code, sorted(m for m in ('duckdb', 'pyarrow', 'fastapi', 'uvicorn', 'conformity.payments',"
            " 'conformity.agency') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 []", out
    listing = CliRunner().invoke(cli, ["--help"]).output
    for name in COMMANDS:
        command = cli.get_command(None, name)  # type: ignore[arg-type]  # click's lookup needs no context
        assert command is not None and command.name == name and command.callback.__module__.startswith("conformity.cli")
        assert f"  {name} " in listing, name
    assert cli.list_commands(None) == sorted(COMMANDS)  # type: ignore[arg-type]


HOSTILE = "Sender <img src=x onerror=alert(1)> &amp; *bold* [click](javascript:alert(1)) `code` | cell"


def test_markdown_pages_escape_what_the_catalog_says(catalog_copy: Path, edit, usine) -> None:
    """A title, an owner's summary or an exclusion's reason is text, not Markdown: raw HTML passed through (most
    renderers show it), a link, a heading on a line of its own, a table cell cut by a | or a line break."""
    for relpath in ("referentials/health/MESSAGING/1.0.toml", "referentials/health/MESSAGING/1.1.toml"):
        edit(relpath, 'title = "Sender address in the directory"', f'title = "{HOSTILE}"')
    edit("referentials/health/MESSAGING/1.0.toml", 'title = "Secure health messaging', f'title = "{HOSTILE} ')
    edit("waves/2026-W1.toml", 'reason = "Laboratory software feeds', f'reason = "{HOSTILE} ')
    edit("referentials/health/MESSAGING/1.0.toml", 'statement = "The sender', 'statement = "# Injected heading The sender')
    edit("referentials/health/MESSAGING/1.0.toml", 'statement = "Every recipient', 'statement = "- injected item Every')
    spec = usine("--catalog", catalog_copy, "wave", "show", "2026-W1", "-c", "LAB", "--format", "markdown")
    diff = usine("--catalog", catalog_copy, "wave", "diff", "2027-W2", "2026-W1", "-c", "LAB", "--format", "markdown")
    for result in (spec, diff):
        assert result.exit_code == 0, result.output
        assert "Sender" in result.output
        fenced = False  # a code block (an action's schema, an example) shows its text as it is
        for line in result.output.splitlines():
            fenced ^= line.startswith("```")
            if fenced:
                continue
            for made in ("<img", "&amp;", "](javascript", "*bold", "`code"):  # each only escaped
                assert made not in line.replace("\\" + made[0], ""), line
            assert not line.startswith(("# Injected", "- injected")), line
            if line.startswith("| MESSAGING"):  # a table row keeps its four cells
                assert line.replace("\\|", "").count("|") == 5, line
    assert "\\<img" in spec.output and "\\*bold\\*" in spec.output


def test_wave_diff_says_the_funding_window_changed(usine) -> None:
    """The diff compared prices, cap and proof of use but not when installations are paid: 2026-W1 pays from
    2026-03-01 to 2027-12-31, 2027-W2 from 2027-03-01 to 2028-12-31, and the diff said nothing of it."""
    d = json.loads(usine("wave", "diff", "2026-W1", "2027-W2", "-c", "GP", "--format", "json").output)
    assert {"field": "window", "from": "2026-03-01 to 2027-12-31", "to": "2027-03-01 to 2028-12-31"} \
        in d["categories"][0]["funding"]
    assert "funding window: 2026-03-01 to 2027-12-31 → 2027-03-01 to 2028-12-31" in usine(
        "wave", "diff", "2026-W1", "2027-W2", "-c", "GP").output
    same = json.loads(usine("wave", "diff", "2027-W2", "2027-W2", "--format", "json").output)
    assert not any(c["funding"] for c in same["categories"])


def test_a_catalog_path_that_is_a_loop_of_links_is_a_clear_error(tmp_path: Path) -> None:
    """Before, ``--catalog`` naming a loop of symbolic links (a → b → a) ended in a traceback, exit 1: Path.resolve
    raises RuntimeError on a loop until Python 3.13. Found by tests/unit/test_cli_fuzz.py."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    r = CliRunner().invoke(cli, ["--catalog", str(tmp_path / "a"), "validate"])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    assert str(tmp_path / "a") in r.output and "catalog folder is missing" in r.output, r.output
