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


@pytest.fixture
def one_thread():
    """Hand-sized tensors: one intra-op thread is faster, and far steadier on a shared, loaded CPU.

    Use with `pytestmark = pytest.mark.usefixtures("one_thread")` in a test module.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
