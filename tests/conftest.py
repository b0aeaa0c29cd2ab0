"""Shared fixtures: paths to the embedded catalog and to the official third-party schemas."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conformity.paths import SOURCE_ROOT, shared_schemas_dir

HOW_TO_GET = ("usine reads the official third-party schemas from ../shared/schemas beside the repository, or from "
              "the folder named by $USINE_SHARED_SCHEMAS; the HL7 CDA R2 schema is HL7's normative XML Schema "
              "(github.com/HL7/CDA-core-2.0, schema/normative, with its layout: hl7-cda-r2/infrastructure/cda/CDA.xsd), "
              "the CloudEvents schema is cloudevents/spec's cloudevents/formats/cloudevents.json")


def official(what: str, path: Path | None) -> Path:
    """``path`` if it exists; else skip the test saying why and how to get it — or fail it when CI=true."""
    if path is not None and path.exists():
        return path
    message = f"{what} is absent: {HOW_TO_GET}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return SOURCE_ROOT


@pytest.fixture(scope="session")
def official_schemas() -> Path:
    """../shared/schemas (or $USINE_SHARED_SCHEMAS); skip when absent, fail when absent and CI=true."""
    return official("the official schemas folder", shared_schemas_dir())


@pytest.fixture(scope="session")
def cda_schema() -> Path:
    """The HL7 CDA R2 XML Schema, which DOCSHARE-001 needs to pass (skip / fail under CI=true when absent)."""
    from conformity.checks.health.cda import cda_xsd_path

    root = shared_schemas_dir()
    return official("the HL7 CDA R2 XML Schema", cda_xsd_path() or (root / "hl7-cda-r2" if root else None))
