"""The SoccerNet downloader: one clear line when its servers cannot be reached, bad names refused offline."""

from __future__ import annotations

import pytest

from spotting_core.cli import main
from spotting_core.errors import SpottingError
from spotting_core.io.download import download


def _no_network(*args, **kwargs):
    import httpx2

    raise httpx2.ConnectError("[Errno -3] Temporary failure in name resolution")


def test_download_without_network_is_one_clear_error(tmp_path, monkeypatch, capsys):
    from SoccerNet.Downloader import SoccerNetDownloader

    calls = []
    monkeypatch.setattr(SoccerNetDownloader, "downloadGames",
                        lambda self, **kw: (calls.append(kw), _no_network())[1])
    with pytest.raises(SpottingError, match="cannot reach SoccerNet's servers: ConnectError"):
        download(tmp_path / "sn", splits=["valid"])
    assert calls[0]["split"] == ["valid"] and "Labels-v2.json" in calls[0]["files"]

    monkeypatch.setattr(SoccerNetDownloader, "downloadGames", lambda self, **kw: _raise(OSError("Network is unreachable")))
    assert main(["download", str(tmp_path / "sn"), "--split", "test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot reach SoccerNet's servers: OSError: Network is unreachable")


def _raise(e):
    raise e


def test_download_refuses_unknown_files_and_splits(tmp_path, monkeypatch):
    from SoccerNet.Downloader import SoccerNetDownloader

    monkeypatch.setattr(SoccerNetDownloader, "downloadGames", lambda self, **kw: pytest.fail("network used"))
    with pytest.raises(SpottingError, match="does not serve 1_nothing.npy"):
        download(tmp_path, files=["1_nothing.npy"])
    with pytest.raises(SpottingError, match="unknown split everything"):
        download(tmp_path, splits=["everything"])
