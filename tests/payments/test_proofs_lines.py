"""payment-proofs.jsonl: one payment per line for every reader, whatever the events' text holds."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.payments.orders import json_line
from tests.payments.builders import events_for, installation
from tests.payments.workspace import Workspace

SITE = "CHU\u2028Nord\u2029annexe\x85B"  # line separator, paragraph separator, next line


def test_a_site_name_with_unicode_line_breaks_stays_on_its_payment_s_line(ws: Workspace) -> None:
    """Before, U+2028, U+2029 and U+0085 were written raw: ``str.splitlines()`` (and JavaScript before ES2019) saw
    four lines for one payment, none of them JSON."""
    ws.label()
    r = ws.run(ws.events("e.jsonl", events_for(installation("750100011", "M", site_name=SITE), 5)
                         + events_for(installation("690200022", "L"), 6)))
    assert r.returncode == 0, r.stderr
    lines = (r.out / "payment-proofs.jsonl").read_text(encoding="utf-8").splitlines()
    proofs = [json.loads(line) for line in lines]
    assert len(proofs) == 2
    names = {e["data"]["site"]["name"] for p in proofs for e in p["events"]}
    assert SITE in names  # the text as received, escaped only in the file


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)))
def test_any_document_is_one_line_that_reads_back(obj: object) -> None:
    line = json_line(obj)
    assert line.endswith("\n") and len(line.splitlines()) == 1
    assert json.loads(line) == obj
