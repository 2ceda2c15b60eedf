"""What the media routes serve, over HTTP against `streamlit run app.py`: media (200, 206 for a Range
request), and a 404 or 400 for everything else: the review store, checkpoints, JSON, arrays, source,
dotfiles, traversal and links out of the root. Uploads get random names."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from serve import app_env, get, running_app

from pages.support.server import CACHE_MEDIA_FOLDERS, media_url, servable, store_upload
from spotting_core.errors import SpottingError
from spotting_core.review.store import ReviewStore

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40  # StaticFiles does not look inside


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A media root and a cache holding media and everything that is not, and a server over them."""
    media, cache, outside = (tmp_path_factory.mktemp(n) for n in ("media", "cache", "outside"))
    files = {
        "match/1_720p.mp4": VIDEO, "match/2_720p.mkv": VIDEO, "match/commentary.mp3": b"ID3" + VIDEO,
        "match/1_720p.vtt": b"WEBVTT\n", "match/thumb.jpg": b"\xff\xd8\xff", "match/Labels-v2.json": b"{}",
        "match/1_ResNET_TF2_PCA512.npy": b"\x93NUMPY", "match/weights.pt": b"PK", "match/model.pth.tar": b"PK",
        "match/notes.md": b"# notes", "tool.py": b"import os", ".env": b"SECRET=1", ".git/config": b"[core]",
        ".hidden/clip.mp4": VIDEO, "__pycache__/x.mp4": VIDEO, "review.sqlite": b"SQLite format 3",
    }
    for rel, data in files.items():
        (media / rel).parent.mkdir(parents=True, exist_ok=True)
        (media / rel).write_bytes(data + b"\n" * 64)
    (outside / "secret.mp4").write_bytes(VIDEO)
    os.symlink(outside / "secret.mp4", media / "escape.mp4")          # a link out of the root
    os.symlink(media / "review.sqlite", media / "alias.mp4")         # a media name leading to a store
    os.symlink(outside, media / "elsewhere")                          # a folder link out of the root
    ReviewStore(cache / "review.sqlite")
    for rel, data in {"demo/1_demo.mp4": VIDEO, "reels/m1/1_demo_half1_fast.mp4": VIDEO,
                      "reels/m1/1_demo_half1_fast.vtt": b"WEBVTT\n", "reels/m1/1_demo_half1_fast.edl": b"TITLE",
                      "checkpoints/demo.pt": b"PK", "results/k/results_spotting.json": b"{}",
                      "features/v/1_mobilenet.npy": b"\x93NUMPY", "loose.mp4": VIDEO}.items():
        (cache / rel).parent.mkdir(parents=True, exist_ok=True)
        (cache / rel).write_bytes(data + b"\n" * 64)
    env = app_env(SPOTTING_CACHE=str(cache), SPOTTING_MEDIA_ROOT=str(media))
    with running_app(env) as app:
        yield {"base": app.base, "media": media, "cache": cache}


SERVED = ["root/match/1_720p.mp4", "root/match/2_720p.mkv", "root/match/commentary.mp3", "root/match/1_720p.vtt",
          "root/match/thumb.jpg", "cache/demo/1_demo.mp4", "cache/reels/m1/1_demo_half1_fast.mp4",
          "cache/reels/m1/1_demo_half1_fast.vtt"]
REFUSED = ["cache/review.sqlite", "cache/review.sqlite-wal", "root/review.sqlite", "cache/checkpoints/demo.pt",
           "root/match/weights.pt", "root/match/model.pth.tar", "root/match/Labels-v2.json",
           "cache/results/k/results_spotting.json", "root/match/1_ResNET_TF2_PCA512.npy",
           "cache/features/v/1_mobilenet.npy", "root/tool.py", "root/match/notes.md", "root/.env",
           "root/.git/config", "root/.hidden/clip.mp4", "root/__pycache__/x.mp4", "cache/loose.mp4",
           "cache/reels/m1/1_demo_half1_fast.edl", "root/escape.mp4", "root/alias.mp4", "root/elsewhere/secret.mp4",
           "root/", "cache/", "root/match/"]
TRAVERSAL = ["/media-files/root/../../etc/passwd", "/media-files/root/%2e%2e/%2e%2e/etc/passwd",
             "/media-files/root/match/../../outside/secret.mp4", "/media-files/cache/demo/../review.sqlite",
             "/media-files/cache/demo/..%2freview.sqlite", "/media-files/root//etc/passwd",
             "/media-files/root/match/%00.mp4"]


@pytest.mark.parametrize("rel", SERVED)
def test_media_is_served_whole_and_by_range(served, rel):
    folder = served["media"] if rel.startswith("root/") else served["cache"]
    data = (folder / rel.split("/", 1)[1]).read_bytes()
    status, _, body = get(f"{served['base']}/media-files/{rel}")
    assert status == 200 and body == data
    status, headers, body = get(f"{served['base']}/media-files/{rel}", {"Range": "bytes=2-5"})
    assert status == 206 and body == data[2:6]
    assert headers["content-range"] == f"bytes 2-5/{len(data)}"


@pytest.mark.parametrize("rel", REFUSED)
def test_everything_else_is_not_found(served, rel):
    status, _, body = get(f"{served['base']}/media-files/{rel}")
    assert status == 404, (rel, status, body[:80])
    assert b"SQLite" not in body and b"SECRET" not in body


@pytest.mark.parametrize("path", TRAVERSAL)
def test_traversal_is_refused(served, path):
    status, _, body = get(served["base"], raw_path=path)
    assert status in (400, 404), (path, status)
    assert b"root:" not in body and VIDEO not in body


def test_without_a_login_only_this_machine_is_served(served):
    """A same-host proxy forwarding for another machine (uvicorn trusts X-Forwarded-For from loopback)."""
    url = f"{served['base']}/media-files/cache/demo/1_demo.mp4"
    assert get(url, {"X-Forwarded-For": "203.0.113.7"})[0] == 403
    assert get(url, {"X-Forwarded-For": "127.0.0.1"})[0] == 200


def test_servable_and_media_url_agree_with_the_routes(served, monkeypatch):
    assert servable("match/1_720p.MP4") and servable("a/b/c.vtt") and not servable("a/.b/c.mp4")
    assert not servable("1_demo.mp4", CACHE_MEDIA_FOLDERS) and servable("demo/1_demo.mp4", CACHE_MEDIA_FOLDERS)
    monkeypatch.setenv("SPOTTING_CACHE", str(served["cache"]))
    monkeypatch.setenv("SPOTTING_MEDIA_ROOT", str(served["media"]))
    assert media_url(served["cache"] / "demo" / "1_demo.mp4") == "/media-files/cache/demo/1_demo.mp4"
    assert media_url(served["media"] / "match" / "1_720p.mp4") == "/media-files/root/match/1_720p.mp4"
    for unserved in (served["cache"] / "review.sqlite", served["media"] / ".hidden" / "clip.mp4",
                     served["media"] / "match" / "weights.pt", Path("/etc/passwd")):
        assert media_url(unserved) is None


def test_uploads_get_a_random_name_and_keep_only_a_video_suffix(tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTTING_CACHE", str(tmp_path))
    names = set()
    for name in ("../../etc/cron.d/evil.MP4", "My match (final).mkv", "a\\b\\c.mov", "same.mp4", "same.mp4"):
        path = store_upload(b"video bytes", name)
        assert path.parent == (tmp_path / "uploads").resolve() and path.read_bytes() == b"video bytes"
        assert re.fullmatch(r"[0-9a-f]{32}\.(mp4|mkv|mov)", path.name), path.name
        names.add(path.name)
    assert len(names) == 5 and not list((tmp_path / "uploads").glob(".*"))  # no leftover partial files
    for bad in ("notes.py", "store.sqlite", "clip.mp4.json", "noext"):
        with pytest.raises(SpottingError, match="not an accepted file type"):
            store_upload(b"x", bad)
