"""shots.py: boundaries of generated video with known shots (hard cuts, a 12-frame dissolve, logo
wipes, pans and moving objects), real broadcast joins, replay candidates, caching, bad input."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import videos

from spotting_core.cli import main
from spotting_core.io.ffmpeg import VideoWriter, ffmpeg_command
from spotting_core.io.video import decode_array
from spotting_core.media import shots as sh
from spotting_core.media.shot_detectors import SIZE, TransNetV2Scorer, transnetv2_available
from spotting_core.synth.shots import DISSOLVE_FRAMES, render_shot_video, shot_script

needs_transnetv2 = pytest.mark.skipif(transnetv2_available() is not None,
                                      reason=f"TransNetV2: {transnetv2_available()}")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """24 s at 25 fps: 8 shots, 4 hard cuts, one 12-frame dissolve, a replay between two logo wipes."""
    script = shot_script(seconds=24, dissolves=1, replays=1, seed=3)
    looks = [look for _, _, look in script.transitions]
    assert looks.count("dissolve") == 1 and looks.count("wipe") == 2 and looks.count("cut") >= 3
    assert [b - a - 1 for a, b, look in script.transitions if look == "dissolve"] == [DISSOLVE_FRAMES]
    video = render_shot_video(tmp_path_factory.mktemp("shots") / "generated.mp4", script)
    return video, script


def boundary_frames(shots: sh.Shots) -> list[int]:
    out = []
    for t in shots.transitions:
        out += [t.first] if t.kind == "cut" else [t.first, t.last]
    return out


def assert_matches(found: list[int], truth: list[int]) -> None:
    """Every true boundary found within one frame, and nothing else."""
    assert len(found) == len(truth), (found, truth)
    assert np.max(np.abs(np.array(sorted(found)) - np.array(truth))) <= 1, (found, truth)


@needs_transnetv2
def test_transnetv2_finds_every_boundary_within_one_frame(generated, capsys):
    video, script = generated
    assert main(["shots", str(video), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["detector"] == "transnetv2" and out["fps"] == 25.0
    found = [int(round(t * 25)) for t in out["boundaries_s"]]
    assert_matches(found, script.boundaries())
    kinds = [(t["kind"], t["source"]) for t in out["transitions"]]
    assert kinds.count(("cut", "transnetv2")) == 4
    assert ("gradual", "transnetv2") in kinds                  # the dissolve, from the network's many-hot head
    assert kinds.count(("gradual", "content")) == 2            # the wipes TransNetV2 does not see
    # the replay between the two wipes is a candidate, labelled as a heuristic
    (first, last), = script.replays
    (span,) = out["replay_candidates"]["spans_s"]
    assert abs(span[0] * 25 - first) <= 1 and abs(span[1] * 25 - (last + 1)) <= 1
    assert "heuristic" in out["replay_candidates"]["note"]


def test_content_detector_finds_every_boundary_within_one_frame(generated):
    video, script = generated
    shots = sh.detect_shots(video, detector="content", cache=False)
    assert shots.detector == "content"
    assert_matches(boundary_frames(shots), script.boundaries())
    assert [(a, b) for a, b in sh.replay_candidates(shots.transitions, 25.0)] == [tuple(script.replays[0])]


@needs_transnetv2
def test_results_are_cached_next_to_the_video(generated, monkeypatch):
    video, _ = generated
    first = sh.detect_shots(video, detector="transnetv2")
    assert sh.cache_file(video, "transnetv2").is_file()
    assert sh.cache_file(video, "transnetv2").parent == video.parent / video.stem / "shots"

    def no_decode(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr("spotting_core.io.video.decode", no_decode)
    again = sh.detect_shots(video, detector="transnetv2")
    assert again.transitions == first.transitions and again.frames == first.frames == 600


@needs_transnetv2
def test_batched_streaming_equals_the_package_inference(generated):
    """Our windows (batched, fed in odd-sized pieces) give the package's own predict_frames output;
    bfloat16 (the CPU default where the CPU has it) stays close to it."""
    import torch

    video, _ = generated
    frames = decode_array(video, fps=25, size=SIZE)[30:130]         # a cut at frame 44 (14 here) inside
    scorer = TransNetV2Scorer(device="cpu", batch=2, precision="float32")
    for piece in np.array_split(frames, 4):
        scorer.feed(piece)
    ours = scorer.finish()
    with torch.inference_mode():
        single, many = scorer.net.predict_frames(torch.from_numpy(frames.copy()), quiet=True)
    ref = np.stack([single.numpy(), many.numpy()], axis=1)
    assert ours.shape == (100, 2) and np.max(np.abs(ours - ref)) < 1e-4
    assert ref[14, 0] > 0.9
    half = TransNetV2Scorer(device="cpu", precision="bfloat16")
    half.feed(frames)
    assert np.max(np.abs(half.finish() - ref)) < 0.02


@needs_transnetv2
def test_loading_transnetv2_leaves_torch_as_it_was():
    import torch

    from spotting_core.media.shot_detectors import load_transnetv2

    load_transnetv2.cache_clear()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_transnetv2("cpu")
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.equal(torch.rand(3), expected)


def real_joins(shared_data, out):
    """Two camera angles of a foul (the live view, then the close-up replay angle) and a third clip of
    another match, one after the other, re-encoded to one stream."""
    clips = [shared_data / "video" / "mvfoul" / f"action_{a}" / f"clip_{c}.mp4" for a, c in ((0, 0), (0, 1), (1, 0))]
    counts = [len(decode_array(c, fps=25, size=SIZE)) for c in clips]
    args = [a for c in clips for a in ("-i", str(c))]
    graph = "".join(f"[{i}:v]" for i in range(len(clips))) + f"concat=n={len(clips)}:v=1:a=0[v]"
    subprocess.run(ffmpeg_command(*args, "-filter_complex", graph, "-map", "[v]", "-c:v", "libx264", "-preset",
                                  "veryfast", "-crf", "18", "-r", "25", str(out), overwrite=True), check=True)
    return out, list(np.cumsum(counts)[:-1])


@pytest.mark.parametrize("detector", [pytest.param("transnetv2", marks=needs_transnetv2), "content"])
def test_real_broadcast_joins_are_found_within_one_frame(shared_data, tmp_path, detector):
    video, joins = real_joins(shared_data, tmp_path / "angles.mp4")
    found = np.array(boundary_frames(sh.detect_shots(video, detector=detector, cache=False)))
    for j in joins:                      # real cuts between camera angles (the clips hold cuts of their own too)
        assert np.min(np.abs(found - j)) <= 1, (j, found.tolist())


@pytest.mark.parametrize("detector", [pytest.param("transnetv2", marks=needs_transnetv2), "content"])
def test_one_static_frame_has_no_boundaries(tmp_path, detector):
    frame = np.zeros((90, 160, 3), np.uint8)
    frame[20:60, 30:120] = (200, 80, 40)
    with VideoWriter(tmp_path / "static.mp4", size=(160, 90), fps=25) as w:
        for _ in range(100):
            w.write(frame)
    shots = sh.detect_shots(tmp_path / "static.mp4", detector=detector, cache=False)
    assert shots.frames == 100 and shots.transitions == [] and shots.ranges() == [(0, 99)]


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    good = videos.testsrc_video(tmp_path / "good.mp4", seconds=1.0, size=(96, 64))
    bad = videos.bad_inputs(tmp_path / "bad", good)
    for name in ("empty", "truncated", "audio_only", "text"):
        assert main(["shots", str(bad[name]), "--detector", "content"]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and bad[name].name in err[0], (name, err)
    assert main(["reel", str(bad["truncated"]), "--events", "x.json", "--out", str(tmp_path / "r.mp4")]) == 2


def test_transitions_shots_and_replay_rule():
    cut, wipe_in, inner, wipe_out = (sh.Transition(49, 50), sh.Transition(99, 110, "content"),
                                     sh.Transition(199, 200), sh.Transition(299, 310, "content"))
    shots = sh.Shots(video=None, detector="content", fps=25.0, frames=400,
                     transitions=[cut, wipe_in, inner, wipe_out])
    assert cut.kind == "cut" and cut.first == cut.last == 50
    assert wipe_in.kind == "gradual" and (wipe_in.first, wipe_in.last) == (100, 109)
    assert shots.ranges() == [(0, 49), (50, 99), (110, 199), (200, 299), (310, 399)]
    assert shots.boundaries_s() == [2.0, 4.0, 4.36, 8.0, 12.0, 12.36]
    assert np.allclose(shots.ends_s(), [2.0, 4.0, 8.0, 12.0, 16.0])
    assert shots.replays() == [(4.4, 12.0)]                     # 7.6 s between the two wipes
    near = sh.Shots(None, "content", 25.0, 400, [wipe_in, sh.Transition(150, 160, "content")])
    assert near.replays() == []                                 # 1.6 s apart: not a replay
    long = sh.Shots(None, "content", 25.0, 400, [sh.Transition(10, 70, "content"), wipe_out])
    assert long.replays() == []                                 # a 2.4 s transition is no logo wipe


def test_one_pass_feeds_feature_frames_and_shot_frames(generated):
    """decode_split's two streams are exactly what two separate decodes give."""
    from spotting_core.io.split_decode import decode_split

    video, _ = generated
    got = {"frames": [], "shots": []}
    for kind, batch in decode_split(video, fps=2.0, size=64):
        got[kind].append(batch)
    frames, shot_frames = (np.concatenate(got[k]) for k in ("frames", "shots"))
    assert np.array_equal(frames, decode_array(video, fps=2.0, size=64))
    assert np.array_equal(shot_frames, decode_array(video, fps=25.0, size=SIZE))
    shot_pass = sh.ShotPass("content")
    shot_pass.feed(shot_frames)
    assert shot_pass.result(video, 25.0).transitions == sh.detect_shots(video, detector="content",
                                                                        cache=False).transitions
