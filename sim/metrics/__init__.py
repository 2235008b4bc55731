"""Metrics: declared table schemas, metric metadata (``meta``), the recorder (tallies and levels), pure summary functions."""
