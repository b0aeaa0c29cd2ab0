"""The health pack's scenarios, one module per area."""
