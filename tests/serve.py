"""Start `streamlit run app.py` on a free port for a test, as a user would, and stop it afterwards.

    with running_app(env, address="127.0.0.1") as app:   app.base, app.proc, app.log()
    get(url, headers)                                    (status, headers, body) without raising on 4xx
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
ACCESS_ENV = ("SPOTTING_ALLOW_ANONYMOUS", "SPOTTING_TRUSTED_USER_HEADER")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(**values: str) -> dict:
    """os.environ without the access settings of the machine running the tests, plus `values`."""
    env = {k: v for k, v in os.environ.items() if k not in ACCESS_ENV}
    env.update({"SPOTTING_AUTOLOAD_DEMO": "0"}, **values)
    return env


def command(port: int, address: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", address,
            "--server.port", str(port), "--server.headless", "true", *extra]


@dataclass
class App:
    base: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_app(env: dict, *, address: str = "127.0.0.1", extra: tuple[str, ...] = (), timeout_s: float = 60):
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="spotting-serve-") as tmp:
        log_path = Path(tmp) / "streamlit.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(command(port, address, *extra), cwd=ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            app = App(base=f"http://127.0.0.1:{port}", proc=proc, log_path=log_path)
            try:
                deadline = time.time() + timeout_s
                while True:
                    try:
                        with urllib.request.urlopen(f"{app.base}/_stcore/health", timeout=2) as r:
                            if r.status == 200:
                                break
                    except OSError:
                        if proc.poll() is not None or time.time() > deadline:
                            raise AssertionError(f"streamlit did not start:\n{app.log()[-3000:]}") from None
                        time.sleep(0.2)
                yield app
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def get(url: str, headers: dict | None = None, *, raw_path: str | None = None) -> tuple[int, dict, bytes]:
    """One GET, the path sent exactly as given (no client-side normalising of `..`)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", raw_path or (parts.path + (f"?{parts.query}" if parts.query else "")),
                     headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()
