"""nms (hard against the official NetVLAD++ semantics, soft on hand-sized inputs), events, output files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spotting_core.engine.inference import events_from_scores, nms, write_outputs
from spotting_core.io.soccernet import CLASSES_V2
from spotting_core.io.tables import RESULT_COLUMNS, read_results


def official_get_spot_from_nms(scores: np.ndarray, window: float, thresh: float) -> list[tuple[int, float]]:
    """The official NetVLAD++ `get_spot_from_NMS`, re-stated: one class column, window in frames.

    While the highest remaining score is >= thresh: keep its (first) frame and value, then set the
    frames [int(max(frame - window/2, 0)), min(frame + int(window/2), T)) to -1.
    """
    s = np.array(scores, dtype=np.float64)
    kept = []
    while s.max() >= thresh:
        i = int(np.argmax(s))
        kept.append((i, float(s[i])))
        s[int(max(-(window / 2) + i, 0)):int(min(i + int(window / 2), len(s)))] = -1
    return kept


def _rows(peaks: np.ndarray, c: int) -> list[tuple[int, float]]:
    return [(int(f), float(v)) for f, k, v in peaks if int(k) == c]


@pytest.mark.parametrize("window_s, threshold", [(30.0, 0.0), (20.0, 0.0), (7.5, 0.0), (30.0, 0.4), (1.0, 0.9)])
def test_hard_nms_equals_the_official_get_spot_from_nms(window_s, threshold):
    rng = np.random.default_rng(0)
    scores = rng.random((400, 5)) ** 3
    scores[50:60, 2] = 0.95  # a plateau: ties go to the first frame, as np.argmax
    peaks = nms(scores, window_s=window_s, fps=2.0, threshold=threshold)
    assert peaks.shape[1] == 3
    for c in range(5):
        want = sorted(official_get_spot_from_nms(scores[:, c], window_s * 2.0, threshold))
        got = _rows(peaks, c)
        assert [f for f, _ in got] == [f for f, _ in want]
        np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=0, atol=0)
    # sorted by class then frame
    assert np.all(np.diff(peaks[:, 1]) >= 0)
    for c in range(5):
        assert np.all(np.diff(peaks[peaks[:, 1] == c, 0]) > 0)


def test_hard_nms_threshold_is_explicit_and_nothing_is_dropped():
    scores = np.zeros((40, 2))
    scores[5, 0], scores[30, 0] = 0.9, 0.2  # two isolated peaks 12.5 s apart
    scores[12, 1] = 0.05
    low = nms(scores, window_s=10.0, fps=2.0, threshold=0.0)   # 20-frame window
    # 0.9 @5 blanks [0, 15), 0.2 @30 blanks [20, 40), then a zero @15 is still a peak (>= 0)
    assert _rows(low, 0) == [(5, 0.9), (15, 0.0), (30, 0.2)]
    assert (12, 0.05) in _rows(low, 1)                        # a low score is still returned
    assert all(v >= 0.0 for v in low[:, 2])
    # with threshold 0 every frame is a kept peak or lies in the window of one
    for c in range(2):
        covered = np.zeros(40, dtype=bool)
        for f, _ in _rows(low, c):
            covered[max(f - 10, 0):min(f + 10, 40)] = True
        assert covered.all()
    high = nms(scores, window_s=10.0, fps=2.0, threshold=0.5)
    assert high.tolist() == [[5.0, 0.0, 0.9]]
    assert nms(np.zeros((0, 3)), window_s=30.0).shape == (0, 3)


def test_soft_nms_linear_on_a_hand_sized_input():
    s = np.array([0.9, 0.8, 0.1, 0.7])
    # window 2 s at 2 fps = 4 frames, half = 2: a neighbour at distance d < 2 is scaled by d / 2
    # take 0.9 @0 -> frame 1: 0.8 * 1/2 = 0.4; take 0.7 @3 -> frame 2: 0.1 * 1/2 = 0.05;
    # take 0.4 @1 -> frame 2: 0.05 * 1/2 = 0.025; take 0.025 @2
    peaks = nms(s, window_s=2.0, fps=2.0, threshold=0.0, method="linear")
    np.testing.assert_allclose(peaks, [[0, 0, 0.9], [1, 0, 0.4], [2, 0, 0.025], [3, 0, 0.7]], atol=1e-12)
    thresholded = nms(s, window_s=2.0, fps=2.0, threshold=0.3, method="linear")
    np.testing.assert_allclose(thresholded, [[0, 0, 0.9], [1, 0, 0.4], [3, 0, 0.7]], atol=1e-12)


def test_soft_nms_gaussian_on_a_hand_sized_input():
    s = np.array([0.9, 0.8, 0.6])
    sigma = 2.0  # sigma_s = 1 s at 2 fps; decay 1 - exp(-d^2 / sigma^2)
    decay = [1.0 - math.exp(-(d ** 2) / sigma ** 2) for d in range(3)]
    # take 0.9 @0: frame 1 -> 0.8 * decay[1], frame 2 -> 0.6 * decay[2]
    s1, s2 = 0.8 * decay[1], 0.6 * decay[2]
    assert s2 > s1  # 0.379 > 0.177: frame 2 comes next
    # take frame 2: frame 1 -> s1 * decay[1]
    want = [[0, 0, 0.9], [1, 0, s1 * decay[1]], [2, 0, s2]]
    peaks = nms(s, window_s=4.0, fps=2.0, threshold=0.0, method="gaussian", sigma_s=1.0)
    np.testing.assert_allclose(peaks, want, atol=1e-12)
    assert len(nms(s, window_s=4.0, fps=2.0, threshold=0.2, method="gaussian", sigma_s=1.0)) == 2


def test_unknown_nms_method():
    with pytest.raises(ValueError, match="hard, linear, gaussian"):
        nms(np.zeros((3, 1)), window_s=1.0, method="soft")


def test_events_from_scores_schema():
    peaks = np.array([[0, 2, 0.5], [7, 0, 0.25], [1201, 16, 0.125]])
    ev = events_from_scores(peaks, half=2, fps=2.0)
    assert set(RESULT_COLUMNS) <= set(ev.columns)
    assert ev["half"].tolist() == [2, 2, 2]
    assert ev["position_ms"].tolist() == [0, 3500, 600500]          # int(frame / fps * 1000)
    assert ev["frame"].tolist() == [0, 7, 1201]
    assert ev["label"].tolist() == [CLASSES_V2[2], CLASSES_V2[0], CLASSES_V2[16]]
    assert ev["class_id"].tolist() == [2, 0, 16]
    assert ev["confidence"].tolist() == [0.5, 0.25, 0.125]
    assert ev["game_time"].tolist() == ["2 - 00:00", "2 - 00:03", "2 - 10:00"]
    assert len(events_from_scores(np.zeros((0, 3)), half=1)) == 0


def test_write_outputs_round_trip(tmp_path):
    scores = np.zeros((30, 17), dtype=np.float32)
    scores[4, 3], scores[20, 10] = 0.8, 0.3
    arrays = {1: {"scores": scores, "saliency": np.linspace(0, 1, 30, dtype=np.float32)}, 2: {"scores": scores[:10]}}
    events = events_from_scores(nms(scores, window_s=5.0, threshold=0.25), half=1)
    path = write_outputs(tmp_path / "out", events, arrays, url_local="england_epl/game")
    assert path == tmp_path / "out" / "results_spotting.json"
    data = json.loads(path.read_text())
    assert data["UrlLocal"] == "england_epl/game"
    assert data["predictions"][0] == {"gameTime": "1 - 00:02", "label": CLASSES_V2[3], "position": "2000",
                                      "half": "1", "confidence": str(float(np.float32(0.8)))}
    back = read_results(path)
    assert back["label"].tolist() == [CLASSES_V2[3], CLASSES_V2[10]]
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "1_scores.npy"), scores)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "1_saliency.npy"), arrays[1]["saliency"])
    assert np.load(tmp_path / "out" / "2_scores.npy").shape == (10, 17)
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left behind
