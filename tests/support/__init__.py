"""Test-only Axolotl plugins, loaded by dotted path from tests' recipes (PYTHONPATH includes tests/)."""
