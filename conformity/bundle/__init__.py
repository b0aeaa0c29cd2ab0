"""Evidence bundles: the zip a vendor submits (manifest, signed traces, report, JUnit, HTML, evidence files)."""

from conformity.bundle.build import BUNDLE_FORMAT, write_bundle

__all__ = ["BUNDLE_FORMAT", "write_bundle"]
