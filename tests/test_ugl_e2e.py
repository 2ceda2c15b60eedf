"""UGL end to end: shapes with and without entities, RoIAlign entities, the precomputed entity loader,
offline errors for weights, frame data (layouts, cache, augmentations), the optimizer schedule, and a
tiny train -> checkpoint -> spot run through the CLI on generated video."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spotting_core.cli import main as cli_main
from spotting_core.engine.train import make_optimizer
from spotting_core.errors import SpottingError
from spotting_core.features import frames as fr
from spotting_core.features.entities import DetectorExtractor, load_precomputed, roi_entities
from spotting_core.io.tables import read_results
from spotting_core.models import build_model, load_checkpoint
from spotting_core.models.ugl_e2e import UGLEndToEnd, augment_snippets
from spotting_core.synth.toys import make_toy_dataset

H = 32  # tiny frames


def _model(**kw) -> UGLEndToEnd:
    torch.manual_seed(0)
    return build_model("ugl-e2e", input_dim=H, window_s=2.0, weights="random", ffn_dim=64, **kw)


def _frames(B: int, T: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (B, T, H, H, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
def test_shapes_without_and_with_precomputed_entities():
    m = _model()
    assert m.input_kind == "frames" and m.clip_frames == 4 and m.output_mode == "sequence"
    x = _frames(2, 4)
    assert m(x)["logits"].shape == (2, 4, 18)
    e = _model(entities="precomputed", entity_dim=6)
    ent = torch.randn(2, 4, 3, 6)
    mask = torch.tensor([True, True, False]).expand(2, 4, 3).clone()
    mask[1, 2] = False                                                   # a frame without entities
    out = e(x, ent, mask)["logits"]
    assert out.shape == (2, 4, 18) and torch.isfinite(out).all()
    assert not e.head.last_keep[1, 2].any() and not e.head.last_keep[..., 2].any()
    # the entities matter: other entity features, other logits
    assert not torch.allclose(e.eval()(x, ent, mask)["logits"], e(x, ent * -3, mask)["logits"])


def test_detector_entities_shapes_and_roi_pooling():
    m = _model(entities="detector", detector_random_init=True, max_entities=3, detector_size=64)
    out = m.eval()(_frames(1, 4))["logits"]
    assert out.shape == (1, 4, 18) and torch.isfinite(out).all()
    # RoIAlign: a box over a constant region pools that constant; padding slots are masked out
    fmap = torch.zeros(2, 5, 8, 8)
    fmap[0, :, 0:4, 0:4] = 2.0
    fmap[1, :, 4:8, 4:8] = -1.0
    boxes = [torch.tensor([[0.0, 0.0, 16.0, 16.0]]), torch.tensor([[18.0, 18.0, 30.0, 30.0], [0, 0, 8, 8]])]
    feats, mask = roi_entities(fmap, boxes, max_entities=3, spatial_scale=8 / 32)
    assert feats.shape == (2, 3, 5) and mask.tolist() == [[True, False, False], [True, True, False]]
    torch.testing.assert_close(feats[0, 0], torch.full((5,), 2.0))
    torch.testing.assert_close(feats[1, 0], torch.full((5,), -1.0))
    torch.testing.assert_close(feats[1, 1], torch.zeros(5))
    assert feats[0, 1:].abs().sum() == 0


def test_offline_weights_give_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr("spotting_core.features.backbones.fetch_hub_weights.__defaults__", (2.0,))  # short timeout
    with pytest.raises(SpottingError, match="fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth") as e:
        DetectorExtractor()
    assert "\n" not in str(e.value)
    with pytest.raises(SpottingError, match="regnet_y_400mf.*--set weights=random"):
        build_model("ugl-e2e", input_dim=H, weights="imagenet")
    with pytest.raises(SpottingError, match="entities 'glip'"):
        build_model("ugl-e2e", input_dim=H, weights="random", entities="glip")


def test_precomputed_entities_loader(tmp_path):
    feats = np.random.default_rng(0).normal(size=(5, 4, 6)).astype(np.float32)
    feats[:, 3] = 0.0                                                    # padding slot
    np.save(tmp_path / "1_entities.npy", feats)
    got, mask = load_precomputed(tmp_path, 1)
    assert got.shape == (5, 4, 6) and mask.shape == (5, 4) and mask[:, :3].all() and not mask[:, 3].any()
    explicit = np.zeros((5, 4), dtype=bool)
    explicit[:, 0] = True
    np.save(tmp_path / "1_entities_mask.npy", explicit)
    assert (load_precomputed(tmp_path, 1)[1] == explicit).all()
    np.save(tmp_path / "1_entities_mask.npy", explicit[:, :2])
    with pytest.raises(SpottingError, match="does not match"):
        load_precomputed(tmp_path, 1)
    with pytest.raises(SpottingError, match="2_entities.npy: no precomputed"):
        load_precomputed(tmp_path, 2)
    np.save(tmp_path / "2_entities.npy", np.zeros((5, 6), np.float32))
    with pytest.raises(SpottingError, match=r"expected a float array \(T, N_max, d\)"):
        load_precomputed(tmp_path, 2)


def test_warmup_cosine_schedule_and_adamw():
    m = _model()
    opt, sched, per_step = make_optimizer(m, lr=1e-3, epochs=4, steps_per_epoch=5, patience=3)
    assert per_step and isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 0.01
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    warm = 3 * 5
    assert lrs[:warm] == pytest.approx([1e-3 * (i + 1) / (warm + 1) for i in range(warm)])
    import math

    assert lrs[warm:] == pytest.approx([1e-3 * 0.5 * (1 + math.cos(math.pi * i / 5)) for i in range(5)])


# ---------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------
def test_augment_snippets():
    x = _frames(3, 4)
    y = torch.zeros(3, 4, 18)
    y[..., 17] = 1.0
    y[0, 1] = torch.nn.functional.one_hot(torch.tensor(2), 18).float()
    same, ty = augment_snippets(x, y, crop_frac=1.0, jitter=0.0, mixup_alpha=0.0)
    torch.testing.assert_close(same, x.float(), atol=1e-3, rtol=0)       # identity when all are off
    assert torch.equal(ty, y)
    g = torch.Generator().manual_seed(0)
    aug, ty = augment_snippets(x, y, crop_frac=0.8, jitter=0.3, mixup_alpha=0.4, generator=g)
    assert aug.shape == x.shape and aug.dtype == torch.float32 and 0 <= aug.min() and aug.max() <= 255
    torch.testing.assert_close(ty.sum(-1), torch.ones(3, 4))              # mixed targets stay distributions
    assert not torch.allclose(aug, x.float())


def test_game_videos_layouts_and_frame_cache(tmp_path, monkeypatch):
    root = make_toy_dataset(tmp_path / "sn", games={"train": 1}, half_s=4.0, size=(32, 32), every_s=2.0)
    game = root / "train" / "game0"
    assert [p.name for p in fr.game_videos(game)] == ["1_224p.mkv", "2_224p.mkv"]
    halves = fr.load_game_frames(game, height=32, fps=2.0)
    assert [h.shape for h in halves] == [(8, 32, 32, 3)] * 2 and halves[0].dtype == np.uint8
    assert (game / "1_frames32p.npy").is_file() and (game / ".1_frames32p.npy.json").is_file()
    # an event is visible: the frame at its time holds the class colour
    ann = json.loads((game / "Labels-v2.json").read_text())["annotations"][0]
    frame = halves[int(ann["gameTime"][0]) - 1][int(2 * int(ann["position"]) / 1000)].astype(int)
    colour = {"Goal": 0, "Corner": 1, "Foul": 2}[ann["label"]]
    assert (frame[..., colour] - frame.mean(-1) > 80).sum() >= 9
    monkeypatch.setattr(fr.vid, "decode_array", lambda *a, **k: pytest.fail("decoded again despite the cache"))
    again = fr.load_game_frames(game, height=32, fps=2.0)
    assert all(np.array_equal(a, b) for a, b in zip(again, halves))
    single = make_toy_dataset(tmp_path / "one", games={"valid": 1}, half_s=3.0, size=(32, 32), layout="single")
    assert [p.name for p in fr.game_videos(single / "valid" / "game0")] == ["match.mp4"]
    (single / "valid" / "game0" / "other.mp4").write_bytes(b"x")
    with pytest.raises(SpottingError, match="2 videos"):
        fr.game_videos(single / "valid" / "game0")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpottingError, match="no video"):
        fr.game_videos(tmp_path / "empty")


# ---------------------------------------------------------------------------------------------
# Train -> checkpoint -> spot, through the CLI
# ---------------------------------------------------------------------------------------------
def test_cli_train_then_spot_a_generated_video(tmp_path, capsys):
    data = make_toy_dataset(tmp_path / "data", games={"train": 1, "valid": 1}, half_s=6.0, size=(32, 32),
                               every_s=3.0)
    ckpt = tmp_path / "e2e.pt"
    args = ["train", "--model", "ugl-e2e", "--data", str(data), "--out", str(ckpt), "--epochs", "1",
            "--batch-size", "4", "--set", f"input_dim={H}", "--set", "window_s=4", "--set", "weights=random",
            "--set", "ffn_dim=64"]
    assert cli_main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and summary["checkpoint"] == str(ckpt)
    model, meta = load_checkpoint(ckpt)
    assert meta["model"] == "ugl-e2e" and meta["features"] == {"name": f"frames{H}p", "dim": H}
    assert meta["config"]["weights"] == "random"     # rebuilding never fetches: the state dict has the weights
    video = data / "valid" / "game0" / "2_224p.mkv"
    assert cli_main(["spot", str(video), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out")]) == 0
    events = read_results(tmp_path / "out" / "results_spotting.json")
    scores = np.load(tmp_path / "out" / "2_scores.npy")
    assert scores.shape == (12, 17) and len(events) > 0 and set(events["half"]) == {2}
    # bad input: one line, exit code 2
    assert cli_main(["spot", str(tmp_path / "out" / "2_scores.npy"), "--checkpoint", str(ckpt)]) == 2
    assert "reads video frames, not a features file" in capsys.readouterr().err
