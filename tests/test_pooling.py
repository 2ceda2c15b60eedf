"""NetVLAD++ and the pooling baselines: official sizes, formulas, fast inference, official checkpoint."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

from spotting_core.cli import main as cli_main
from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2
from spotting_core.models import build_model, count_parameters, load_checkpoint
from spotting_core.models.base import SpottingModel
from spotting_core.models.layers import NetVLAD
from spotting_core.models.losses import clip_multilabel_targets
from spotting_core.models.official import import_official_checkpoint

POOLS = ["netvlad++", "maxpool++", "avgpool++", "maxpool", "avgpool", "netvlad"]
OFFICIAL = "checkpoints/sn-pooling-maxpool-v2.pth.tar"


# ---------------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, dim, expected", [
    ("netvlad++", 512, 655_378), ("netvlad++", 2048, 1_704_466),   # the official figures
    ("netvlad", 512, 655_378),
    ("maxpool++", 512, 2 * 512 * 18 + 18), ("avgpool++", 512, 2 * 512 * 18 + 18),
    ("maxpool", 512, 512 * 18 + 18), ("avgpool", 512, 512 * 18 + 18),
    ("maxpool", 2048, 2048 * 512 + 512 + 512 * 18 + 18),
])  # fmt: skip
def test_parameter_counts(name, dim, expected):
    assert count_parameters(build_model(name, input_dim=dim)) == expected


def test_netvlad_pp_defaults_are_the_papers():
    m = build_model("netvlad++")
    assert (m.clip_frames, m.cfg.nms_window_s, m.cfg.nms_threshold, m.drop.p) == (30, 30.0, 0.0, 0.4)
    assert m.pool_layer_before.num_clusters == m.pool_layer_after.num_clusters == 32
    assert m.fc.out_features == 18 and m.output_mode == "center"
    assert not any(isinstance(mod, torch.nn.BatchNorm1d) for mod in m.modules())


# ---------------------------------------------------------------------------------------------
# Formulas
# ---------------------------------------------------------------------------------------------
def test_netvlad_layer_matches_its_formula_written_out():
    torch.manual_seed(0)
    layer = NetVLAD(num_clusters=3, dim=4)
    x = torch.randn(2, 5, 4)
    out = layer(x)
    for b in range(2):
        xn = x[b] / x[b].norm(dim=1, keepdim=True)                        # (T, D)
        a = torch.exp(xn @ layer.clusters)
        a = a / a.sum(1, keepdim=True)                                     # softmax over clusters
        cols = []
        for k in range(3):
            v = (a[:, k:k + 1] * (xn - layer.clusters2[0, :, k])).sum(0)   # sum_t a_tk (x_t - c2_k)
            cols.append(v / v.norm())
        v = torch.stack(cols, dim=1).reshape(-1)                           # d-major: index d*K + k
        torch.testing.assert_close(out[b], v / v.norm(), atol=1e-6, rtol=1e-5)


def test_netvlad_sliding_linear_equals_forward_on_every_window():
    torch.manual_seed(1)
    layer = NetVLAD(num_clusters=4, dim=6)
    x, w = torch.randn(13, 6), torch.randn(3, 6, 4)
    got = layer.sliding_linear(x, w, length=5)                             # (9, 3)
    windows = x.unfold(0, 5, 1).permute(0, 2, 1)                           # (9, 5, 6)
    want = layer(windows) @ w.reshape(3, -1).T
    torch.testing.assert_close(got.float(), want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", POOLS)
def test_forward_matches_the_official_pooling_written_out(name):
    torch.manual_seed(2)
    m = build_model(name, input_dim=8, window_s=3.0).eval()  # 6 frames, Linear(8 -> 512) first
    x = torch.randn(3, 6, 8)
    h = m.feature_extractor(x)
    before, after = h[:, :3], h[:, 3:]
    pooled = {
        "maxpool": lambda: h.max(1).values, "avgpool": lambda: h.mean(1),
        "maxpool++": lambda: torch.cat([before.max(1).values, after.max(1).values], 1),
        "avgpool++": lambda: torch.cat([before.mean(1), after.mean(1)], 1),
        "netvlad": lambda: m.pool_layer(h),
        "netvlad++": lambda: torch.cat([m.pool_layer_before(before), m.pool_layer_after(after)], 1),
    }[name]()
    logits = pooled @ m.fc.weight.T + m.fc.bias
    out = m(x)
    torch.testing.assert_close(out["logits"], logits)
    torch.testing.assert_close(m.frame_scores(out)["scores"], torch.sigmoid(logits[:, None, 1:]))


def test_loss_is_bce_on_the_official_clip_labels():
    m = build_model("maxpool", input_dim=512, window_s=2.0, num_classes=3)
    events = torch.zeros(2, 4, 3)
    events[0, 1, 2] = 1.0    # a visible event of class 2
    events[0, 3, 0] = -1.0   # an unshown event of class 0: still a positive
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.0], [1.5, 0.3, -0.2, -2.0]])
    # clip 0: classes 0 and 2, not background; clip 1: background only (index 0)
    y = torch.tensor([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    p = 1.0 / (1.0 + torch.exp(-logits))
    want = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    got = m.loss({"logits": logits}, {"events": events})
    torch.testing.assert_close(got["loss"], want)
    assert torch.equal(clip_multilabel_targets(events), y)


# ---------------------------------------------------------------------------------------------
# Fast whole-half inference == the base class's sliding windows
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", POOLS)
@pytest.mark.parametrize("dim, window_s, T", [(512, 15.0, 61), (24, 7.5, 40), (512, 15.0, 9), (24, 3.0, 1)])
def test_fast_sequence_scores_equal_the_generic_sliding_windows(name, dim, window_s, T):
    torch.manual_seed(3)
    m = build_model(name, input_dim=dim, window_s=window_s, vocab_size=8).eval()
    x = torch.randn(T, dim)
    fast = m.sequence_scores(x)["scores"]
    ref = SpottingModel.sequence_scores(m, x)["scores"]
    assert fast.shape == ref.shape == (T, 17)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=0)


def test_fast_netvlad_stays_exact_with_sharp_logits_and_correlated_frames():
    """Trained-like regime: frames share a strong mean, centres sit near it, logits are large."""
    torch.manual_seed(4)
    m = build_model("netvlad++", input_dim=64, window_s=10.0, vocab_size=16).eval()
    mu = torch.randn(512)
    with torch.no_grad():
        m.fc.weight.mul_(300.0)
        for layer in (m.pool_layer_before, m.pool_layer_after):
            layer.clusters2.copy_(F.normalize(mu, dim=0)[None, :, None] + 0.01 * torch.randn_like(layer.clusters2))
            layer.clusters.mul_(10.0)
        m.feature_extractor.weight.mul_(0.1)
        m.feature_extractor.bias.copy_(mu)
    x = torch.randn(200, 64)
    ref = SpottingModel.sequence_scores(m, x)["scores"]
    assert ref.std() > 0.1  # the scores really move
    torch.testing.assert_close(m.sequence_scores(x)["scores"], ref, atol=1e-5, rtol=0)


def test_training_mode_falls_back_to_the_generic_path():
    m = build_model("netvlad++", input_dim=16, window_s=2.0, vocab_size=4).train()
    torch.manual_seed(5)
    out = m.sequence_scores(torch.randn(7, 16))["scores"]
    assert out.shape == (7, 17) and torch.isfinite(out).all()


# ---------------------------------------------------------------------------------------------
# The official checkpoint
# ---------------------------------------------------------------------------------------------
def test_import_official_checkpoint_matches_the_official_model(shared_data, tmp_path):
    src = shared_data / OFFICIAL
    out = import_official_checkpoint(src, tmp_path / "maxpool.ckpt")
    raw = torch.load(src, map_location="cpu", weights_only=True)["state_dict"]
    model, meta = load_checkpoint(out)
    assert meta["model"] == "maxpool" and meta["classes"] == list(CLASSES_V2)
    assert meta["features"] == {"name": "ResNET_TF2_PCA512", "dim": 512}
    assert (meta["config"]["window_s"], meta["config"]["nms_window_s"], meta["config"]["nms_threshold"]) == (20.0, 20.0, 0.0)
    assert model.clip_frames == 40 and meta["extra"]["epoch"] == 79

    torch.manual_seed(6)
    clips = torch.randn(5, 40, 512)
    # the official MAXPOOL_v2: MaxPool1d(40) over time -> fc -> sigmoid; column 0 is background
    official = torch.sigmoid(clips.max(dim=1).values @ raw["fc.weight"].T + raw["fc.bias"])
    with torch.no_grad():
        ours = model.frame_scores(model(clips))["scores"][:, 0]
    torch.testing.assert_close(ours, official[:, 1:], atol=1e-6, rtol=0)

    half = torch.randn(100, 512)  # whole half: fast path == generic windows with the real weights
    torch.testing.assert_close(model.sequence_scores(half)["scores"],
                               SpottingModel.sequence_scores(model, half)["scores"], atol=1e-6, rtol=0)


def test_import_official_through_the_cli(shared_data, tmp_path, capsys):
    out = tmp_path / "m.ckpt"
    assert cli_main(["import-official", str(shared_data / OFFICIAL), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert load_checkpoint(out)[1]["model"] == "maxpool"


def test_import_official_without_log_and_checks_against_the_log(shared_data, tmp_path):
    bare = tmp_path / "model.pth.tar"
    shutil.copy(shared_data / OFFICIAL, bare)  # no model.log next to it: our NMS default
    written = import_official_checkpoint(bare, tmp_path)  # a folder: a file named after the source
    assert written == tmp_path / "model-maxpool.ckpt"
    _, meta = load_checkpoint(written)
    assert meta["config"]["nms_window_s"] == 30.0 and meta["config"]["window_s"] == 20.0
    with pytest.raises(SpottingError, match="pool MAX, not netvlad"):
        import_official_checkpoint(shared_data / OFFICIAL, tmp_path / "b.ckpt", pool="netvlad++")
    with pytest.raises(SpottingError, match="20 s windows, not 15"):
        import_official_checkpoint(shared_data / OFFICIAL, tmp_path / "c.ckpt", window_s=15)
    with pytest.raises(SpottingError, match="do not fit"):  # max++ would need fc on 2*D
        import_official_checkpoint(bare, tmp_path / "d.ckpt", pool="MAX++")


def test_import_official_roundtrips_a_netvlad_pp_state_dict(tmp_path):
    """An official NetVLAD++ file ({epoch, state_dict, ...}, official key names) imports as is."""
    torch.manual_seed(7)
    official = build_model("netvlad++", input_dim=2048)
    src = tmp_path / "model.pth.tar"
    torch.save({"epoch": 3, "state_dict": official.state_dict(), "best_loss": 0.1, "optimizer": {}}, src)
    model, meta = load_checkpoint(import_official_checkpoint(src, tmp_path / "o.ckpt", pool="NetVLAD++", window_s=15))
    assert meta["config"]["input_dim"] == 2048 and meta["config"]["vocab_size"] == 64
    for k, v in official.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)


def test_import_official_rejects_files_that_are_not_official_checkpoints(tmp_path):
    junk = tmp_path / "junk.pth.tar"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(SpottingError, match="not a readable torch file"):
        import_official_checkpoint(junk, tmp_path / "x.ckpt")
    other = tmp_path / "other.pth.tar"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(SpottingError, match="not an official SoccerNet checkpoint"):
        import_official_checkpoint(other, tmp_path / "x.ckpt")
    with pytest.raises(SpottingError, match="checkpoint not found"):
        import_official_checkpoint(tmp_path / "missing.pth.tar", tmp_path / "x.ckpt")
    with pytest.raises(SpottingError, match="not an official pooling"):
        import_official_checkpoint(junk, tmp_path / "x.ckpt", pool="transformer")
    assert cli_main(["import-official", str(junk), "--out", str(tmp_path / "x.ckpt")]) == 2
