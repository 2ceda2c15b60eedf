"""What the synthetic benchmark is made of: real class statistics, a motif vocabulary, the signature
of each class (a motif before its timestamp, another after) and the difficulty knobs (`SynthParams`).
`synth/benchmark.py` writes the trees from them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Per-game count and share of "not shown" of each class, measured on the 200 SoccerNet-v2 valid and
# test Labels-v2.json files (both halves together).
CLASS_STATS: dict[str, tuple[float, float]] = {
    "Penalty": (0.385, 0.000), "Kick-off": (5.250, 0.723), "Goal": (3.540, 0.000),
    "Substitution": (5.695, 0.177), "Offside": (4.165, 0.062), "Shots on target": (11.785, 0.002),
    "Shots off target": (10.210, 0.002), "Clearance": (15.735, 0.547), "Ball out of play": (63.565, 0.043),
    "Throw-in": (37.635, 0.289), "Foul": (22.950, 0.018), "Indirect free-kick": (20.950, 0.463),
    "Direct free-kick": (4.105, 0.088), "Corner": (9.760, 0.131), "Yellow card": (4.045, 0.074),
    "Red card": (0.105, 0.000), "Yellow->red card": (0.110, 0.000),
}  # fmt: skip


MOTIFS: tuple[str, ...] = (
    "attack", "duel", "whistle", "save", "celebration", "miss", "ball_out", "cross", "card", "sent_off",
    "wall", "pass", "flag", "board", "walk",
)  # fmt: skip


# class -> (motif before the timestamp, motif after it). Play stopping and play restarting use the
# same two motifs in opposite orders, so only the order tells these pairs apart.
SIGNATURES: dict[str, tuple[str, str]] = {
    "Penalty": ("whistle", "duel"),            # Foul reversed: the whistle, then the kick's duel
    "Kick-off": ("celebration", "attack"),     # Goal reversed: after the celebration, play again
    "Goal": ("attack", "celebration"),         # same before as the shots, differs after
    "Substitution": ("board", "walk"),
    "Offside": ("pass", "flag"),               # Indirect free-kick reversed
    "Shots on target": ("attack", "save"),
    "Shots off target": ("attack", "miss"),
    "Clearance": ("cross", "ball_out"),        # Corner reversed
    "Ball out of play": ("attack", "ball_out"),
    "Throw-in": ("ball_out", "attack"),        # Ball out of play reversed
    "Foul": ("duel", "whistle"),
    "Indirect free-kick": ("flag", "pass"),
    "Direct free-kick": ("whistle", "wall"),
    "Corner": ("ball_out", "cross"),
    "Yellow card": ("whistle", "card"),
    "Red card": ("whistle", "sent_off"),
    "Yellow->red card": ("card", "sent_off"),
}


@dataclass(frozen=True)
class SynthParams:
    """Difficulty knobs. Feature noise has unit variance per dimension; norms are relative to it."""

    motif_norm: float = 10.0         # norm of a motif direction at amplitude 1
    motif_support: int = 512         # dimensions a motif is spread over (all of them at D = 512)
    game_perturbation: float = 0.35  # per-game change of each motif, relative to its norm
    pre_s: float = 6.0               # mean duration of the before-context
    post_s: float = 6.0              # mean duration of the after-context
    duration_jitter: float = 0.35    # durations are scaled by U(1 - j, 1 + j)
    amplitude_range: tuple[float, float] = (0.6, 1.3)
    timing_jitter_frames: float = 1.0  # std of the signature's offset from the labelled frame
    unshown_gain: float = 0.5        # unshown events: after-context only, this much weaker
    distractors_per_min: float = 2.0  # motifs with no event
    distractor_gain: tuple[float, float] = (0.3, 0.8)
    drift_rank: int = 8
    drift_norm: float = 3.0
    drift_s: float = 20.0
    shot_types: int = 6
    shot_norm: float = 3.0
    shot_mean_s: float = 6.0         # mean time between camera cuts
    cut_near_event: float = 0.6      # probability of an extra cut within 4 s of an event
    noise: float = 1.0
