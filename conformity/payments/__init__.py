"""The payment agency: from labels and data-received events to payment orders, once per installation.

Modules, in the order a run uses them::

    intake       events files read line by line; JSON, CloudEvents envelope and data schema checks
    envelope     the CloudEvents 1.0 JSON envelope rules and usine's data-received profile
    labelbook    the labels folder verified against the agency's keys, with its revocation list
    eligibility  whether one event counts: funding window, label, price, proof-of-use rule
    proof        the proof-of-use window (min events within days), order-independent
    ledger       SQLite: events seen, per-installation state, payments and their proof, batches
    ledger_schema  the ledger's versioned SQLite schema (migrations)
    payees       the payer's and the vendors' bank details (TOML)
    orders       payment orders: CSV, ISO 20022 pain.001, totals per vendor, proofs
    report       the refusal report (CSV + JSON) with stable reason codes (``reasons``)
    run          the run itself: intake, settlement, orders, reports
"""

from __future__ import annotations

from conformity.payments.run import RunOptions, RunStats, run_payments

__all__ = ["RunOptions", "RunStats", "run_payments"]
