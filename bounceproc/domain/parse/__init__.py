"""Parsers: raw accounting records and raw messages into per-recipient facts (pure)."""
