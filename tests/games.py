"""Hand-made games for the sampler tests: one half whose feature at frame t is (t, t, ...)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spotting_core.engine.games import GameData

C = 17


def one_half_game(name: str, T: int, events: dict[int, tuple[int, float]], D: int = 4) -> GameData:
    """A one-half game whose feature at frame t is (t, t, ...) so clips can be traced back."""
    x = np.repeat(np.arange(T, dtype=np.float32)[:, None], D, axis=1)
    ev = np.zeros((T, C), dtype=np.float32)
    for t, (c, v) in events.items():
        ev[t, c] = v
    return GameData(name=name, halves=[x], events=[ev], labels=pd.DataFrame())
