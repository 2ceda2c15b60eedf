"""The pretrained registry: real official files through a local mirror, verified, converted, installed;
every bad input one line with nothing installed; registry names wherever a checkpoint path goes."""

from __future__ import annotations

import dataclasses
import pickle
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import torch
from fileserver import serving

from spotting_core.cli import main as cli_main
from spotting_core.errors import SpottingError
from spotting_core.io.remote import git_blob_sha1, md5_file
from spotting_core.io.soccernet import CLASSES_V1, CLASSES_V2
from spotting_core.models import MODELS, load_checkpoint, read_checkpoint, resolve_checkpoint, store_extra
from spotting_core.models import pretrained as pt

MIRROR = Path("/work/.mirror/SoccerNet+sn-spotting/repo")
NETVLAD_V1 = "checkpoints/sn-pooling-netvlad-v1.pth.tar"
MAXPOOL_V2 = "checkpoints/sn-pooling-maxpool-v2.pth.tar"
AVERAGE = "soccernet-features/average_512_TF2.pkl"
NV1_PATH = "/soccernet-netvlad-v1/model.pth.tar"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache, SoccerNet folder and home; no mirror; local addresses never go through a proxy."""
    monkeypatch.setenv("SPOTTING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SPOTTING_SOCCERNET_DIR", str(tmp_path / "soccernet"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    monkeypatch.delenv(pt.ENV_MIRROR, raising=False)
    return tmp_path / "cache"


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1, err
    return err[0]


def _nothing_installed(name: str) -> None:
    assert not pt.is_installed(name)
    assert not list(pt.pretrained_dir().glob("*.ckpt"))


# ---------------------------------------------------------------------------------------------
# The registry itself
# ---------------------------------------------------------------------------------------------
ISSUE_TABLE = {
    "soccernet-netvlad++": ["0c9f6a2b915369b983d2d225ef2183febb16a8da"],
    "soccernet-calf": ["a132f187fbff45c0784257280d56521c60057732"],
    "soccernet-netvlad-v2": ["ad96b56764f89d7d1953fb0a2773cd59583251d9"],
    "soccernet-maxpool-v2": ["902a6af82a0526ed6350fd546207135027330a8d"],
    "soccernet-netvlad-v1": ["373fdd4b2e8fc33ab638781d50b1d20e9772e92c"],
    "soccernet-pca512": ["7c3391c946d890c6db391eeccb9fabc7dd887310", "341e12f15e0a314f02ee9af2b58d1717a45d76c6"],
}


def test_every_entry_records_files_hashes_features_classes_nms_and_reported_map():
    assert set(pt.ENTRIES) == {*ISSUE_TABLE, "keras-resnet152"}
    for name, hashes in ISSUE_TABLE.items():
        assert [f.git_sha1 for f in pt.ENTRIES[name].files] == hashes
    keras = pt.ENTRIES["keras-resnet152"].files[0]
    assert keras.md5 == "ee4c566cf9a93f14d82f913c2dc6dd0c"
    assert keras.url == ("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
                         "resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5")
    for e in pt.ENTRIES.values():
        assert all(r in pt.ENTRIES for r in e.requires)
        assert e.features in (("ResNET_TF2", 2048), ("ResNET_TF2_PCA512", 512))
        if e.kind == "checkpoint":
            assert e.model in MODELS and e.classes and e.reported is not None and e.reported.source
            assert "keras-resnet152" in e.requires
            assert ("soccernet-pca512" in e.requires) == (e.features[1] == 512)
    nvpp = pt.ENTRIES["soccernet-netvlad++"]
    assert (nvpp.window_s, nvpp.nms, nvpp.reported.value) == (15.0, (30.0, 0.0), 0.5324)
    assert nvpp.files[0].url.endswith("/Benchmarks/TemporallyAwarePooling/models/NetVLAD%2B%2B/model.pth.tar")
    assert pt.with_requirements(["soccernet-calf"]) == ["keras-resnet152", "soccernet-pca512", "soccernet-calf"]


@pytest.mark.skipif(not MIRROR.is_dir(), reason="the sn-spotting mirror is not on this machine")
def test_paths_hashes_and_sizes_are_the_ones_git_records_upstream():
    """Every SoccerNet file's path exists at the pinned commit with exactly the recorded blob and size."""
    for e in pt.ENTRIES.values():
        for f in e.files:
            if f.git_sha1 is None:
                continue
            path = f.path.removeprefix(f"{pt.SN_REPO}/")
            assert f.url == pt.SN_RAW + urllib.parse.quote(path)
            line = subprocess.run(["git", "-C", str(MIRROR), "ls-tree", "-l", pt.SN_COMMIT, "--", path],
                                  capture_output=True, text=True, check=True).stdout.split()
            assert line[2] == f.git_sha1, path
            if line[3].isdigit():
                assert f.size == int(line[3]), path
            assert f.size is not None or f.approx_mb is not None


def test_real_files_here_have_the_published_hashes(shared_data):
    """The three official files we hold are byte for byte the ones the registry expects."""
    for rel, name, i in ((NETVLAD_V1, "soccernet-netvlad-v1", 0), (MAXPOOL_V2, "soccernet-maxpool-v2", 0),
                         (AVERAGE, "soccernet-pca512", 1)):
        f = pt.ENTRIES[name].files[i]
        assert git_blob_sha1(shared_data / rel) == f.git_sha1
        assert (shared_data / rel).stat().st_size == f.size
        if shutil.which("git"):
            assert subprocess.run(["git", "hash-object", str(shared_data / rel)], capture_output=True,
                                  text=True, check=True).stdout.strip() == f.git_sha1


# ---------------------------------------------------------------------------------------------
# Fetch through the mirror
# ---------------------------------------------------------------------------------------------
def test_fetch_through_a_mirror_installs_the_real_netvlad_v1(shared_data, cache, monkeypatch, capsys, tmp_path):
    data = (shared_data / NETVLAD_V1).read_bytes()
    with serving({NV1_PATH: data}) as srv:
        monkeypatch.setenv(pt.ENV_MIRROR, srv.base + "/")
        assert cli_main(["pretrained", "fetch", "soccernet-netvlad-v1", "--no-deps"]) == 0
        assert srv.requests == [(NV1_PATH, None)]
        out = Path(capsys.readouterr().out.strip())
        assert out == pt.checkpoint_path("soccernet-netvlad-v1") and out.is_file()
        assert cli_main(["pretrained", "fetch", "soccernet-netvlad-v1", "--no-deps"]) == 0  # nothing to do
        assert "already installed" in capsys.readouterr().err and len(srv.requests) == 1
    model, meta = load_checkpoint("soccernet-netvlad-v1")   # the name is a checkpoint
    assert meta["model"] == "netvlad" and meta["classes"] == list(CLASSES_V1)
    assert meta["features"] == {"name": "ResNET_TF2_PCA512", "dim": 512}
    cfg = meta["config"]
    assert (cfg["window_s"], cfg["nms_window_s"], cfg["nms_threshold"], cfg["vocab_size"]) == (20.0, 20.0, 0.5, 64)
    prov = meta["extra"]["pretrained"]
    assert prov["entry"] == "soccernet-netvlad-v1" and prov["git_sha1"] == git_blob_sha1(shared_data / NETVLAD_V1)
    assert prov["reported"]["average_map"] == 0.4467 and meta["extra"]["epoch"] is not None
    assert not any((pt.pretrained_dir() / ".downloads").rglob("*"))  # no download left behind
    row = pt.describe("soccernet-netvlad-v1")
    assert row["installed"] and row["missing"] == ["keras-resnet152", "soccernet-pca512"]

    # spot a features file by the entry's name, as with a path
    feats = tmp_path / "1_ResNET_TF2_PCA512.npy"
    np.save(feats, np.random.default_rng(0).normal(size=(120, 512)).astype(np.float32))
    assert cli_main(["spot", str(feats), "--checkpoint", "soccernet-netvlad-v1", "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "results_spotting.json").is_file()
    assert resolve_checkpoint("soccernet-netvlad-v1") == out
    store_extra("soccernet-netvlad-v1", note="kept")  # names work for writing too
    assert read_checkpoint(out)["extra"]["note"] == "kept"


def test_a_corrupted_copy_is_rejected_and_deleted(shared_data, cache, monkeypatch, capsys):
    data = bytearray((shared_data / NETVLAD_V1).read_bytes())
    data[len(data) // 2] ^= 0xFF
    with serving({NV1_PATH: bytes(data)}) as srv:
        monkeypatch.setenv(pt.ENV_MIRROR, srv.base)
        assert cli_main(["pretrained", "fetch", "soccernet-netvlad-v1", "--no-deps"]) == 2
    line = _one_error_line(capsys)
    assert "git blob sha1" in line and "373fdd4b2e8fc33ab638781d50b1d20e9772e92c" in line and "deleted" in line
    _nothing_installed("soccernet-netvlad-v1")
    assert not any((pt.pretrained_dir() / ".downloads").rglob("*.part"))


def test_a_server_dying_mid_file_installs_nothing_and_the_next_fetch_resumes(shared_data, cache, monkeypatch,
                                                                              capsys):
    data = (shared_data / NETVLAD_V1).read_bytes()
    with serving({NV1_PATH: data}, die_after=1_000_000) as srv:
        monkeypatch.setenv(pt.ENV_MIRROR, srv.base)
        assert cli_main(["pretrained", "fetch", "soccernet-netvlad-v1", "--no-deps"]) == 2
        line = _one_error_line(capsys)
        assert "stopped after 1,000,000" in line and "nothing was installed" in line and "resume" in line
        _nothing_installed("soccernet-netvlad-v1")
        srv.die_after = None  # the server is back
        assert cli_main(["pretrained", "fetch", "soccernet-netvlad-v1", "--no-deps"]) == 0
        assert srv.requests[-1] == (NV1_PATH, "bytes=1000000-")  # resumed, not restarted
    ckpt = read_checkpoint("soccernet-netvlad-v1")
    assert ckpt["extra"]["pretrained"]["git_sha1"] == pt.ENTRIES["soccernet-netvlad-v1"].files[0].git_sha1


def test_offline_the_error_names_the_url_and_the_import_command(cache, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    assert cli_main(["pretrained", "fetch", "soccernet-netvlad++", "--no-deps"]) == 2
    line = _one_error_line(capsys)
    url = pt.ENTRIES["soccernet-netvlad++"].files[0].url
    assert url in line and "spotting pretrained import soccernet-netvlad++ model.pth.tar" in line
    assert "Temporary failure in name resolution" in line
    _nothing_installed("soccernet-netvlad++")


def test_an_unreachable_mirror_names_its_url(cache, monkeypatch, capsys):
    from serve import free_port

    monkeypatch.setenv(pt.ENV_MIRROR, f"http://127.0.0.1:{free_port()}")  # nobody listens there
    assert cli_main(["pretrained", "fetch", "soccernet-maxpool-v2", "--no-deps"]) == 2
    assert "/soccernet-maxpool-v2/model.pth.tar" in _one_error_line(capsys)


# ---------------------------------------------------------------------------------------------
# Import of files downloaded by hand
# ---------------------------------------------------------------------------------------------
def test_import_verifies_files_downloaded_by_hand(shared_data, cache, capsys, tmp_path):
    user_file = tmp_path / "downloads" / "whatever-name.pth.tar"
    user_file.parent.mkdir()
    shutil.copy(shared_data / MAXPOOL_V2, user_file)
    # the wrong file for the entry: one line, nothing installed, the user's file untouched
    assert cli_main(["pretrained", "import", "soccernet-netvlad-v1", str(user_file)]) == 2
    line = _one_error_line(capsys)
    assert "not a file of soccernet-netvlad-v1" in line and "nothing was installed" in line
    assert user_file.is_file() and git_blob_sha1(user_file) == pt.ENTRIES["soccernet-maxpool-v2"].files[0].git_sha1
    _nothing_installed("soccernet-netvlad-v1")
    # the right entry
    assert cli_main(["pretrained", "import", "soccernet-maxpool-v2", str(user_file)]) == 0
    assert "video input also needs keras-resnet152, soccernet-pca512" in capsys.readouterr().err
    model, meta = load_checkpoint("soccernet-maxpool-v2")
    assert meta["model"] == "maxpool" and meta["classes"] == list(CLASSES_V2)
    assert (meta["config"]["window_s"], meta["config"]["nms_window_s"], meta["config"]["nms_threshold"]) == (20.0, 20.0, 0.0)
    raw = torch.load(shared_data / MAXPOOL_V2, map_location="cpu", weights_only=True)["state_dict"]
    clips = torch.randn(4, 40, 512)
    official = torch.sigmoid(clips.amax(1) @ raw["fc.weight"].T + raw["fc.bias"])[:, 1:]
    with torch.no_grad():
        torch.testing.assert_close(model.frame_scores(model(clips))["scores"][:, 0], official, atol=1e-6, rtol=0)
    assert user_file.is_file()
    assert cli_main(["pretrained", "import", "soccernet-pca512", str(shared_data / AVERAGE)]) == 2
    assert "also give pca_512_TF2.pkl" in _one_error_line(capsys)


def test_names_that_are_not_installed_say_how_to_fetch_them(cache, capsys, tmp_path):
    with pytest.raises(SpottingError, match=r"not installed; run `spotting pretrained fetch soccernet-calf`"):
        load_checkpoint("soccernet-calf")
    assert cli_main(["spot", str(tmp_path), "--checkpoint", "soccernet-netvlad++"]) == 2
    assert "spotting pretrained fetch soccernet-netvlad++" in _one_error_line(capsys)
    with pytest.raises(SpottingError, match="checkpoint not found"):
        read_checkpoint("keras-resnet152")  # a feature entry is no checkpoint
    assert cli_main(["pretrained", "fetch", "soccernet-nothing"]) == 2
    assert "unknown pretrained entry 'soccernet-nothing'" in _one_error_line(capsys)


def test_an_unwritable_cache_is_one_line(tmp_path, monkeypatch, capsys, shared_data):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SPOTTING_CACHE", str(blocker / "cache"))
    assert cli_main(["pretrained", "import", "soccernet-netvlad-v1", str(shared_data / NETVLAD_V1)]) == 2
    assert "cannot create the cache folder" in _one_error_line(capsys)
    monkeypatch.setenv("SPOTTING_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "pretrained").write_text("in the way")
    assert cli_main(["pretrained", "fetch", "soccernet-netvlad-v1", "--no-deps"]) == 2
    assert "pretrained" in _one_error_line(capsys)


# ---------------------------------------------------------------------------------------------
# Feature entries: installed into the SoccerNet folder, converted, or not at all
# ---------------------------------------------------------------------------------------------
def test_the_pca_entry_installs_and_converts_with_the_real_average(shared_data, cache, monkeypatch, tmp_path):
    """The real official average + a PCA fitted as Features/ReduceFeaturesPCA.py does (the real PCA
    pickle is not here): fetched through the mirror, the features equal sklearn's transform."""
    from sklearn.decomposition import PCA

    from spotting_core.features.soccernet import PCA_NPZ, apply_pca, load_official_pca, soccernet_dir

    average = np.asarray(pickle.loads((shared_data / AVERAGE).read_bytes()))  # (2048,) float32, real
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(600, 40)) @ rng.normal(size=(40, 2048))).astype(np.float32) + average
    pca = PCA(n_components=32, svd_solver="full").fit(data - average)
    pca_bytes = pickle.dumps(pca)
    (tmp_path / "p.pkl").write_bytes(pca_bytes)
    e = pt.ENTRIES["soccernet-pca512"]
    test_entry = dataclasses.replace(e, files=(dataclasses.replace(e.files[0], git_sha1=git_blob_sha1(tmp_path / "p.pkl")),
                                               e.files[1]))  # the real average keeps its real hash
    monkeypatch.setitem(pt.ENTRIES, "soccernet-pca512", test_entry)
    files = {"/soccernet-pca512/pca_512_TF2.pkl": pca_bytes,
             "/soccernet-pca512/average_512_TF2.pkl": (shared_data / AVERAGE).read_bytes()}
    with serving(files) as srv:
        monkeypatch.setenv(pt.ENV_MIRROR, srv.base)
        installed = pt.fetch("soccernet-pca512", deps=False)
    assert (soccernet_dir() / PCA_NPZ) in installed and pt.is_installed("soccernet-pca512")
    x = data[:50]
    ref = pca.transform(x - average)
    assert np.abs(apply_pca(x, load_official_pca()) - ref).max() / np.abs(ref).max() < 1e-5


def test_a_keras_file_that_does_not_convert_leaves_nothing_installed(cache, monkeypatch, capsys, tmp_path):
    junk = b"\x89HDF\r\n\x1a\n" + bytes(5000)  # verified against its (test) hash, but no Keras weights inside
    (tmp_path / "junk.h5").write_bytes(junk)
    e = pt.ENTRIES["keras-resnet152"]
    monkeypatch.setitem(pt.ENTRIES, "keras-resnet152",
                        dataclasses.replace(e, files=(dataclasses.replace(e.files[0], md5=md5_file(tmp_path / "junk.h5")),)))
    with serving({f"/keras-resnet152/{e.files[0].name}": junk}) as srv:
        monkeypatch.setenv(pt.ENV_MIRROR, srv.base)
        assert cli_main(["pretrained", "fetch", "keras-resnet152"]) == 2
    assert "not a readable HDF5" in _one_error_line(capsys)
    from spotting_core.features.soccernet import soccernet_dir

    assert not pt.is_installed("keras-resnet152") and not list(soccernet_dir().glob("*"))


def test_pretrained_list_shows_every_entry(cache, capsys):
    import json

    assert cli_main(["pretrained", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(pt.ENTRIES) and not any(r["installed"] for r in rows.values())
    assert rows["soccernet-netvlad++"]["reported"]["average_map"] == 0.5324
    assert rows["soccernet-netvlad-v1"]["size"] == "2.36 MB"
    assert cli_main(["pretrained", "list"]) == 0
    assert "soccernet-netvlad++" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# The app's checkpoint picker
# ---------------------------------------------------------------------------------------------
def test_the_match_page_lists_the_registry_and_fetches_with_a_progress_bar(shared_data, cache, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from spotting_core.features.soccernet import PCA_NPZ, WEIGHTS_PT, soccernet_dir

    monkeypatch.setenv("SPOTTING_MEDIA_ROOT", str(tmp_path / "media"))
    monkeypatch.setenv("SPOTTING_AUTOLOAD_DEMO", "0")
    (tmp_path / "media").mkdir()
    for name in (WEIGHTS_PT, PCA_NPZ):  # its feature entries count as installed (their contents are not read)
        (soccernet_dir() / name).parent.mkdir(parents=True, exist_ok=True)
        (soccernet_dir() / name).write_bytes(b"")
    with serving({NV1_PATH: (shared_data / NETVLAD_V1).read_bytes()}) as srv:
        monkeypatch.setenv(pt.ENV_MIRROR, srv.base)
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120).run()
        at.switch_page("pages/match.py").run()
        assert not at.exception, at.exception
        box = at.selectbox(key="game_ckpt")
        checkpoints = [n for n, e in pt.ENTRIES.items() if e.kind == "checkpoint"]
        listed = [o for o in box.options if o.split(":")[0] in checkpoints]  # after the files found on disk
        assert [o.split(":")[0] for o in listed] == checkpoints and all(o.endswith("· not installed") for o in listed)
        assert box.options[0].endswith("demo_saliency.pt") and box.options[-1] == "(type a path)"
        box.set_value("pretrained:soccernet-netvlad-v1").run()
        assert any("Not installed" in str(i.value) and "soccernet-netvlad-v1 (2.36 MB)" in str(i.value) for i in at.info)
        at.button(key="game_fetch").click().run()                 # a job in the worker process
        assert not at.exception and not at.error, [e.value for e in at.error]
        from spotting_core.review.jobs import JobQueue

        (job_id,) = [int(i) for i in at.session_state["my_jobs"]]
        deadline = time.time() + 120
        while JobQueue().get(job_id)["state"] in ("queued", "running") and time.time() < deadline:
            time.sleep(0.2)
        assert JobQueue().get(job_id)["state"] == "done", JobQueue().get(job_id)
        at.run()
    assert pt.is_installed("soccernet-netvlad-v1")
    box = at.selectbox(key="game_ckpt")
    assert box.value == "pretrained:soccernet-netvlad-v1"
    assert "ready" in next(o for o in box.options if "soccernet-netvlad-v1" in o)
    assert not any("Not installed" in str(i.value) for i in at.info)
