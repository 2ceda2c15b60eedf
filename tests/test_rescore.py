"""Context rescoring: its features against a brute-force reading, what it learns, and where it is applied."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from spotting_core.cli import main
from spotting_core.engine.calibrate import fit_thresholds, score_at
from spotting_core.engine.evaluate import read_game_pairs
from spotting_core.engine.rescore import WINDOWS_S, context_features, curve_features, rescore, rescore_events
from spotting_core.engine.spot import load_spotter, spot_input
from spotting_core.errors import SpottingError
from spotting_core.models import build_model, save_checkpoint, store_extra
from spotting_core.synth.benchmark import generate


def _brute(preds, C):
    h, pos, c, conf = (np.asarray(preds[k]) for k in ("half", "position_ms", "class_id", "confidence"))
    clipped = np.clip(conf, 1e-6, 1 - 1e-6)
    out = np.zeros((len(conf), 1 + C * len(WINDOWS_S)))
    out[:, 0] = np.log(clipped / (1 - clipped))
    for i in range(len(conf)):
        for w, (a, b) in enumerate(WINDOWS_S):
            for k in range(C):
                m = (h == h[i]) & (c == k) & (pos - pos[i] >= a * 1000) & (pos - pos[i] <= b * 1000)
                m[i] = False                                      # never itself
                out[i, 1 + w * C + k] = conf[m].max() if m.any() else 0.0
    return out


def test_features_are_the_highest_other_confidence_per_class_and_window():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 120):
        preds = {"half": rng.integers(1, 3, n), "position_ms": rng.integers(0, 200, n) * 500,  # shared times too
                 "class_id": rng.integers(0, 3, n), "confidence": rng.random(n)}
        assert np.allclose(context_features(preds, 3), _brute(preds, 3))
    # by hand: a class-1 candidate 5 s after a class-0 one sees it in the (-8, -2) window, not in its own half
    preds = {"half": [1, 1, 2], "position_ms": [10_000, 15_000, 15_000], "class_id": [0, 1, 0],
             "confidence": [0.9, 0.2, 0.7]}
    F = context_features(preds, 2)
    w = WINDOWS_S.index((-8, -2))
    assert F[1, 1 + w * 2 + 0] == 0.9 and F[1, 1 + WINDOWS_S.index((-2, 2)) * 2 + 0] == 0.0


def test_curve_features_read_the_scores_around_each_candidate():
    rng = np.random.default_rng(3)
    C, fps, n = 3, 2.0, 60
    curves = {1: rng.random((50, C)), 2: rng.random((30, C))}
    preds = {"half": rng.integers(1, 3, n), "position_ms": rng.integers(0, 30_000, n), "class_id": rng.integers(0, C, n),
             "confidence": rng.random(n)}
    spec = {"fps": fps, "own_offsets_s": [-2, 0, 1.5, 40], "all_offsets_s": [-1, 3]}
    F = curve_features(preds, curves, spec, C)
    assert F.shape == (n, 4 + C * 2)
    for i in range(n):
        s = curves[preds["half"][i]]
        f = min(int(round(preds["position_ms"][i] / 500)), len(s) - 1)       # past the end: the last frame
        own = [s[min(max(f + int(round(o * fps)), 0), len(s) - 1), preds["class_id"][i]] for o in spec["own_offsets_s"]]
        every = [s[min(max(f + int(round(o * fps)), 0), len(s) - 1)] for o in spec["all_offsets_s"]]
        p = np.clip(own, 1e-4, 1 - 1e-4)
        assert np.allclose(F[i], np.r_[np.log(p / (1 - p)), np.concatenate(every)])
    with pytest.raises(SpottingError, match="scores"):                     # a half without its curve
        curve_features(preds, {1: curves[1]}, spec, C)


def _shape_games(n, seed, T=600):
    """Class 0: a true event leaves a 6 s plateau on its score curve after its peak, a false one the peak
    alone; confidences and the events around them are alike."""
    rng = np.random.default_rng(seed)
    games = []
    for _ in range(n):
        s = rng.random((T, 2)) * 0.05
        lab, pred = [], []
        for f in range(20, T - 20, 30):
            conf = rng.uniform(0.3, 0.9)
            s[f, 0] = conf
            if rng.random() < 0.5:
                s[f + 1: f + 13, 0] = 0.8 * conf
                lab.append((1, f * 500, 0))
            pred.append((1, f * 500, 0, conf))
        cols = lambda rows, k: {key: [r[i] for r in rows] for i, key in enumerate(k)}  # noqa: E731
        games.append(("g", cols(lab, ("half", "position_ms", "class_id")),
                      {**cols(pred, ("half", "position_ms", "class_id", "confidence")), "curves": {1: s}}))
    return games


def test_with_score_curves_the_rescorer_reads_their_shape():
    classes = ["a", "b"]
    fit, held = _shape_games(20, 0), _shape_games(20, 1)
    with_curves = fit_thresholds(fit, classes=classes, context=True)
    events_only = fit_thresholds([(*g[:-1], {k: v for k, v in g[-1].items() if k != "curves"}) for g in fit],
                                 classes=classes, context=True)
    assert with_curves["rescorer"]["curves"]["fps"] == 2.0 and events_only["rescorer"]["curves"] is None
    f1 = {name: score_at([(*g[:-1], {**g[-1], "confidence": rescore(thr["rescorer"], g[-1])}) for g in held], thr,
                         classes=classes)["f1"]
          for name, thr in (("curves", with_curves), ("events", events_only))}
    assert f1["curves"] > 0.97 and f1["curves"] > f1["events"] + 0.1
    again = json.loads(json.dumps(with_curves["rescorer"]))
    assert np.array_equal(rescore(again, held[0][-1]), rescore(with_curves["rescorer"], held[0][-1]))
    with pytest.raises(SpottingError, match="scores"):                     # it needs the curves to score
        rescore(with_curves["rescorer"], {k: v for k, v in held[0][-1].items() if k != "curves"})


def _grammar_games(n, seed):
    """Class 1 is a true event only 3-6 s after a class-0 event; its own confidence says nothing."""
    rng = np.random.default_rng(seed)
    games = []
    for _ in range(n):
        lab, pred = [], []
        for t in range(20_000, 280_000, 40_000):
            lab.append((1, t, 0))
            pred.append((1, t, 0, rng.uniform(0.6, 1.0)))
            if rng.random() < 0.5:                               # a true follower
                lab.append((1, t + int(rng.uniform(3_000, 6_000)), 1))
                pred.append((1, lab[-1][1], 1, rng.uniform(0.1, 0.9)))
            pred.append((1, t + 20_000, 1, rng.uniform(0.1, 0.9)))  # a false one, far from any class 0
        cols = lambda rows, k: {key: [r[i] for r in rows] for i, key in enumerate(k)}  # noqa: E731
        games.append(("g", cols(lab, ("half", "position_ms", "class_id")),
                      cols(pred, ("half", "position_ms", "class_id", "confidence"))))
    return games


def test_the_rescorer_learns_what_came_before_and_the_thresholds_hold_for_its_scores():
    fit, held = _grammar_games(20, 0), _grammar_games(20, 1)
    plain = fit_thresholds(fit)
    context = fit_thresholds(fit, context=True)
    assert "rescorer" not in plain and "rescorer" in context
    revised = [(*g[:-1], {**g[-1], "confidence": rescore(context["rescorer"], g[-1])}) for g in held]
    f_plain = score_at(held, plain)["f1"]
    f_context = score_at(revised, context)["f1"]
    assert f_context > 0.97 and f_context > f_plain + 0.1        # the followers are told apart by context alone
    # class 1's revised confidence: high after a class-0 event, low far from one
    conf, cls = np.asarray(revised[0][-1]["confidence"]), np.asarray(held[0][-1]["class_id"])
    pos = np.asarray(held[0][-1]["position_ms"])
    near = (cls == 1) & (pos % 40_000 >= 20_000)                 # 3-6 s after the class-0 events
    assert conf[near].min() > 0.5 > conf[(cls == 1) & ~near].max()
    # JSON round trip (it lives in checkpoints and thresholds files)
    again = json.loads(json.dumps(context["rescorer"]))
    assert np.array_equal(rescore(again, held[0][-1]), rescore(context["rescorer"], held[0][-1]))


def test_too_few_examples_keep_the_confidence():
    one = _grammar_games(1, 2)
    thr = fit_thresholds(one[:1], context=True)   # one game: both folds fit on it; class 0 has no false candidate
    assert thr["rescorer"]["folds"][0][0] is None
    preds = one[0][-1]
    revised = rescore(thr["rescorer"], preds)
    cls = np.asarray(preds["class_id"])
    assert np.allclose(revised[cls == 0], np.asarray(preds["confidence"])[cls == 0])


@pytest.fixture(scope="module")
def game_and_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("rescore")
    data = generate(root / "data", games=3, seed=2, half_minutes=2.0)
    ckpt = save_checkpoint(root / "avg.pt", build_model("avgpool++", window_s=10.0), classes=[f"c{i}" for i in range(17)],
                           feature_name="synth512")
    return next((data / "test").rglob("Labels-v2.json")).parent, ckpt


def test_spot_applies_the_checkpoint_rescorer(game_and_checkpoint):
    game, ckpt = game_and_checkpoint
    raw, _, _ = spot_input(load_spotter(ckpt), game)
    assert load_spotter(ckpt).rescorer is None and len(raw) > 0
    n = len(raw)
    fitted = fit_thresholds([("g", {"half": raw["half"][: n // 2], "position_ms": raw["position_ms"][: n // 2],
                                    "class_id": raw["class_id"][: n // 2]},
                              {k: raw[k].to_numpy() for k in ("half", "position_ms", "class_id", "confidence")})],
                            context=True, classes=[f"c{i}" for i in range(17)])
    store_extra(ckpt, thresholds=fitted)
    spotter = load_spotter(ckpt)
    assert spotter.rescorer == fitted["rescorer"]
    revised, _, _ = spot_input(spotter, game)
    want = rescore_events(fitted["rescorer"], raw)
    assert np.allclose(revised["confidence"], want["confidence"]) and not np.allclose(revised["confidence"], raw["confidence"])
    assert revised[["half", "position_ms", "class_id"]].equals(raw[["half", "position_ms", "class_id"]])
    untouched, _, _ = spot_input(spotter, game, rescore=False)
    assert np.allclose(untouched["confidence"], raw["confidence"])
    # a rescorer that reads the per-frame scores: spot hands it the curves it computed
    raw, arrays, _ = spot_input(load_spotter(ckpt), game, rescore=False)
    curves = {h: a["scores"] for h, a in arrays.items()}
    fitted = fit_thresholds([("g", {"half": raw["half"][: n // 2], "position_ms": raw["position_ms"][: n // 2],
                                    "class_id": raw["class_id"][: n // 2]},
                              {**{k: raw[k].to_numpy() for k in ("half", "position_ms", "class_id", "confidence")},
                               "curves": curves})], context=True, classes=[f"c{i}" for i in range(17)])
    assert fitted["rescorer"]["curves"]
    store_extra(ckpt, thresholds=fitted)
    revised, _, _ = spot_input(load_spotter(ckpt), game)
    assert np.allclose(revised["confidence"], rescore_events(fitted["rescorer"], raw, arrays)["confidence"])


def test_calibrate_context_writes_a_rescorer(tmp_path, capsys):
    from spotting_core.io.soccernet import CLASSES_V2

    data = generate(tmp_path / "data", games=3, seed=4, half_minutes=2.0)
    for game in data.rglob("Labels-v2.json"):    # predictions: the labels themselves, one false twin each
        labels = json.loads(game.read_text())["annotations"]
        preds = [{"gameTime": a["gameTime"], "label": a["label"], "position": a["position"], "half": a["gameTime"][0],
                  "confidence": "0.9"} for a in labels]
        preds += [{**p, "position": str(int(p["position"]) + 30_000), "confidence": "0.5"} for p in preds]
        (game.parent / "results_spotting.json").write_text(json.dumps({"predictions": preds}))
    out = tmp_path / "thr.json"
    assert main(["calibrate", str(data), str(data), "--out", str(out), "--context", "--json"]) == 0
    written = json.loads(out.read_text())
    assert written["rescorer"]["windows_s"] == [list(w) for w in WINDOWS_S] and set(written["classes"]) == set(CLASSES_V2)
    capsys.readouterr()
    assert main(["evaluate", str(data), str(data), "--thresholds", str(out), "--json"]) == 0
    point = json.loads(capsys.readouterr().out)["operating_point"]
    pairs = read_game_pairs(data, data)
    revised = [(*g[:-1], {**g[-1], "confidence": rescore(written["rescorer"], g[-1])}) for g in pairs]
    assert point["rescored"] and point["f1"] == pytest.approx(score_at(revised, written)["f1"])
    assert point["f1"] != pytest.approx(score_at(pairs, written)["f1"])   # not the thresholds on the raw ones
    assert written["rescorer"]["curves"] is None                           # no <half>_scores.npy there
    # with the model's per-frame scores beside the predictions, it reads them too; evaluate reads them back
    rng = np.random.default_rng(5)
    for game in data.rglob("results_spotting.json"):
        for half in (1, 2):
            np.save(game.parent / f"{half}_scores.npy", rng.random((240, 17)).astype(np.float32))
    capsys.readouterr()
    assert main(["calibrate", str(data), str(data), "--out", str(out), "--context", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rescorer_reads_curves"] is True
    written = json.loads(out.read_text())
    assert written["rescorer"]["curves"]["own_offsets_s"][0] == -8
    assert main(["evaluate", str(data), str(data), "--thresholds", str(out), "--json"]) == 0
    point = json.loads(capsys.readouterr().out)["operating_point"]
    pairs = read_game_pairs(data, data, curves=True)
    assert all(set(g[-1]["curves"]) == {1, 2} for g in pairs)
    archive = shutil.make_archive(str(tmp_path / "preds"), "zip", data)        # the same from a zip
    zipped = read_game_pairs(data, archive, curves=True)
    assert all(np.array_equal(z[-1]["curves"][h], g[-1]["curves"][h]) for z, g in zip(zipped, pairs) for h in (1, 2))
    revised = [(*g[:-1], {**g[-1], "confidence": rescore(written["rescorer"], g[-1])}) for g in pairs]
    assert point["rescored"] and point["f1"] == pytest.approx(score_at(revised, written)["f1"])
    assert main(["calibrate", str(data), str(data), "--out", str(out)]) == 0
    assert "rescorer" not in json.loads(out.read_text())
    assert main(["evaluate", str(data), str(data), "--thresholds", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["operating_point"]["rescored"] is False
