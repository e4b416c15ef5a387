"""Presenting results: rich tables, JSON/JSONL/CSV writers, maps."""
