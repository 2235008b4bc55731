"""sim.results.load on a folder that does not exist raises, like load_sweep (it returned empty results)."""

from __future__ import annotations

import pytest

from sim import results


def test_load_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        results.load(tmp_path / "nope")


def test_load_missing_sweep_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        results.load_sweep(tmp_path / "nope")
