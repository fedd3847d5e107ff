"""Streaming stages (see :mod:`pipeline.stage` for the contract)."""
