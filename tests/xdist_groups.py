"""``--dist loadgroup`` as ./test means it: the tests of one ``xdist_group`` on one worker, whatever pytest's version.

pytest-xdist (3.8) puts a test in its group by renaming it on the worker: ``item._nodeid = f"{nodeid}@{group}"``,
and the scheduler cuts the group name off the ids the worker reports. pytest 9.2 keeps a node's id as a structured
value (``item._id``, ``nodeid`` its string), so that renaming is ignored: every grouped test became a group of its
own, spread over both workers, and each worker started what the group was to share — a second JVM for the Spark
tests, a second wheel build, second reference runs (pytest-dev/pytest-xdist#1386, fix proposed in #1388).

This hook, after xdist's own, gives each grouped test the id xdist meant to give it; where xdist's renaming worked
(an older pytest, a fixed xdist) the id already ends with its group and nothing is done.
"""

from __future__ import annotations

import pytest


def group_suffix(item: pytest.Item) -> str:
    """``@name`` (names sorted and joined by ``_``, as xdist does), or "" for a test in no group."""
    names = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
    return "@" + "_".join(sorted(names)) if names else ""


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not getattr(config.option, "loadgroup", False):  # set on xdist's workers under --dist loadgroup
        return
    for item in items:
        suffix = group_suffix(item)
        if not suffix or item.nodeid.endswith(suffix):
            continue
        from _pytest.nodeid import NodeId  # only the pytest versions whose ids are structured have it

        item._id = NodeId.parse(item.nodeid + suffix)
