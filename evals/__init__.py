"""Reading the per-epoch eval reports: tables, plots, best epoch, comparison across runs."""
