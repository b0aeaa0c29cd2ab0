"""The labelling agency: verify evidence bundles, re-derive verdicts, review evidence, decide, sign labels,
keep the registry.

Modules: ``bundlezip`` (safe zip reading), ``verify`` and ``rederive`` (reasons to refuse a bundle; the
run it proves), ``decision`` (the rule: labelled, pending, refused, revoked) and ``decision_doc`` (the
decision as JSON and text), ``migrations`` and ``registry`` (SQLite: submissions, evidence, reviews,
labels, revocations and reinstatements), ``submit`` (the decide step end to end), ``export`` (open data
for the public and the payment agency), ``progress`` and ``progress_view`` (wave dashboard).
"""
