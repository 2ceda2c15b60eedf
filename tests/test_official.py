"""Every official SoccerNet architecture imports, and scores as the official forward pass restated here.

The official state dicts are built in the tests from the module structure of the official code
(SoccerNet/sn-spotting Benchmarks/Pooling, TemporallyAwarePooling and CALF `src/model.py`): the same
module names, parameter shapes and layouts, random values. The forward passes are written out from a
reading of that code. The two real files we have (NETVLAD_v1, MAXPOOL_v2) are checked the same way.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V1, CLASSES_V2
from spotting_core.models import load_checkpoint
from spotting_core.models.base import SpottingModel
from spotting_core.models.official import import_official_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def _save(tmp_path, sd, *, log: str | None = None, name: str = "model.pth.tar"):
    src = tmp_path / name
    torch.save({"epoch": 7, "state_dict": sd, "best_loss": 0.25, "optimizer": {}}, src)
    if log is not None:
        (tmp_path / (name.removesuffix(".pth.tar") + ".log")).write_text(log)
    return src


def _rand(*shape, scale=None):
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
    return torch.randn(*shape) * (scale if scale is not None else 1.0 / math.sqrt(fan_in))


# ---------------------------------------------------------------------------------------------
# TemporallyAwarePooling: model.py `Model(pool=...)` and netvlad.py `NetVLAD`, `NetRVLAD`
# ---------------------------------------------------------------------------------------------
def official_tap_state(pool: str, *, input_size: int, classes: int = 17, vocab: int = 64) -> dict:
    """The official module structure: feature_extractor when input_size != 512, then the pool layers."""
    sd = {}
    if input_size != 512:
        sd["feature_extractor.weight"], sd["feature_extractor.bias"] = _rand(512, input_size), _rand(512, scale=0.1)
    vlad_layers = {"NetVLAD": [("pool_layer", vocab)], "NetRVLAD": [("pool_layer", vocab)],
                   "NetVLAD++": [("pool_layer_before", vocab // 2), ("pool_layer_after", vocab // 2)],
                   "NetRVLAD++": [("pool_layer_before", vocab // 2), ("pool_layer_after", vocab // 2)]}.get(pool, [])
    for layer, k in vlad_layers:
        sd[f"{layer}.clusters"] = torch.randn(512, k) / math.sqrt(512) * 8.0   # sharp assignments
        if "RVLAD" not in pool:
            sd[f"{layer}.clusters2"] = torch.randn(1, 512, k) / math.sqrt(512)
    fc_in = 512 * vocab if vlad_layers else 1024 if pool.endswith("++") else 512
    gain = 30.0 if vlad_layers else 1.0  # NetVLAD outputs have norm 1; max / avg pools are O(sqrt(fc_in))
    sd["fc.weight"] = _rand(classes + 1, fc_in, scale=gain / math.sqrt(fc_in))
    sd["fc.bias"] = _rand(classes + 1, scale=0.5)
    return sd


def official_tap_vlad(x, clusters, clusters2=None):
    """netvlad.py NetVLAD (LOUPE) / NetRVLAD forward: (B, T, 512) -> (B, 512 * K)."""
    x = F.normalize(x, p=2, dim=2)
    a = torch.softmax(x @ clusters, dim=2)                       # (B, T, K)
    vlad = (a.transpose(1, 2) @ x).transpose(1, 2)               # (B, D, K)
    if clusters2 is not None:
        vlad = vlad - a.sum(1, keepdim=True) * clusters2
    vlad = F.normalize(vlad, p=2, dim=1)                         # over D: intra-normalisation
    return F.normalize(vlad.reshape(x.shape[0], -1), p=2, dim=1)


def official_tap_forward(sd, pool, x):
    """model.py Model.forward in eval mode: (B, T, D) -> (B, 1 + C) sigmoid scores."""
    if "feature_extractor.weight" in sd:
        x = x @ sd["feature_extractor.weight"].T + sd["feature_extractor.bias"]
    half = int(x.shape[1] / 2)
    if pool in ("MAX", "AVG"):
        pooled = x.amax(1) if pool == "MAX" else x.mean(1)
    elif pool in ("MAX++", "AVG++"):
        red = (lambda t: t.amax(1)) if pool == "MAX++" else (lambda t: t.mean(1))
        pooled = torch.cat([red(x[:, :half]), red(x[:, half:])], 1)
    elif pool in ("NetVLAD", "NetRVLAD"):
        pooled = official_tap_vlad(x, sd["pool_layer.clusters"], sd.get("pool_layer.clusters2"))
    else:
        pooled = torch.cat([official_tap_vlad(x[:, :half], sd["pool_layer_before.clusters"], sd.get("pool_layer_before.clusters2")),
                            official_tap_vlad(x[:, half:], sd["pool_layer_after.clusters"], sd.get("pool_layer_after.clusters2"))], 1)
    return torch.sigmoid(pooled @ sd["fc.weight"].T + sd["fc.bias"])


@pytest.mark.parametrize("pool, ours, input_size", [
    ("NetVLAD++", "netvlad++", 2048), ("NetRVLAD++", "netrvlad++", 2048), ("MAX++", "maxpool++", 2048),
    ("AVG++", "avgpool++", 512), ("NetVLAD", "netvlad", 512), ("NetRVLAD", "netrvlad", 2048),
    ("MAX", "maxpool", 2048), ("AVG", "avgpool", 512),
])  # fmt: skip
def test_temporally_aware_pooling_imports_with_the_official_scores(tmp_path, pool, ours, input_size):
    torch.manual_seed(0)
    sd = official_tap_state(pool, input_size=input_size)
    log = f"2021 [INFO ]             pool : {pool}\n2021 [INFO ]      window_size : 15\n2021 [INFO ]       NMS_window : 30\n"
    model, meta = load_checkpoint(import_official_checkpoint(_save(tmp_path, sd, log=log), tmp_path / "o.ckpt",
                                                             feature_name="ResNET_TF2"))
    assert meta["model"] == ours and meta["classes"] == list(CLASSES_V2)
    assert meta["config"]["input_dim"] == input_size and model.clip_frames == 30
    x = torch.randn(6, 30, input_size) + torch.randn(input_size)   # frames sharing a mean, as real features
    official = official_tap_forward(sd, pool, x)
    with torch.no_grad():
        got = model.frame_scores(model(x))["scores"][:, 0]
    assert official[:, 1:].std() > 1e-3  # the scores really move
    torch.testing.assert_close(got, official[:, 1:], atol=1e-6, rtol=0)
    half = torch.randn(50, input_size)  # the fast whole-half path agrees with the official clips too
    torch.testing.assert_close(model.sequence_scores(half)["scores"],
                               SpottingModel.sequence_scores(model, half)["scores"], atol=1e-5, rtol=0)


def test_without_a_log_the_keys_tell_the_architecture(tmp_path):
    torch.manual_seed(1)
    for pool, ours in (("NetRVLAD++", "netrvlad++"), ("NetVLAD", "netvlad"), ("MAX++", "maxpool++")):
        sd = official_tap_state(pool, input_size=2048, vocab=16)
        out = import_official_checkpoint(_save(tmp_path, sd, name=f"{ours}.pth.tar"), tmp_path / f"{ours}.ckpt",
                                         window_s=15)
        _, meta = load_checkpoint(out)
        assert meta["model"] == ours, pool
        assert "VLAD" not in pool or meta["config"]["vocab_size"] == 16


def test_keys_that_fit_no_architecture_are_named(tmp_path, capsys):
    from spotting_core.cli import main

    sd = {"encoder.weight": torch.zeros(3, 4), "head.bias": torch.zeros(2)}
    with pytest.raises(SpottingError, match=r"fit no official architecture we know \(keys found: "
                                            r"encoder.weight \(3, 4\), head.bias \(2,\)\)"):
        import_official_checkpoint(_save(tmp_path, sd), tmp_path / "x.ckpt")
    assert main(["import-official", str(tmp_path / "model.pth.tar"), "--out", str(tmp_path / "x.ckpt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "encoder.weight (3, 4)" in err[0]
    assert not (tmp_path / "x.ckpt").exists()
    sd = official_tap_state("NetVLAD++", input_size=512, vocab=8)
    del sd["pool_layer_after.clusters2"]   # half NetVLAD++, half NetRVLAD++: neither
    with pytest.raises(SpottingError, match="fit the official netvlad\\+\\+ layout.*pool_layer_before.clusters"):
        import_official_checkpoint(_save(tmp_path, sd), tmp_path / "y.ckpt", pool="NetVLAD++", window_s=15)


# ---------------------------------------------------------------------------------------------
# The Pooling benchmark: model.py `Model(pool="NetVLAD" | "MAX")`, netvlad.py (centroids + 1x1 conv)
# ---------------------------------------------------------------------------------------------
def official_pooling_netvlad_forward(sd, x):
    """Benchmarks/Pooling NetVLAD (vladv2=False) in eval mode: (B, T, 512) -> (B, 1 + C) sigmoid scores."""
    x = F.normalize(x.permute(0, 2, 1)[..., None], p=2, dim=1)            # (B, D, T, 1), over D
    a = torch.softmax(F.conv2d(x, sd["pool_layer.conv.weight"])[..., 0], dim=1)  # (B, K, T)
    xf = x[..., 0]                                                        # (B, D, T)
    residual = xf[:, None] - sd["pool_layer.centroids"][None, :, :, None]  # (B, K, D, T)
    vlad = (residual * a[:, :, None]).sum(-1)                             # (B, K, D)
    vlad = F.normalize(vlad, p=2, dim=2).reshape(x.shape[0], -1)          # k-major
    vlad = F.normalize(vlad, p=2, dim=1)
    return torch.sigmoid(vlad @ sd["fc.weight"].T + sd["fc.bias"])


def _check_pooling_netvlad(model, sd, torch_seed=3):
    torch.manual_seed(torch_seed)
    x = torch.randn(6, 40, 512) + 2.0 * torch.randn(512)
    official = official_pooling_netvlad_forward(sd, x)
    with torch.no_grad():
        got = model.frame_scores(model(x))["scores"][:, 0]
    torch.testing.assert_close(got, official[:, 1:], atol=1e-6, rtol=0)
    half = torch.randn(70, 512)
    torch.testing.assert_close(model.sequence_scores(half)["scores"],
                               SpottingModel.sequence_scores(model, half)["scores"], atol=1e-6, rtol=0)


def test_the_real_netvlad_v1_imports_with_the_official_scores(shared_data, tmp_path):
    src = shared_data / "checkpoints/sn-pooling-netvlad-v1.pth.tar"
    sd = torch.load(src, map_location="cpu", weights_only=True)["state_dict"]
    assert set(sd) == {"pool_layer.centroids", "pool_layer.conv.weight", "fc.weight", "fc.bias"}
    model, meta = load_checkpoint(import_official_checkpoint(src, tmp_path / "nv1.ckpt"))  # its log beside it
    assert meta["model"] == "netvlad" and meta["classes"] == list(CLASSES_V1)
    assert (meta["config"]["window_s"], meta["config"]["nms_window_s"], meta["config"]["nms_threshold"]) == (20.0, 20.0, 0.5)
    assert meta["extra"]["official_log"]["pool"] == "NetVLAD"
    _check_pooling_netvlad(model, sd)


def test_a_v2_pooling_netvlad_imports_with_the_official_scores(tmp_path):
    torch.manual_seed(4)
    sd = {"pool_layer.centroids": torch.rand(64, 512), "pool_layer.conv.weight": torch.randn(64, 512, 1, 1) * 0.5,
          "fc.weight": torch.randn(18, 512 * 64) * 0.05, "fc.bias": torch.randn(18) * 0.1}
    log = "2021 [INFO ]             pool : NetVLAD\n2021 [INFO ]       chunk_size : 20\n2021 [INFO ]    NMS_threshold : 0.5\n"
    model, meta = load_checkpoint(import_official_checkpoint(_save(tmp_path, sd, log=log), tmp_path / "nv2.ckpt"))
    assert meta["model"] == "netvlad" and meta["classes"] == list(CLASSES_V2) and model.clip_frames == 40
    _check_pooling_netvlad(model, sd)


def test_the_real_maxpool_v2_imports_with_the_official_scores(shared_data, tmp_path):
    src = shared_data / "checkpoints/sn-pooling-maxpool-v2.pth.tar"
    sd = torch.load(src, map_location="cpu", weights_only=True)["state_dict"]
    model, meta = load_checkpoint(import_official_checkpoint(src, tmp_path / "mp.ckpt"))
    assert meta["model"] == "maxpool"
    torch.manual_seed(5)
    x = torch.randn(6, 40, 512)
    # model.py MAX: MaxPool1d(chunk_size) over (B, D, T), squeeze, fc, sigmoid
    official = torch.sigmoid(F.max_pool1d(x.permute(0, 2, 1), 40).squeeze(-1) @ sd["fc.weight"].T + sd["fc.bias"])
    with torch.no_grad():
        torch.testing.assert_close(model.frame_scores(model(x))["scores"][:, 0], official[:, 1:], atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------
# CALF: Benchmarks/CALF/src/model.py `ContextAwareModel`
# ---------------------------------------------------------------------------------------------
def official_calf_state(*, input_size=512, classes=17, chunk=240, receptive=80, capsule=16, detections=15) -> dict:
    """ContextAwareModel's modules and shapes: Conv2d on (B, 1, T, D), pyramid kernels ceil(R/7), ceil(R/3),
    ceil(R/2), R; BatchNorm2d over the T frames; conf / class heads as 1x1 Conv2d on 16 * (T // 8 - 1)."""
    pooled = 16 * (chunk // 8 - 1)
    shapes = {
        "conv_1": (128, 1, 1, input_size), "conv_2": (32, 128, 1, 1),
        "conv_p_1": (8, 32, math.ceil(receptive / 7), 1), "conv_p_2": (16, 32, math.ceil(receptive / 3), 1),
        "conv_p_3": (32, 32, math.ceil(receptive / 2), 1), "conv_p_4": (64, 32, receptive, 1),
        "conv_seg": (capsule * classes, 152, 3, 1), "conv_spot_1": (32, classes * (capsule + 1), 3, 1),
        "conv_spot_2": (16, 32, 3, 1), "conv_conf": (detections * 2, pooled, 1, 1),
        "conv_class": (detections * classes, pooled, 1, 1),
    }
    sd = {}
    for name, shape in shapes.items():
        sd[f"{name}.weight"] = _rand(*shape, scale=1.5 / math.sqrt(math.prod(shape[1:])))
        sd[f"{name}.bias"] = _rand(shape[0], scale=0.1)
    sd["batch_seg.weight"], sd["batch_seg.bias"] = 1.0 + 0.2 * torch.randn(chunk), 0.2 * torch.randn(chunk)
    sd["batch_seg.running_mean"], sd["batch_seg.running_var"] = 0.3 * torch.randn(chunk), 0.5 + torch.rand(chunk)
    sd["batch_seg.num_batches_tracked"] = torch.tensor(1234)
    return sd


def official_calf_forward(sd, x, *, classes=17, capsule=16, detections=15):
    """ContextAwareModel.forward in eval mode: (B, T, D) -> (segmentation (B, T, C), spotting (B, N, 2 + C))."""
    B, T, _ = x.shape

    def conv(h, name, pad=False):
        k = sd[f"{name}.weight"].shape[2]
        if pad:  # ZeroPad2d((0, 0, (k-1)//2, k-1-(k-1)//2)): zeros before and after in time
            h = F.pad(h, (0, 0, (k - 1) // 2, k - 1 - (k - 1) // 2))
        return F.conv2d(h, sd[f"{name}.weight"], sd[f"{name}.bias"])

    h = F.relu(conv(F.relu(conv(x[:, None], "conv_1")), "conv_2"))            # (B, 32, T, 1)
    cat = torch.cat([h] + [F.relu(conv(h, f"conv_p_{i}", pad=True)) for i in (1, 2, 3, 4)], 1)  # (B, 152, T, 1)
    seg = conv(cat, "conv_seg", pad=True)                                       # (B, dc*C, T, 1)
    caps = seg.permute(0, 2, 3, 1).reshape(B, T, capsule, classes)
    caps = F.batch_norm(caps, sd["batch_seg.running_mean"], sd["batch_seg.running_var"], sd["batch_seg.weight"],
                        sd["batch_seg.bias"], training=False, eps=0.001)
    segmentation = torch.sqrt(((torch.sigmoid(caps) - 0.5) ** 2).sum(2) * 4 / capsule)  # (B, T, C)
    h = torch.cat([seg, (1 - segmentation)[:, :, None].permute(0, 3, 1, 2)], 1)
    h = F.max_pool2d(F.relu(h), (3, 1), (2, 1))
    h = F.max_pool2d(F.relu(conv(h, "conv_spot_1", pad=True)), (3, 1), (2, 1))
    h = F.max_pool2d(F.relu(conv(h, "conv_spot_2", pad=True)), (3, 1), (2, 1))
    flat = h.reshape(B, -1, 1, 1)
    conf = torch.sigmoid(conv(flat, "conv_conf").view(B, detections, 2))
    cls = torch.softmax(conv(flat, "conv_class").view(B, detections, classes), dim=-1)
    return segmentation, torch.cat([conf, cls], dim=-1)


def test_calf_imports_from_the_official_layout_with_the_official_outputs(tmp_path):
    torch.manual_seed(6)
    sd = official_calf_state()
    model, meta = load_checkpoint(import_official_checkpoint(_save(tmp_path, sd), tmp_path / "calf.ckpt", pool="calf"))
    cfg = meta["config"]
    assert meta["model"] == "calf" and meta["classes"] == list(CLASSES_V2)
    assert (cfg["window_s"], cfg["receptive_field_s"], cfg["dim_capsule"], cfg["num_detections"]) == (120.0, 40.0, 16, 15)
    assert (cfg["nms_window_s"], cfg["nms_threshold"]) == (20.0, 0.0)
    assert int(model.seg_norm.num_batches_tracked) == 1234
    x = torch.randn(2, 240, 512) + torch.randn(512)
    # float64 on both sides: 20 layers of float32 rounding reach 2e-6 whichever way the sums run
    seg, spot = official_calf_forward({k: v.double() if v.is_floating_point() else v for k, v in sd.items()}, x.double())
    with torch.no_grad():
        out = model.double()(x.double())
    assert spot[:, :, 2:].std() > 1e-3 and seg.std() > 1e-3
    torch.testing.assert_close(model.predictions(out), spot, atol=1e-6, rtol=0)
    torch.testing.assert_close(model.segmentation_score(out["capsules"]), seg, atol=1e-6, rtol=0)
    with torch.no_grad():  # and in float32, as it runs
        torch.testing.assert_close(model.float().predictions(model(x)), spot.float(), atol=2e-5, rtol=0)


def test_calf_sizes_come_from_the_weights_and_must_agree_with_the_window(tmp_path):
    torch.manual_seed(7)
    sd = official_calf_state(input_size=64, chunk=48, receptive=16, capsule=4, detections=3)
    src = _save(tmp_path, sd)
    model, meta = load_checkpoint(import_official_checkpoint(src, tmp_path / "c.ckpt"))  # found by its keys
    assert meta["model"] == "calf" and model.clip_frames == 48 and meta["config"]["receptive_field_s"] == 8.0
    x = torch.randn(3, 48, 64)
    seg, spot = official_calf_forward(sd, x, capsule=4, detections=3)
    with torch.no_grad():
        torch.testing.assert_close(model.predictions(model(x)), spot, atol=1e-6, rtol=0)
    with pytest.raises(SpottingError, match="24 s chunks, not 120"):
        import_official_checkpoint(src, tmp_path / "d.ckpt", window_s=120)
