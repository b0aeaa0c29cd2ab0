"""Loading the catalog: the shipped one is valid; each bad input is one clear error, exit 2, nothing loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformity.catalog import load_catalog
from conformity.errors import CatalogError

MESSAGING = "referentials/health/MESSAGING/1.0.toml"
WAVE1 = "waves/2026-W1.toml"


def test_shipped_catalog_is_valid(repo_root: Path) -> None:
    cat = load_catalog(repo_root)
    assert {w for w, wave in cat.waves.items() if wave.pack == "health"} == {"2026-W1", "2027-W2"}
    w1 = {ref for wc in cat.waves["2026-W1"].categories.values() for ref in wc.referentials.items()}
    assert sum(len(cat.referentials[k].requirements) for k in w1) >= 60
    for rid in ("PATIENTID", "PRACAUTH", "DOCSHARE", "MESSAGING", "DIRECTORY", "SECURITY"):
        assert cat.versions(rid), rid
    assert sum(1 for rid in {i for i, _ in cat.referentials} if len(cat.versions(rid)) >= 2) >= 2
    for wave in cat.waves.values():
        assert wave.pack != "health" or {"HOSPITAL", "GP", "LAB", "PHARMACY"} <= set(wave.categories)


def test_w2_raises_the_bar(repo_root: Path) -> None:
    cat = load_catalog(repo_root)
    w1, w2 = cat.waves["2026-W1"], cat.waves["2027-W2"]
    pinned1 = {r for c in w1.categories.values() for r in c.referentials}
    pinned2 = {r for c in w2.categories.values() for r in c.referentials}
    assert pinned2 - pinned1, "2027-W2 adds at least one referential"
    newer = [rid for rid in pinned1 & pinned2
             if w2.categories["HOSPITAL"].referentials.get(rid) != w1.categories["HOSPITAL"].referentials.get(rid)]
    assert newer, "2027-W2 pins newer versions"
    assert any(c.promote for c in w2.categories.values()), "2027-W2 promotes SHOULD to MUST"
    must1 = sum(a.level == "MUST" for a in cat.specification("2026-W1", "HOSPITAL").requirements)
    must2 = sum(a.level == "MUST" for a in cat.specification("2027-W2", "HOSPITAL").requirements)
    assert must2 > must1


def _problems(root: Path) -> list[str]:
    with pytest.raises(CatalogError) as info:
        load_catalog(root)
    assert info.value.exit_code == 2
    return [str(p) for p in info.value.problems]


def test_malformed_toml_names_file_and_line(catalog_copy: Path, edit) -> None:
    path = edit(MESSAGING, 'level = "MUST"', 'level = "MUST')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path)) and "line" in problem and "malformed TOML" in problem


def test_wrong_type_names_key_path(catalog_copy: Path, edit) -> None:
    path = edit(MESSAGING, 'level = "MUST"', "level = 1")
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path))
    assert "requirements[0].level" in problem


def test_wrong_type_of_list(catalog_copy: Path, edit) -> None:
    path = edit(MESSAGING, 'categories = ["HOSPITAL", "GP", "LAB", "PHARMACY", "RADIOLOGY"]', 'categories = "HOSPITAL"')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path)) and "requirements[0].categories" in problem and "wrong type" in problem


def test_unknown_key_is_named(catalog_copy: Path, edit) -> None:
    path = edit(MESSAGING, 'level = "MUST"', 'level = "MUST"\nseverity = "high"')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path))
    assert "requirements[0].severity" in problem and "unknown key 'severity'" in problem


def test_duplicate_requirement_id(catalog_copy: Path, edit) -> None:
    text = (catalog_copy / MESSAGING).read_text()
    second = text.split("[[requirements]]")[2].split('id = "')[1].split('"')[0]
    first = text.split("[[requirements]]")[1].split('id = "')[1].split('"')[0]
    path = edit(MESSAGING, f'id = "{second}"', f'id = "{first}"')
    problems = _problems(catalog_copy)
    assert all(p.startswith(str(path)) for p in problems)
    assert any(f"duplicate requirement id {first}" in p and "requirements[1].id" in p for p in problems)


def test_wave_pinning_missing_version(catalog_copy: Path, edit) -> None:
    path = edit(WAVE1, 'MESSAGING = "1.0"', 'MESSAGING = "9.9"')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path))
    assert "categories.HOSPITAL.referentials.MESSAGING" in problem and "MESSAGING@9.9" in problem


def test_requirement_naming_unknown_category(catalog_copy: Path, edit) -> None:
    path = edit(MESSAGING, 'categories = ["HOSPITAL", "GP",', 'categories = ["HOSPITAL", "VET",')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path))
    assert "requirements[0].categories[1]" in problem and "unknown category 'VET'" in problem


def test_wave_requirement_not_in_pinned_version(catalog_copy: Path, edit) -> None:
    path = edit(WAVE1, '{ id = "DOCSHARE-025"', '{ id = "DOCSHARE-099"')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path)) and "categories.LAB.exclude[0].id" in problem and "DOCSHARE-099" in problem


def test_unknown_check_id_once_checks_exist(repo_root: Path) -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog(repo_root, registered_checks={"some.other_check"})
    assert all("is not registered" in str(p) for p in info.value.problems)
    assert any("proof.checks[0]" in str(p) for p in info.value.problems)


def test_every_problem_is_reported_not_only_the_first(catalog_copy: Path, edit) -> None:
    edit(MESSAGING, 'level = "MUST"', "level = 1")
    edit(WAVE1, 'MESSAGING = "1.0"', 'MESSAGING = "9.9"')
    problems = _problems(catalog_copy)
    assert any("MESSAGING/1.0.toml" in p for p in problems)
    assert any("2026-W1.toml" in p for p in problems)


def test_file_path_must_match_declared_id(catalog_copy: Path) -> None:
    src = catalog_copy / MESSAGING
    dst = catalog_copy / "referentials/health/MESSAGING/3.0.toml"
    dst.write_text(src.read_text())
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(dst)) and "MESSAGING@1.0" in problem


def test_missing_catalog_folder(tmp_path: Path) -> None:
    problems = _problems(tmp_path)
    assert any("referentials" in p and "missing" in p for p in problems)


def test_promoting_a_must_is_refused(catalog_copy: Path, edit) -> None:
    path = edit(WAVE1, 'requirements = "applicable"\n\n[categories.GP]',
                'requirements = "applicable"\npromote = ["MESSAGING-001"]\n\n[categories.GP]')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path)) and "already MUST" in problem


def test_price_missing_for_a_site_size(catalog_copy: Path) -> None:
    path = catalog_copy / WAVE1
    text = path.read_text()
    start = text.index("[funding.prices.GP]")
    block_end = text.index("\n\n", start)
    block = text[start:block_end]
    lines = [ln for ln in block.splitlines() if not ln.startswith("S ") and not ln.startswith("S=")]
    path.write_text(text[:start] + "\n".join(lines) + text[block_end:])
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path)) and "funding.prices.GP.S" in problem


def test_action_schema_must_be_a_valid_json_schema(catalog_copy: Path, edit) -> None:
    text = (catalog_copy / MESSAGING).read_text()
    assert "[actions.input]" in text
    path = edit(MESSAGING, "[actions.input]", '[actions.input]\nminProperties = "two"')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path)) and "actions[0].input" in problem and "not a valid JSON Schema" in problem


def test_previous_wave_must_open_before(catalog_copy: Path, edit) -> None:
    path = edit("waves/2027-W2.toml", "open = 2027", "open = 2025")
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(path)) and "previous" in p and "does not open before" in p for p in problems)


def test_pinned_version_published_after_the_wave_opens(catalog_copy: Path, edit) -> None:
    path = edit(MESSAGING, "published = 20", "published = 2030-01-01\n# was 20")
    problems = _problems(catalog_copy)
    assert problems and all("published 2030-01-01, after the wave opens" in p for p in problems)
    assert all("2026-W1.toml" in p or "2027-W2.toml" in p for p in problems), path


def test_document_types_need_document_kind(catalog_copy: Path, edit) -> None:
    text = (catalog_copy / WAVE1).read_text()
    start = text.index("[funding.proof_of_use.by_category.LAB]")
    kinds_line = next(ln for ln in text[start:].splitlines() if ln.startswith("kinds"))
    path = edit(WAVE1, text[start:].split(kinds_line)[0] + kinds_line,
                text[start:].split(kinds_line)[0] + 'kinds = ["message"]')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path)) and "by_category.LAB.document_types" in problem


# ---------------------------------------------------------------------------------------------
# hostile input seen while probing (issue 9): each refused as one clear problem, never a traceback


def test_toml_nested_5000_deep_is_refused(catalog_copy: Path) -> None:
    path = catalog_copy / MESSAGING
    path.write_text(path.read_text() + "\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path)) and "nested too deeply" in problem


def test_a_version_superseding_itself_is_refused(catalog_copy: Path, edit) -> None:
    path = edit("referentials/health/PRACAUTH/1.1.toml", 'supersedes = "1.0"', 'supersedes = "1.1"')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path)) and "PRACAUTH@1.1 supersedes itself" in problem


def test_a_supersedes_cycle_is_refused(catalog_copy: Path, edit) -> None:
    path = edit("referentials/health/PRACAUTH/1.0.toml", 'version = "1.0"', 'version = "1.0"\nsupersedes = "1.1"')
    problems = _problems(catalog_copy)
    assert [p for p in problems if p.startswith(str(path)) and "not an older version" in p and "never loop" in p]


@pytest.mark.parametrize("value", ["2026-13-01", "yesterday", "2026-02-30"])
def test_a_published_date_that_is_not_a_date_is_refused(catalog_copy: Path, edit, value: str) -> None:
    path = edit("referentials/health/PRACAUTH/1.1.toml", "published = 2026-10-15", f'published = "{value}"')
    problems = _problems(catalog_copy)
    assert problems and all(p.startswith(f"{path} at published") for p in problems), problems


W3, W4 = "waves/2026-W3.toml", "waves/2027-W4.toml"
DIAGNOSTICIAN_W4 = 'promote = ["HOUSINGID-006"]\n\n[categories.ADVISER]'


def test_a_wave_cannot_exclude_what_it_declares_non_waivable(catalog_copy: Path, edit) -> None:
    path = edit(W3, 'requirements = "applicable"\n\n[categories.ADVISER]',
                'requirements = "applicable"\nexclude = [{ id = "DPE-005", reason = "not this time round" }]\n\n'
                '[categories.ADVISER]')
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(path)) and "DPE-005 is excluded, but this wave declares it non-waivable" in p
               for p in problems), problems


def test_a_wave_cannot_exclude_a_must_of_a_non_waivable_kind(catalog_copy: Path, edit) -> None:
    path = edit(W4, DIAGNOSTICIAN_W4, DIAGNOSTICIAN_W4.replace(
        "\n\n", '\nexclude = [{ id = "BASELINE-001", reason = "not this time round" }]\n\n', 1))
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(path)) and "BASELINE-001 is a security MUST" in p for p in problems), problems


def test_a_later_wave_cannot_lower_the_bar_of_its_previous(catalog_copy: Path, edit) -> None:
    """2027-W4 raises 2026-W3: leaving out a MUST 2026-W3 had (still in the pinned versions) is refused."""
    path = edit(W4, DIAGNOSTICIAN_W4, DIAGNOSTICIAN_W4.replace(
        "\n\n", '\nexclude = [{ id = "DPE-002", reason = "not this time round" }]\n\n', 1))
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path)) and "DPE-002 was MUST in the previous wave 2026-W3 and is excluded" in problem


def test_a_previous_wave_of_another_pack_is_refused(catalog_copy: Path, edit) -> None:
    path = edit(W4, 'previous = "2026-W3"', 'previous = "2026-W1"')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path)) and "2026-W1 is of pack health, not housing" in problem


def test_an_exclusion_given_twice_is_refused(catalog_copy: Path, edit) -> None:
    path = edit(W3, '  { id = "HOUSINGID-006"', '  { id = "HOUSINGID-006", reason = "first reason given" },\n'
                                                '  { id = "HOUSINGID-006"')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(str(path)) and "HOUSINGID-006 is excluded twice" in problem


@pytest.mark.parametrize("relpath,old,new,where", [
    (W3, 'reason = "Contractors work', 'reason = "            ", other = "Contractors work', "exclude[0].reason"),
    (MESSAGING, 'title = "', 'title = "   \\u001f  " # "', "title"),
])
def test_a_blank_text_is_refused(catalog_copy: Path, edit, relpath: str, old: str, new: str, where: str) -> None:
    path = edit(relpath, old, new)
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(path)) and where in p and "blank" in p for p in problems), problems


def test_an_automated_proof_with_no_check_says_so(catalog_copy: Path, edit) -> None:
    """The proof's method says which kind it is: the error is the empty list, not the other kind's keys."""
    path = edit(MESSAGING, 'checks = ["messaging.sender_in_directory"]', 'checks = []')
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(path)) and "proof.checks" in p and "unknown key 'checks'" not in p
               for p in problems), problems


def test_a_version_with_a_leading_zero_is_refused(catalog_copy: Path) -> None:
    src = catalog_copy / MESSAGING
    dst = src.with_name("01.1.toml")
    dst.write_text(src.read_text().replace('version = "1.0"', 'version = "01.1"', 1))
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(dst)) and "version" in p for p in problems), problems


@pytest.mark.parametrize("relpath", ["referentials/health/MESSAGING/2.0.TOML", "waves/2028-W1.Toml",
                                     "waves/sub/2028-W2.toml", "referentials/README.toml"])
def test_a_misnamed_or_misplaced_catalog_file_is_said_not_ignored(catalog_copy: Path, relpath: str) -> None:
    path = catalog_copy / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not = [toml")
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(path if "sub" not in relpath else path.parent)) and "unexpected" in p
               for p in problems), problems


def test_the_same_referential_id_in_two_packs_is_refused(catalog_copy: Path) -> None:
    """Both copies were loaded under one key, the last silently winning (and a chain could cross packs)."""
    dst = catalog_copy / "referentials/health/CONSENT/1.0.toml"
    dst.parent.mkdir()
    dst.write_text((catalog_copy / "referentials/housing/CONSENT/1.0.toml").read_text())
    problems = _problems(catalog_copy)
    assert any("referential CONSENT is in pack" in p and "belongs to one pack" in p for p in problems), problems


def test_a_fifo_named_like_a_catalog_file_is_refused_not_waited_on(catalog_copy: Path) -> None:
    import os

    fifo = catalog_copy / "waves/2028-W1.toml"
    os.mkfifo(fifo)
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(fifo)) and "not a regular file" in p for p in problems), problems


# ---------------------------------------------------------------------------------------------
# proof of use counts only data the category's label covers (each data kind names its referentials in pack.toml)

ADVISER_RULE = '[funding.proof_of_use.by_category.ADVISER]\nkinds = ["consumption_transfer"]'


def test_shipped_data_kinds_name_the_referentials_whose_label_covers_them(repo_root: Path) -> None:
    cat = load_catalog(repo_root)
    assert cat.packs["housing"].covered_by == {"dpe": ("DPE",), "quote": ("WORKS",), "works": ("WORKS",),
                                               "consumption_transfer": ("CONSENT",)}
    assert cat.packs["health"].covered_by == {"document": ("DOCSHARE",), "message": ("MESSAGING",)}
    for wave in (cat.waves["2026-W3"], cat.waves["2027-W4"]):
        assert wave.funding.proof_of_use("ADVISER").kinds == ("consumption_transfer",)
        assert wave.uncovered(cat.packs["housing"], "ADVISER", "dpe") is not None


def test_a_category_falling_back_on_a_default_counting_data_its_label_does_not_cover_is_refused(
        catalog_copy: Path, edit) -> None:
    """The QA case: ADVISER (pins neither DPE nor WORKS) fell back on the default counting dpe, quote and works."""
    path = edit(W3, ADVISER_RULE, '[funding.proof_of_use.by_category.ADVISER_GONE]\nkinds = ["consumption_transfer"]')
    edit(W3, "[funding.proof_of_use.by_category.ADVISER_GONE]", "# [no rule of its own]")
    path.write_text(path.read_text().replace('# [no rule of its own]\nkinds = ["consumption_transfer"]\n'
                                             'min_events = 5\nwithin_days = 30\n', ""))
    problems = _problems(catalog_copy)
    assert problems == [
        f"{path} at funding.proof_of_use.default.kinds[{i}]: category ADVISER falls back on this rule, which counts "
        f"{kind} data, which its label does not cover: {kind} data is covered by the label of {ref}, which wave "
        "2026-W3 does not pin for category ADVISER (it pins PROAUTH, HOUSINGID, CONSENT, BASELINE); an installation "
        "would be paid for data it was never tested on"
        for i, (kind, ref) in enumerate((("dpe", "DPE"), ("quote", "WORKS"), ("works", "WORKS")))]


def test_a_category_rule_counting_data_its_label_does_not_cover_is_refused(catalog_copy: Path, edit) -> None:
    path = edit(W4, ADVISER_RULE, '[funding.proof_of_use.by_category.ADVISER]\nkinds = ["consumption_transfer", "dpe"]')
    (problem,) = _problems(catalog_copy)
    assert problem.startswith(f"{path} at funding.proof_of_use.by_category.ADVISER.kinds[1]: category ADVISER "
                              "counts dpe data, which its label does not cover: dpe data is covered by the label of "
                              "DPE, which wave 2027-W4 does not pin for category ADVISER"), problem


def test_a_data_kind_must_name_its_own_packs_referentials(catalog_copy: Path, edit) -> None:
    path = edit("referentials/housing/pack.toml", 'referentials = ["DPE"]', 'referentials = ["DOCSHARE"]')
    problems = _problems(catalog_copy)
    assert f"{path} at data_kinds.dpe.referentials[0]: referential DOCSHARE is not one of pack housing's (its " \
           "referentials: BASELINE, CONSENT, DPE, HOUSINGID, PROAUTH, WORKS)" in problems, problems
    edit("referentials/housing/pack.toml", 'referentials = ["DOCSHARE"]\n', "")
    assert f"{path} at data_kinds.dpe.referentials: required key is missing" in _problems(catalog_copy)


@pytest.mark.parametrize("old,new,where", [
    ('id = "MESSAGING-001"', 'id = "MESSAGING-001\\n"', "requirements[0].id"),
    ('"messaging.sender_in_directory"', '"messaging.sender_in_directory\\n"', "requirements[0].proof.checks[0]"),
])
def test_an_id_with_a_trailing_line_break_is_refused(catalog_copy: Path, edit, old: str, new: str, where: str) -> None:
    """Python's ``$`` also matches before a final line break (ECMA 262's, JSON Schema's, does not): jsonschema-rs
    refused ``MESSAGING-001\\n`` and jsonschema, the reference, then accepted it, so the catalog loaded a requirement
    id that prints like another and matches no wave's."""
    path = edit(MESSAGING, old, new)
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(path)) and where in p and "does not match the expected form" in p
               for p in problems), problems


@pytest.mark.parametrize("old,new,where", [
    ("S = 28_000", "S = 28_000.0", "funding.prices.HOSPITAL.S"),
    ("cap_per_software = 8_000_000", "cap_per_software = 8e6", "funding.cap_per_software"),
    ("min_events = 3", "min_events = 3.0", "funding.proof_of_use.default.min_events"),
])
def test_a_whole_number_written_as_a_float_is_refused(catalog_copy: Path, edit, old: str, new: str,
                                                      where: str) -> None:
    """JSON Schema's integer takes 28000.0 (both engines): a price, cap or count became a float the payments then
    multiply (amounts in cents as floats) or index with (a count of events), where the models say int."""
    path = edit(WAVE1, old, new)
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(path)) and where in p and "whole number" in p for p in problems), problems


@pytest.mark.parametrize("link,target", [
    ("referentials/health/MESSAGING/1.2.toml", "referentials/health/MESSAGING/1.1.toml"),
    ("referentials/elsewhere", "referentials/housing"),
    ("referentials/health/ELSEWHERE", "referentials/health/MESSAGING"),
    ("waves/2027-W9.toml", "waves/2027-W2.toml"),
    ("waves", "waves"),
])
def test_a_link_leading_out_of_the_catalog_is_refused(catalog_copy: Path, tmp_path: Path, link: str,
                                                      target: str) -> None:
    """A contributor's link in the catalog to a file or folder outside it (another checkout, a home folder) loaded
    what it pointed at as the catalog's own: what the agency reviewed is not what it publishes."""
    import shutil

    outside = tmp_path / "outside" / Path(target).name
    outside.parent.mkdir()
    source = catalog_copy / target
    if source.is_dir():
        shutil.copytree(source, outside)
    else:
        text = source.read_text().replace('version = "1.1"', 'version = "1.2"').replace('"2027-W2"', '"2027-W9"')
        outside.write_text(text)
    if (catalog_copy / link).is_dir():
        shutil.rmtree(catalog_copy / link)
    (catalog_copy / link).symlink_to(outside)
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(catalog_copy / link)) and "outside the catalog" in p for p in problems), problems


def test_a_loop_of_links_is_said_not_a_traceback(catalog_copy: Path) -> None:
    (catalog_copy / "waves/2028-W1.toml").symlink_to(catalog_copy / "waves/2028-W1.toml")
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(catalog_copy / "waves/2028-W1.toml")) and "link" in p for p in problems), problems


@pytest.mark.parametrize("extra,where,said", [
    ('promote = ["MESSAGING-009"]', "categories.HOSPITAL.promote[0]", "promotes MESSAGING-009"),
    ('exclude = [{ id = "MESSAGING-002", reason = "not for hospitals" }]', "categories.HOSPITAL.exclude[0].id",
     "excludes MESSAGING-002"),
])
def test_promoting_or_excluding_what_the_list_leaves_out_is_refused(catalog_copy: Path, edit, extra: str,
                                                                    where: str, said: str) -> None:
    """With an explicit list of requirements, a promotion of one the list leaves out did nothing (the editor meant
    a MUST the specification does not hold), and an exclusion of one showed a reason for what was never asked."""
    path = edit(WAVE1, 'requirements = "applicable"', f'requirements = ["MESSAGING-001"]\n{extra}')
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(path)) and where in p and said in p and "list leaves out" in p
               for p in problems), problems


@pytest.mark.parametrize("relpath,old,new,where", [
    (MESSAGING, 'title = "Sender address', 'title = "\\u001b[2K\\rSender address', "requirements[0].title"),
    (MESSAGING, 'statement = "The sender', 'statement = "\\u202eThe sender', "requirements[0].statement"),
    (MESSAGING, 'owner = "', 'owner = "\\u0007', "owner"),
    (WAVE1, 'reason = "Laboratory', 'reason = "\\u009bLaboratory', "categories.LAB.exclude[0].reason"),
    ("referentials/health/pack.toml", 'title = "', 'title = "\\u2066', "title"),
])
def test_a_control_character_in_a_text_is_refused(catalog_copy: Path, edit, relpath: str, old: str, new: str,
                                                  where: str) -> None:
    """A text of the catalog is printed by usine's commands and published: an escape sequence (erase the line,
    return to its start) or a bidirectional override shows a reader other words than those the file holds."""
    path = edit(relpath, old, new)
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(path)) and f" at {where}:" in p and "control character" in p
               for p in problems), problems


@pytest.mark.parametrize("old,new", [
    ('CONSENT = "1.0", BASELINE = "1.0" }', 'CONSENT = "1.0", BASELINE = "1.0", WORKS = "1.0" }'),
    ('CONSENT = "1.0", BASELINE = "1.0" }\nrequirements = "applicable"',
     'CONSENT = "1.0", BASELINE = "1.0", WORKS = "1.0" }\nrequirements = ["CONSENT-001", "PROAUTH-001"]'),
])
def test_a_pinned_referential_that_requires_nothing_of_the_category_is_refused(catalog_copy: Path, edit, old: str,
                                                                               new: str) -> None:
    """Advisers pinning WORKS, none of whose requirements applies to them (or the list naming none of them): the
    label tested nothing of WORKS, yet a pin is what makes it cover quotes and works, so a proof of use counting
    quotes loaded and advisers would be paid for data they were never tested on."""
    path = edit(W3, old, new)
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(path)) and "categories.ADVISER.referentials.WORKS" in p and "requires nothing" in p
               for p in problems), problems


@pytest.mark.parametrize("relpath,old,new,where", [
    (MESSAGING, 'title = "Sender address', 'title = "Sender\\n  MESSAGING-099 [MUST] [security] Sender address',
     "requirements[0].title"),
    (MESSAGING, 'title = "Secure health', 'title = "Secure\\nhealth', "title"),
    (MESSAGING, 'owner = "', 'owner = "x\\n', "owner"),
    (WAVE1, 'title = "Health wave 1', 'title = "Health\\nwave 1', "title"),
    ("referentials/health/pack.toml", 'title = "Hospital', 'title = "\\nHospital', "categories.HOSPITAL.title"),
])
def test_a_title_on_more_than_one_line_is_refused(catalog_copy: Path, edit, relpath: str, old: str, new: str,
                                                  where: str) -> None:
    """Titles and owners are printed on a line of their own (usine referentials show, wave show): a line break in
    one forged lines of the listing, such as a requirement that is not in the specification."""
    path = edit(relpath, old, new)
    problems = _problems(catalog_copy)
    assert any(p.startswith(str(path)) and f" at {where}:" in p and "one line" in p for p in problems), problems


def test_a_reason_or_evidence_on_several_lines_reads_as_one_paragraph(catalog_copy: Path, edit) -> None:
    edit(WAVE1, 'reason = "Laboratory software feeds', 'reason = "Laboratory\\n  FORGED-001: software feeds')
    edit("referentials/health/DOCSHARE/1.0.toml", 'evidence = "', 'evidence = "A\\n    proof — forged\\n')
    cat = load_catalog(catalog_copy)
    spec = cat.specification("2026-W1", "LAB")
    assert spec.excluded["DOCSHARE-025"].startswith("Laboratory FORGED-001: software feeds")
    evidence = [r.proof.evidence for ref in cat.referentials.values() for r in ref.requirements
                if r.proof.evidence.startswith("A proof")]
    assert evidence and all("\n" not in e for e in evidence)
