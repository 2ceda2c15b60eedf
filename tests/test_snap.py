"""snap.py: reel segments snapped to shots; an exact snapped reel read back frame by frame; fast mode
reports the real start; the LosslessCut project file; `spotting reel --snap / --no-snap / --with-replays`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import videos

from spotting_core.cli import main
from spotting_core.errors import SpottingError
from spotting_core.io import tables
from spotting_core.media import reels as hl
from spotting_core.media import render, snap
from spotting_core.media.shots import Shots, Transition
from spotting_core.synth.shots import read_frame_index, render_shot_video, shot_script

FPS = 25.0
# shots 0-99, 100-249, [250-289 a 1.6 s dissolve], 290-399, 400-599, [600-609 wipe], 610-799 (a replay),
# [800-809 wipe], 810-999
HAND = Shots(None, "content", FPS, 1000, [Transition(99, 100), Transition(249, 290, "content"), Transition(399, 400),
                                          Transition(599, 610, "content"), Transition(799, 810, "content")])


def events_table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["half", "position_ms", "label", "confidence", "status"])


def test_snap_window_moves_edges_to_shot_edges():
    win = lambda a, b, event: snap.snap_window(a, b, event=event, shots=HAND, snap_s=3.0)  # noqa: E731
    assert win(5.0, 9.0, 7.0) == (4.0, 10.0)                    # back to the shot start, forward to its end
    assert win(8.0, 13.5, 9.0) == (8.0, 16.0)                   # no shot start within 3 s: stays in its shot
    assert win(15.9, 21.5, 16.5) == (16.0, 24.0)                # 0.1 s of the shot before: a sliver, dropped
    assert win(10.2, 13.5, 12.0) == (11.6, 16.0)                # inside the dissolve: to its clean side
    assert win(17.0, 24.3, 20.0)[1] == 24.0                     # 0.3 s of the wipe after: dropped
    assert snap.snap_window(5.0, 9.0, event=7.0, shots=HAND, snap_s=0.5) == (5.0, 9.0)   # too far for 0.5 s
    # a sliver of the next shot at the end: back to the end of the event's shot
    assert snap.snap_window(13.0, 16.3, event=14.0, shots=HAND, snap_s=3.0) == (11.6, 16.0)


def test_replay_extension_is_capped_per_class():
    assert HAND.replays() == [(24.4, 32.0)]
    assert snap.replay_end(event=20.0, end=25.0, label="Goal", shots=HAND) == 32.0
    assert snap.replay_end(event=20.0, end=25.0, label="Throw-in", shots=HAND) == 32.0   # 12 s past: under 30
    assert snap.replay_end(event=20.0, end=33.0, label="Goal", shots=HAND) is None      # already inside
    assert snap.replay_end(event=0.5, end=5.0, label="Goal", shots=HAND) == 32.0         # 31.5 s past: Goal's 60
    assert snap.replay_end(event=0.5, end=5.0, label="Corner", shots=HAND) is None       # over Corner's 30
    assert snap.replay_end(event=-10.0, end=5.0, label="Goal", shots=HAND) is None       # starts 34 s after


def test_plan_snaps_merges_and_keeps_the_cap():
    df = events_table([(1, 7_000, "Foul", 0.9, "pending"), (1, 11_000, "Corner", 0.8, "pending"),
                       (1, 30_000, "Goal", 0.95, "pending")])
    plain = hl.plan_reel(df, video="m.mp4", duration=40.0, pre=2, post=2)
    assert [(s.start, s.end) for s in plain.segments] == [(5.0, 13.0), (28.0, 32.0)]
    snapped = hl.plan_reel(df, video="m.mp4", duration=40.0, pre=2, post=2, shots=HAND, snap_s=3.0)
    # Foul [5, 9] -> [4, 10]; Corner [9, 13] -> [9, 16] (no shot start within 3 s): they overlap and merge
    assert [(s.start, s.end) for s in snapped.segments] == [(4.0, 16.0), (28.0, 32.0)]
    assert snapped.segments[0].label == "Foul + Corner" and snapped.segments[0].requested == (5.0, 13.0)
    replays = hl.plan_reel(df.iloc[[2]], video="m.mp4", duration=40.0, pre=2, post=1, shots=HAND, snap_s=3.0,
                           with_replays=True)
    assert [(s.start, s.end) for s in replays.segments] == [(28.0, 32.0)]   # inside the replay already
    capped = hl.plan_reel(df, video="m.mp4", duration=40.0, pre=2, post=2, shots=HAND, snap_s=3.0, max_duration=8)
    assert capped.duration <= 8 and [s.label for s in capped.segments] == ["Goal"]
    with pytest.raises(SpottingError, match="--snap"):
        hl.plan_reel(df, video="m.mp4", duration=40.0, shots=HAND, snap_s=-1)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    script = shot_script(seconds=24, dissolves=1, replays=1, seed=3)
    folder = tmp_path_factory.mktemp("snap")
    video = render_shot_video(folder / "generated.mp4", script)
    shot_of = np.full(script.frames, -1)
    for i, (a, b, _) in enumerate(script.shots):
        shot_of[a:b + 1] = i
    return video, script, shot_of


def results(path, rows) -> str:
    tables.write_results(path, pd.DataFrame(rows, columns=["half", "position_ms", "label", "confidence"]))
    return str(path)


def read_segments(reel) -> list[list[int]]:
    """The source frame index of every frame of a reel, split where the index jumps (a join)."""
    idx = [read_frame_index(f) for f in videos.all_frames(reel, (320, 180))]
    out = [[idx[0]]]
    for a, b in zip(idx, idx[1:]):
        if b != a + 1:
            out.append([])
        out[-1].append(b)
    return out


def foreign_ends(pieces, shot_of) -> list[int]:
    """Segment ends showing a frame of another shot (or of a transition) than the frame beside them."""
    bad = []
    for p in pieces:
        for end, inner in ((p[0], p[1]), (p[-1], p[-2])):
            if shot_of[end] < 0 or shot_of[end] != shot_of[inner]:
                bad.append(end)
    return bad


def test_exact_snapped_reel_has_no_foreign_frame_at_any_end(generated, tmp_path):
    video, script, shot_of = generated
    # Foul mid-shot; Corner before the dissolve; a shot whose padding starts 1.5 frames before a cut
    events = results(tmp_path / "ev.json", [(1, 6000, "Foul", 0.9), (1, 16800, "Corner", 0.9),
                                            (1, 22940, "Shots on target", 0.9)])
    pad = {"pre": 1.0, "post": 1.0}
    plain = render.make_reel(video, events=events, out=tmp_path / "plain.mp4", mode="exact", **pad, edit_lists=False)
    assert foreign_ends(read_segments(tmp_path / "plain.mp4"), shot_of)    # the test sees foreign frames
    plan = render.make_reel(video, events=events, out=tmp_path / "snapped.mp4", mode="exact", snap_s=3.0,
                            detector="content", **pad)
    pieces = read_segments(tmp_path / "snapped.mp4")
    assert len(pieces) == len(plan.segments) == 3 and len(plain.segments) == 3
    assert foreign_ends(pieces, shot_of) == []
    starts = {a for a, _, _ in script.shots}
    lasts = {b for _, b, _ in script.shots}
    assert all(p[0] in starts and p[-1] in lasts for p in pieces), pieces   # whole shots, to the frame
    for p, s in zip(pieces, plan.segments):
        assert p == list(range(p[0], p[-1] + 1))                            # every frame in between
        assert p[0] == round(s.start * FPS) and p[-1] + 1 == round(s.end * FPS)
    csv = pd.read_csv(tmp_path / "snapped.csv")                             # the edit list has the snapped times
    assert np.allclose(csv["source_start"], [s.start for s in plan.segments], atol=1e-3)
    assert csv["requested_start"].tolist() == [5.0, 15.8, 21.94]


def test_fast_mode_reports_the_real_start(tmp_path):
    src = videos.coded_video(tmp_path / "coded.mp4", seconds=10.0, gop=25)
    events = results(tmp_path / "ev.json", [(1, 2300, "Goal", 0.9), (1, 6600, "Corner", 0.8)])
    plan = render.make_reel(src, events=events, out=tmp_path / "fast.mp4", mode="fast", pre=1.0, post=1.5)
    assert [s.requested[0] for s in plan.segments] == pytest.approx([1.3, 5.6])
    assert [s.start for s in plan.segments] == [1.0, 5.0]                   # the keyframes the copies start at
    got = [[videos.read_code(f) for f in videos.all_frames(tmp_path / "fast.mp4", (160, 96))]]
    assert got[0][0] == 100 and 500 in got[0]
    csv = pd.read_csv(tmp_path / "fast.csv")
    assert csv["source_start"].tolist() == [1.0, 5.0] and csv["requested_start"].tolist() == [1.3, 5.6]
    assert csv["reel_start"].tolist() == [0.0, round(plan.segments[0].duration, 3)]
    assert all(s.end >= s.requested[1] for s in plan.segments)             # each copy reaches its end
    llc = json.loads((tmp_path / "fast.llc").read_text())
    assert llc["version"] == 1 and llc["mediaFileName"] == "coded.mp4"
    assert [(c["start"], c["name"]) for c in llc["cutSegments"]] == [(1.0, "Goal"), (5.0, "Corner")]
    assert pd.read_csv(tmp_path / "fast.losslesscut.csv", header=None)[0].tolist() == [1.0, 5.0]


def test_cli_reel_snaps_by_default_and_can_take_replays(generated, tmp_path, capsys):
    video, script, _ = generated
    events = results(tmp_path / "ev.json", [(1, 3000, "Goal", 0.9)])
    base = ["reel", str(video), "--events", events, "--mode", "exact", "--pre", "1", "--post", "1",
            "--detector", "content"]
    assert main([*base, "--out", str(tmp_path / "snap.mp4")]) == 0
    assert main([*base, "--out", str(tmp_path / "plain.mp4"), "--no-snap"]) == 0
    assert main([*base, "--out", str(tmp_path / "replay.mp4"), "--with-replays"]) == 0
    spans = {name: pd.read_csv(tmp_path / f"{name}.csv")[["source_start", "source_end"]].values.tolist()[0]
             for name in ("snap", "plain", "replay")}
    assert spans["plain"] == [2.0, 4.0]
    assert spans["snap"] == [1.8, 3.8]                 # the Goal's shot: frames 45-94
    (first, last), = script.replays
    assert spans["replay"] == [1.8, (last + 1) / FPS]  # on to the end of the replay after it (frame 271)
    assert main([*base, "--out", str(tmp_path / "x.mp4"), "--snap", "-2"]) == 2
    assert "--snap" in capsys.readouterr().err
