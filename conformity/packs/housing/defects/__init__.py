"""The housing pack's trace mutations: realistic one-defect variants of the reference run's traces."""
