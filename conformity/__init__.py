"""usine: conformity testing, labelling by waves, and payment on proof of use."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
