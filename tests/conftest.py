"""Shared fixtures. `shared_data` points at ../shared/data (real SoccerNet files) or skips."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real reference data not found at {SHARED_DATA}")
    return SHARED_DATA
