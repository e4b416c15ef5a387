"""geocli's version: what ``geocli --version`` prints and what every folder geocli marks records.

A module of its own so that geocli's modules read it without importing the package's entry points.
"""
__version__ = "0.1.0"
