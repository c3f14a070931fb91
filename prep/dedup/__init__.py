"""Duplicate removal across all sources: exact (normalized prompt) and near (MinHash LSH over the prompt)."""
