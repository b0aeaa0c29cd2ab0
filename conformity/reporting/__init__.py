"""Report writers: each turns a run report (and its traces) into one output format."""
