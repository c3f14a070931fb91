"""The `select` corpus step: fill a budget (rows or tokens) from the rows dedup left, by variety (prompt
clusters, a quota each) and quality (a per-row score, best first within each cluster)."""
