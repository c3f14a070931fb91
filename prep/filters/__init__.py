"""Row filters: each judges one row as it streams past and returns a drop reason, or None to keep it."""
