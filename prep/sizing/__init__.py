"""Sizing a training run before it starts: memory, disk, tokens, time and cost (`prep fit`, the preflight plugin)."""
