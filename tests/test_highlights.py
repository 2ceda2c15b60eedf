"""highlights.py: event selection, padding/merging/capping, edit lists, fast and exact reels checked by
probing the output (which source frames it shows, durations, audio/video sync)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import videos

from spotting_core.cli import main
from spotting_core.errors import SpottingError
from spotting_core.io import soccernet, tables
from spotting_core.io import video as vid
from spotting_core.media import cut, edit_lists, render
from spotting_core.media import reels as hl


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """10 s, 25 fps, a keyframe every second, beeps and flashes together at each whole second."""
    d = tmp_path_factory.mktemp("reel")
    return videos.coded_video(d / "match.mp4", seconds=10.0, audio=True, gop=25)


def events_table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["half", "position_ms", "label", "confidence", "status"])


def results_file(path, rows) -> str:
    df = pd.DataFrame(rows, columns=["half", "position_ms", "label", "confidence"])
    tables.write_results(path, df)
    return str(path)


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------
def test_select_by_status_class_confidence_half():
    df = events_table([
        (1, 10_000, "Goal", 0.9, "accepted"),
        (1, 20_000, "Foul", 0.8, "rejected"),
        (1, 30_000, "Corner", 0.4, "pending"),
        (1, 40_000, "Goal", float("nan"), "accepted"),   # added by hand: no model confidence
        (2, 5_000, "Goal", 0.95, "pending"),
    ])
    kept = hl.select_events(df, min_confidence=0.5)
    assert kept["position_ms"].tolist() == [10_000, 40_000]
    assert kept["confidence"].tolist() == [0.9, 1.0]
    assert hl.select_events(df, half=2)["position_ms"].tolist() == [5_000]
    assert hl.select_events(df, classes="Corner,Foul", statuses=None)["label"].tolist() == ["Foul", "Corner"]
    with pytest.raises(SpottingError, match="unknown class"):
        hl.select_events(df, classes="Gol")


def test_padding_per_class_and_merge():
    df = events_table([(1, 20_000, "Goal", 0.9, "pending"), (1, 50_000, "Foul", 0.8, "pending"),
                       (1, 52_000, "Yellow card", 0.7, "pending")])
    plan = hl.plan_reel(df, video="m.mp4", duration=100.0)
    gp, gq = hl.DEFAULT_PADDING["Goal"]
    assert gp >= 10 and gq >= 15                                   # build-up and celebration
    fp, _ = hl.DEFAULT_PADDING["Foul"]
    _, yq = hl.DEFAULT_PADDING["Yellow card"]
    assert [(s.start, s.end) for s in plan.segments] == [(20 - gp, 20 + gq), (50 - fp, 52 + yq)]
    assert plan.segments[1].label == "Foul + Yellow card"
    fixed = hl.plan_reel(df, video="m.mp4", duration=100.0, pre=1, post=2)
    assert [(s.start, s.end) for s in fixed.segments] == [(19, 22), (49, 54)]
    # clamped to the file
    early = hl.plan_reel(events_table([(1, 3_000, "Goal", 1.0, "pending")]), video="m.mp4", duration=10.0)
    assert (early.segments[0].start, early.segments[0].end) == (0.0, 10.0)


def test_cap_keeps_the_best_and_lists_the_rest():
    df = events_table([(1, 20_000, "Throw-in", 0.9, "pending"), (1, 60_000, "Goal", 0.6, "pending"),
                       (1, 100_000, "Corner", 0.8, "pending")])
    plan = hl.plan_reel(df, video="m.mp4", duration=200.0, pre=5, post=5, max_duration=20)
    assert [s.events[0]["label"] for s in plan.segments] == ["Goal", "Corner"]   # 0.6*1.0 and 0.8*0.5 beat 0.9*0.2
    assert [s.events[0]["label"] for s in plan.dropped] == ["Throw-in"]
    assert plan.duration <= 20
    one = hl.plan_reel(df.iloc[[1]], video="m.mp4", duration=200.0, max_duration=10)
    (s,) = one.segments
    assert s.duration == pytest.approx(10) and s.start <= 60 <= s.end


def test_event_beyond_the_file_is_a_clear_error():
    with pytest.raises(SpottingError, match="beyond the end"):
        hl.plan_reel(events_table([(1, 3_000_000, "Goal", 1.0, "pending")]), video="m.mp4", duration=60.0)


def test_edit_lists(tmp_path):
    df = events_table([(1, 20_000, "Goal", 0.9, "pending"), (1, 75_500, "Corner", 0.7, "pending")])
    plan = hl.plan_reel(df, video=tmp_path / "m.mp4", duration=120.0, fps=25.0, pre=2, post=3)
    paths = {p.name: p for p in edit_lists.write_edit_lists(plan, tmp_path / "reel", title="TEST")}
    edl = paths["reel.edl"].read_text()
    assert edl.startswith("TITLE: TEST\nFCM: NON-DROP FRAME")
    events = re.findall(r"^(\d{3})  AX\s+AA/V\s+C\s+(\S+) (\S+) (\S+) (\S+)$", edl, re.M)
    assert events == [("001", "00:00:18:00", "00:00:23:00", "00:00:00:00", "00:00:05:00"),
                      ("002", "00:01:13:13", "00:01:18:13", "00:00:05:00", "00:00:10:00")]
    assert paths["reel.losslesscut.csv"].read_text().splitlines() == ['18.000,23.000,"Goal"', '73.500,78.500,"Corner"']
    csv = pd.read_csv(paths["reel.csv"])
    assert csv["reel_start"].tolist() == [0.0, 5.0] and csv["source_end"].tolist() == [23.0, 78.5]
    srt = paths["reel.srt"].read_text()
    assert "00:00:01,000 --> 00:00:05,000\nGoal - 1 - 00:20" in srt
    assert paths["reel.vtt"].read_text().startswith("WEBVTT")
    kept = tables.read_results(paths["reel.results_spotting.json"])
    assert kept["position_ms"].tolist() == [20_000, 75_500]


# ---------------------------------------------------------------------------------------------
# Rendering, verified on the output
# ---------------------------------------------------------------------------------------------
def pieces(codes: list[int]) -> list[list[int]]:
    """Split a reel's frame codes where the source time jumps (a cut)."""
    out = [[codes[0]]]
    for a, b in zip(codes, codes[1:]):
        if b - a > 8 or b < a:
            out.append([])
        out[-1].append(b)
    return out


def assert_in_sync(path, joins):
    flashes, beeps = videos.av_offsets(path)
    checked = 0
    for b in beeps:
        if any(abs(b - j) < 0.25 for j in joins):      # a segment's first instants: streams start apart
            continue
        assert np.min(np.abs(flashes - b)) <= 0.045, (b, flashes)   # within about a frame
        checked += 1
    assert checked >= 2


def test_exact_reel_is_frame_accurate_and_in_sync(src, tmp_path):
    events = results_file(tmp_path / "ev.json", [(1, 2300, "Goal", 0.9), (1, 6600, "Corner", 0.8)])
    out = render.reel_command(src, events=events, out=tmp_path / "reel.mp4", mode="exact", pre=1.0, post=1.5)
    frames = videos.all_frames(out, (160, 96))
    got = pieces([videos.read_code(f) for f in frames])
    times = videos.kept_times(10.0)
    assert got == [[int(t) for t in times if 130 <= t < 380], [int(t) for t in times if 560 <= t < 810]]
    assert vid.probe(out).duration == pytest.approx(5.0, abs=2 * 0.04)   # one frame per segment (AAC padding)
    assert_in_sync(out, joins=[0.0, 2.5])
    # edit lists beside the reel, nothing else left behind
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ev.json", "reel.csv", "reel.edl", "reel.llc", "reel.losslesscut.csv", "reel.mp4",
                     "reel.results_spotting.json", "reel.srt", "reel.vtt"]


def test_fast_reel_is_keyframe_aligned_and_in_sync(src, tmp_path):
    events = results_file(tmp_path / "ev.json", [(1, 2300, "Goal", 0.9), (1, 6600, "Corner", 0.8)])
    out = render.reel_command(src, events=events, out=tmp_path / "reel.mp4", mode="fast", pre=1.0, post=1.5,
                          edit_lists=False)
    got = pieces([videos.read_code(f) for f in videos.all_frames(out, (160, 96))])
    assert len(got) == 2
    assert got[0][0] == 100 and got[1][0] == 500          # the keyframes before 1.3 s and 5.6 s: < 1 GOP early
    assert 376 <= got[0][-1] < 476 and 806 <= got[1][-1] < 906   # each reaches its end, within a GOP
    duration = vid.probe(out).duration
    assert 5.0 <= duration <= 5.0 + 2 * 1.0 + 0.1           # at most one GOP more per segment
    assert_in_sync(out, joins=[0.0, len(got[0]) / 25])


def test_reel_never_overwrites_the_source(src, tmp_path):
    events = results_file(tmp_path / "ev.json", [(1, 2300, "Goal", 0.9)])
    before = src.read_bytes()
    with pytest.raises(SpottingError, match="refusing to overwrite"):
        render.reel_command(src, events=events, out=src)
    assert src.read_bytes() == before
    assert main(["reel", str(src), "--events", events, "--out", str(src)]) == 2
    assert main(["reel", str(src), "--events", events, "--out", str(tmp_path / "r.mp4"), "--half", "2"]) == 2


def test_cli_reel(src, tmp_path, capsys):
    events = results_file(tmp_path / "ev.json", [(1, 4000, "Foul", 0.9), (1, 5000, "Throw-in", 0.2)])
    out = tmp_path / "r.mp4"
    assert main(["reel", str(src), "--events", events, "--out", str(out), "--min-confidence", "0.5"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    kept = json.loads((tmp_path / "r.results_spotting.json").read_text())["predictions"]
    assert [p["label"] for p in kept] == ["Foul"]
    assert vid.probe(out).duration >= 8.0 - 1e-6            # Foul: 5 s before (from 0 here), 4 s after


def test_title_caption_fade_through_moviepy(src, tmp_path):
    events = results_file(tmp_path / "ev.json", [(1, 5000, "Goal", 0.9)])
    out = render.reel_command(src, events=events, out=tmp_path / "r.mp4", mode="exact", pre=1, post=1,
                          caption=True, title="Match", fade_s=0.3, edit_lists=False)
    info = vid.probe(out)
    assert info.has_audio and info.duration == pytest.approx(2.0 + 2.0, abs=0.1)   # title card + segment
    first = vid.decode_array(out, fps=2.0, size=(160, 96))
    assert first[0].mean() < 60                                  # the title card is dark
    with pytest.raises(SpottingError, match="exact"):
        render.reel_command(src, events=events, out=tmp_path / "r2.mp4", mode="fast", title="Match")


def test_real_clip_fast_and_exact(shared_data, tmp_path):
    clip = shared_data / "video" / "mvfoul" / "action_0" / "clip_0.mp4"
    events = results_file(tmp_path / "ev.json", [(1, 2500, "Foul", 0.9)])
    exact = render.reel_command(clip, events=events, out=tmp_path / "exact.mp4", mode="exact", pre=1.0, post=1.2)
    assert len(videos.all_frames(exact, (398, 224))) == 55                 # 2.2 s at 25 fps, to the frame
    assert 2.2 <= vid.probe(exact).duration <= 2.2 + 0.07                 # + AAC frame padding of the audio
    fast = render.reel_command(clip, events=events, out=tmp_path / "fast.mp4", mode="fast", pre=1.0, post=1.2)
    kf = cut.keyframes(clip)
    gop = float(np.max(np.diff(np.append(kf, vid.probe(clip).duration))))
    assert 2.2 - 0.05 <= vid.probe(fast).duration <= 2.2 + gop + 0.05
    assert vid.probe(fast).has_audio and vid.probe(exact).has_audio


def test_spot_then_reel_on_a_real_clip(shared_data, tmp_path):
    """Video -> features (mobilenetv2-offline) -> NetVLAD++ (random weights: the pipeline, not the
    accuracy) -> results_spotting.json -> a reel cut from those events."""
    import shutil

    import torch

    from spotting_core.engine.spot import spot_path
    from spotting_core.models import build_model, save_checkpoint

    clip = tmp_path / "clip.mp4"
    shutil.copy(shared_data / "video" / "mvfoul" / "action_2" / "clip_0.mp4", clip)
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "nv.pt", build_model("netvlad++", input_dim=1280),
                           classes=soccernet.CLASSES_V2, feature_name="mobilenetv2-offline")
    out = spot_path(clip, checkpoint=ckpt)
    results = out / soccernet.RESULTS_FILE
    events = tables.read_results(results)
    assert len(events) > 0 and (events["position_ms"] <= 5040).all()
    assert (tmp_path / "clip" / "1_mobilenetv2-offline.npy").is_file()        # features cached beside it
    reel = render.reel_command(clip, events=results, out=tmp_path / "reel.mp4", min_confidence=0.0, pre=1, post=1)
    info = vid.probe(reel)
    assert info.has_audio and 0.5 < info.duration <= 5.1
