"""Plain HTTP downloads against a local server: resume, truncation, hashes as git and Keras compute them."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest
from fileserver import serving

from spotting_core.errors import SpottingError
from spotting_core.io.remote import (
    Truncated,
    Unreachable,
    download,
    git_blob_sha1,
    install_file,
    md5_file,
    verify,
)

DATA = os.urandom(300_000)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


def test_hashes_are_the_ones_git_and_keras_publish(tmp_path):
    f = tmp_path / "blob.bin"
    f.write_bytes(DATA)
    assert git_blob_sha1(f) == hashlib.sha1(b"blob %d\0" % len(DATA) + DATA).hexdigest()
    assert md5_file(f) == hashlib.md5(DATA).hexdigest()
    if shutil.which("git"):
        assert subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True,
                              check=True).stdout.strip() == git_blob_sha1(f)


def test_download_resumes_where_a_dead_transfer_stopped(tmp_path):
    part = tmp_path / "d" / "x.bin.part"
    progress = []
    with serving({"/x.bin": DATA}, die_after=120_000) as srv:
        with pytest.raises(Truncated, match="stopped after 120,000"):
            download(f"{srv.base}/x.bin", part, progress=lambda f, t: progress.append(f))
        assert part.stat().st_size == 120_000 and 0 < progress[-1] < 1
        srv.die_after = None
        assert download(f"{srv.base}/x.bin", part, size=len(DATA)) == part
        assert srv.requests[-1] == ("/x.bin", "bytes=120000-") and part.read_bytes() == DATA
        # already whole: a known size asks for nothing, an unknown one gets 416 and keeps the file
        n = len(srv.requests)
        download(f"{srv.base}/x.bin", part, size=len(DATA))
        assert len(srv.requests) == n
        download(f"{srv.base}/x.bin", part)
        assert srv.requests[-1] == ("/x.bin", f"bytes={len(DATA)}-") and part.read_bytes() == DATA


def test_errors_are_one_line(tmp_path):
    from serve import free_port

    url = f"http://127.0.0.1:{free_port()}/x.bin"
    with pytest.raises(Unreachable) as e:
        download(url, tmp_path / "x.part")
    assert url in str(e.value) and "\n" not in str(e.value)
    with serving({}) as srv, pytest.raises(SpottingError, match="HTTP 404"):
        download(f"{srv.base}/missing.bin", tmp_path / "y.part")
    f = tmp_path / "z.bin"
    f.write_bytes(DATA)
    with pytest.raises(SpottingError, match="md5 .* is not the published 0+"):
        verify(f, md5="0" * 32, keep=True)
    assert f.is_file()
    with pytest.raises(SpottingError, match="the file was deleted"):
        verify(f, git_sha1="0" * 40)
    assert not f.exists()


def test_install_file_replaces_in_one_step(tmp_path):
    src, dest = tmp_path / "new.bin", tmp_path / "sub" / "dest.bin"
    src.write_bytes(DATA)
    assert install_file(src, dest) == dest and dest.read_bytes() == DATA and not src.exists()
    assert [p.name for p in dest.parent.iterdir()] == ["dest.bin"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    src.write_bytes(DATA)
    with pytest.raises(SpottingError, match="cannot install the file"):
        install_file(src, blocker / "dest.bin")
