"""Property-based: any single breakage of any requirement is reported at its exact file and key path."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.catalog import load_catalog
from conformity.errors import CatalogError

FILES = sorted(p for p in (Path(__file__).resolve().parents[2] / "referentials" / "health").glob("*/*.toml"))

BREAKAGES = {
    "level": st.sampled_from(["must", "MAY", "", 3]),
    "kind": st.sampled_from(["performance", None, 1.5]),
    "categories": st.sampled_from([[], "GP", [1]]),
    "statement": st.sampled_from(["short", 12]),
    "id": st.sampled_from(["docshare-1", "X", "DOCSHARE-1"]),
}


@settings(max_examples=25, derandomize=True, deadline=None)
@given(data=st.data())
def test_any_broken_requirement_field_is_reported_where_it_is(tmp_path_factory: pytest.TempPathFactory, data) -> None:
    root = tmp_path_factory.mktemp("cat")
    repo = FILES[0].parents[3]
    shutil.copytree(repo / "referentials", root / "referentials")
    shutil.copytree(repo / "waves", root / "waves")
    src = data.draw(st.sampled_from(FILES))
    target = root / src.relative_to(repo)
    doc = tomllib.loads(target.read_text())
    index = data.draw(st.integers(0, len(doc["requirements"]) - 1))
    field = data.draw(st.sampled_from(sorted(BREAKAGES)))
    value = data.draw(BREAKAGES[field])
    if value is None:
        del doc["requirements"][index][field]
    else:
        doc["requirements"][index][field] = value
    target.write_text(tomli_w.dumps(doc))
    with pytest.raises(CatalogError) as info:
        load_catalog(root)
    here = [p for p in info.value.problems if p.file == str(target)]
    assert here, info.value.render()
    assert any(p.where.startswith(f"requirements[{index}]") for p in here), info.value.render()
