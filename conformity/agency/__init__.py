"""The labelling agency: verify evidence bundles, re-derive verdicts, decide, sign labels, keep the registry.

Modules: ``bundlezip`` (safe zip reading), ``verify`` and ``rederive`` (reasons to refuse a bundle),
``decision`` (label or refusal), ``migrations`` and ``registry`` (SQLite), ``submit`` (the decide step end
to end), ``export`` (open data for the public and the payment agency), ``progress`` and ``progress_view``
(wave dashboard).
"""
