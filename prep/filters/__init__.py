"""Row filters: each judges one row as it streams past and returns a Verdict (why it drops the row), or None to keep it."""
