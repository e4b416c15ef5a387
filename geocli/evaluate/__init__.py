"""Evaluation: reading predictions files and scoring them against a dataset (every item counts)."""
