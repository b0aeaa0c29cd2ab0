"""Scenarios by domain pack: what the harness asks the software to do, apart from evaluation."""
