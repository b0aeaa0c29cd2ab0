"""SECURITY-008's document-content part: the texts the harness gave the software to submit are searched in its error
output and logs, however the software wrote them (the reference-run proof is the mutation document-content-in-log)."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

import pytest

from conformity.checks.trace import RunView
from conformity.packs.health.checks.exposure import content_findings, document_spans

BODY = "àV🔥🩺’עyl8±MX <b>&amp;</b> \"q\"\n0\nnarrative line: 中•жÉbŒN9eÉ🩺Ty{{x}}"


def run(log: str, *, action: str = "document.submit", stderr: str = "") -> RunView:
    notes: list[dict[str, Any]] = [
        {"kind": "note", "seq": 1, "note": "driver.perform",
         "data": {"name": "summary", "action": action, "input": {"title": "T", "body": BODY}, "output": {}}},
        {"kind": "note", "seq": 2, "note": "software.output",
         "data": {k: v for k, v in (("stderr", stderr), ("logs", {"/var/log/app.log": log} if log else {})) if v}},
    ]
    return RunView({"docshare.documents": {"exchanges": notes}})


def found(view: RunView) -> list[str]:
    spans = document_spans(view)
    return [f.where for trace in view for f in content_findings(trace, spans)]


@pytest.mark.parametrize("written", [BODY, json.dumps(BODY), json.dumps(BODY, ensure_ascii=False), escape(BODY),
                                     repr(BODY)], ids=["raw", "json-ascii", "json", "xml", "repr"])
def test_a_document_text_in_a_log_is_found_however_written(written: str) -> None:
    assert found(run(f"DEBUG rendering {written}\n")) == ["software.output log file /var/log/app.log"]


def test_a_document_text_on_the_error_output_is_found() -> None:
    assert found(run("", stderr="narrative line: 中•жÉbŒN9eÉ🩺Ty{{x}}")) == ["software.output stderr"]


def test_a_log_without_document_text_and_short_lines_are_not_findings() -> None:
    assert found(run("INFO -> POST https://127.0.0.1/dmp/documents\nINFO <- 201 POST\n0\n")) == []
    assert found(run(f"DEBUG {BODY}", action="message.send")) == []  # only what was given as a document counts
