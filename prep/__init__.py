"""Turn public instruction datasets into one curated ShareGPT JSONL for Axolotl."""
