"""Metrics: declared table schemas, the recorder (tallies and levels), pure summary functions."""
