"""Axolotl plugins, enabled by dotted path in a recipe's `plugins:` list."""
