"""./test's ``-n 2 --dist loadgroup``: the tests of one ``xdist_group`` run on one worker (tests/xdist_groups.py).

Without it, under pytest 9.2 and pytest-xdist 3.8, a group was spread over both workers and each started what the
group shares (a JVM, a wheel build, the reference runs). A small suite run the way ./test runs: two groups of tests
in two files, parametrised, and ungrouped tests; each test writes down the worker that ran it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformity.paths import SOURCE_ROOT

pytest_plugins = ["pytester"]

#: the module that puts grouped tests in their group (another module here, e.g. tests.helpers, makes the test fail)
PLUGIN = "tests.xdist_groups"

GROUPED = '''
import json, os, pytest
pytestmark = pytest.mark.xdist_group("{group}")

@pytest.mark.parametrize("n", range(4))
def test_grouped(n, request):
    with open(os.environ["WORKERS_LOG"], "a") as f:
        f.write(json.dumps([request.node.nodeid, os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")
'''

UNGROUPED = '''
import json, os, pytest

@pytest.mark.parametrize("n", range(8))
def test_free(n, request):
    with open(os.environ["WORKERS_LOG"], "a") as f:
        f.write(json.dumps([request.node.nodeid, os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")
'''


def test_each_xdist_group_runs_on_one_worker(pytester: pytest.Pytester, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_a_one=GROUPED.format(group="one"), test_b_two=GROUPED.format(group="two"),
                        test_c_one_again=GROUPED.format(group="one"), test_d_free=UNGROUPED)
    log = tmp_path / "workers.jsonl"
    monkeypatch.setenv("WORKERS_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", str(SOURCE_ROOT))  # the subprocess imports tests.xdist_groups
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # xdist and the shim only: a lighter start
    result = pytester.runpytest_subprocess("-p", "xdist", "-p", PLUGIN, "-n", "2", "--dist", "loadgroup", "-q",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=20)
    ran = [json.loads(line) for line in log.read_text().splitlines()]
    workers: dict[str, set[str]] = {}
    for nodeid, worker in ran:
        group = nodeid.rpartition("@")[2] if "@" in nodeid else "free"
        workers.setdefault(group, set()).add(worker)
    assert workers["one"] and len(workers["one"]) == 1, workers  # two files, one group: one worker
    assert len(workers["two"]) == 1, workers
    assert len({w for _, w in ran}) == 2, "both workers took part (the ungrouped tests spread)"
    assert sum(1 for nodeid, _ in ran if nodeid.endswith("@one")) == 8
