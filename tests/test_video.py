"""video.py: probe, decode at exactly t = k / fps (read back from pixels), halves, bad inputs, cut primitives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import videos

from spotting_core.cli import main
from spotting_core.errors import SpottingError
from spotting_core.io import video
from spotting_core.media import cut


@pytest.fixture(scope="session")
def vids(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    cfr = videos.coded_video(d / "cfr.mp4", seconds=6.0, audio=True)
    return {
        "dir": d,
        "cfr": cfr,
        "vfr": videos.coded_video(d / "vfr.mp4", seconds=6.0, keep=videos.VFR),
        "odd": videos.coded_video(d / "odd.mp4", seconds=2.0, size=(161, 97), pix_fmt="yuv444p"),
        "rotated": videos.rotated(cfr, d / "rotated.mp4", 90),
        "faststart": videos.coded_video(d / "faststart.mp4", seconds=6.0, faststart=True),
        **videos.bad_inputs(d / "bad", cfr),
    }


def codes(frames: np.ndarray) -> list[int]:
    return [videos.read_code(f) for f in frames]


def test_probe_generated(vids):
    info = video.probe(vids["cfr"])
    assert info.fps == pytest.approx(25.0, abs=0.2)
    assert (info.width, info.height, info.rotation) == (160, 96, 0)
    assert info.has_audio and info.audio_codec == "aac"
    assert info.duration == pytest.approx(6.0, abs=0.05)
    assert info.num_samples(2.0) == 12


@pytest.mark.parametrize("fps", [2.0, 3.0, 25.0])
def test_decode_cfr_is_exactly_k_over_fps(vids, fps):
    times = videos.kept_times(6.0)
    frames = video.decode_array(vids["cfr"], fps=fps)
    assert len(frames) == math.ceil(6.0 * fps)
    expected = [videos.on_screen(times, k / fps) for k in range(len(frames))]
    assert codes(frames) == expected


def test_decode_vfr(vids):
    times = videos.kept_times(6.0, videos.VFR)
    frames = video.decode_array(vids["vfr"], fps=2.0)
    assert codes(frames) == [videos.on_screen(times, k / 2.0) for k in range(len(frames))]
    # the 10 fps part: t = 3.5 s is on screen, t = 3.45 would not be
    assert codes(frames)[7] == 350


def test_decode_start_and_duration(vids):
    """One file holding two halves: the second half's frame k is at offset + k / fps."""
    times = videos.kept_times(6.0)
    second = video.decode_array(vids["cfr"], fps=2.0, start=2.3)
    assert len(second) == math.ceil((6.0 - 2.3) * 2)
    assert codes(second) == [videos.on_screen(times, 2.3 + k / 2.0) for k in range(len(second))]
    first = video.decode_array(vids["cfr"], fps=2.0, duration=2.3)
    assert codes(first) == [videos.on_screen(times, k / 2.0) for k in range(5)]


def test_batches_and_sizes(vids):
    batches = list(video.decode(vids["cfr"], fps=2.0, size=(64, 48), batch_size=5))
    assert [len(b) for b in batches] == [5, 5, 2]
    assert batches[0].shape[1:] == (48, 64, 3) and batches[0].dtype == np.uint8
    assert video.decode_array(vids["cfr"], fps=2.0, size=48).shape[1:] == (48, 80, 3)  # aspect kept


def test_odd_size(vids):
    info = video.probe(vids["odd"])
    assert (info.width, info.height) == (161, 97)
    frames = video.decode_array(vids["odd"], fps=2.0)
    assert frames.shape == (4, 97, 161, 3)
    assert codes(frames) == [0, 48, 100, 148]


def test_rotation_metadata(vids):
    info = video.probe(vids["rotated"])
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (96, 160)
    frames = video.decode_array(vids["rotated"], fps=2.0)
    assert frames.shape[1:] == (160, 96, 3)
    # ffmpeg turned the picture: turning it back gives the coded frame
    turned = [videos.read_code(np.ascontiguousarray(np.rot90(frames[3], r))) for r in (1, -1)]
    assert 148 in turned


@pytest.mark.parametrize("kind, message", [
    ("empty", "empty file"),
    ("truncated", "truncated"),
    ("audio_only", "no video stream"),
    ("text", "not a video"),
])
def test_bad_inputs_one_line_error(vids, kind, message):
    with pytest.raises(SpottingError) as e:
        video.probe(vids[kind])
    assert message in str(e.value) and "\n" not in str(e.value)
    assert str(vids[kind]) in str(e.value)


@pytest.mark.parametrize("kind", ["empty", "truncated", "audio_only", "text"])
def test_bad_inputs_cli_exit_2(vids, kind, capsys, tmp_path):
    rc = main(["features", str(vids[kind]), "--out", str(tmp_path / "f.npy")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1


def test_missing_file():
    with pytest.raises(SpottingError, match="no such file"):
        video.probe("/nonexistent/match.mp4")


def test_truncated_faststart_mp4_is_caught_while_decoding(vids, tmp_path):
    """moov at the front: the header says 6 s, the data stops at 40 %: decode must not pass it off as whole."""
    data = vids["faststart"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])
    info = video.probe(cut)
    assert info.duration == pytest.approx(6.0, abs=0.05)
    with pytest.raises(SpottingError, match="truncated or damaged"):
        video.decode_array(cut, fps=2.0)


def test_real_clip_probe_and_decode(shared_data):
    clip = shared_data / "video" / "mvfoul" / "action_0" / "clip_0.mp4"
    info = video.probe(clip)
    assert (info.width, info.height, info.fps) == (398, 224, 25.0)
    assert info.has_audio and info.duration == pytest.approx(5.04)
    two = video.decode_array(clip, fps=2.0)
    every = video.decode_array(clip, fps=25.0)
    assert len(two) == 11 and len(every) == 126
    # 25 fps, frame i at i/25 s: at t = k/2 the frame on screen is i = floor(12.5 k)
    for k in range(len(two)):
        assert np.array_equal(two[k], every[int(12.5 * k)])


def test_keyframes(vids):
    kf = cut.keyframes(vids["cfr"])
    np.testing.assert_allclose(kf, np.arange(6.0), atol=1e-3)   # gop 25 at 25 fps: one per second
    np.testing.assert_allclose(cut.keyframes(vids["cfr"], start=2.5, end=4.5), [2.0, 3.0, 4.0], atol=1e-3)


def test_cut_exact_is_frame_accurate(vids, tmp_path):
    out = cut.cut_exact(vids["cfr"], tmp_path / "seg.mp4", start=1.3, end=3.1)
    frames = videos.all_frames(out, (160, 96))
    times = videos.kept_times(6.0)
    assert codes(frames) == [int(t) for t in times if 130 <= t < 310]   # every frame of [1.3, 3.1), no more


def test_cut_copy_starts_on_the_keyframe_before(vids, tmp_path):
    out = cut.cut_copy(vids["cfr"], tmp_path / "seg.mp4", start=1.3, end=3.1)
    frames = videos.all_frames(out, (160, 96))
    got = codes(frames)
    assert got[0] == 100                      # keyframe at 1.0 s: up to one GOP early
    assert got[-1] >= 308 and got[-1] < 400    # reaches the end, within a GOP
    assert got == sorted(got)
