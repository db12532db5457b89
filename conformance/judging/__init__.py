"""Judging one case: golden references, error bounds, comparison, external oracles."""
