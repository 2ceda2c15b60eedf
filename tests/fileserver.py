"""A local `http.server` on 127.0.0.1 serving bytes at paths, for download tests (mirrors, resume, failures).

    with serving({"/entry/model.pth.tar": data}, die_after=1000) as srv:   srv.base, srv.requests
        ...                                                              srv.die_after = None: whole files again

Range requests ("bytes=N-") get 206 with the rest of the file, as GitHub's raw server does. With
`die_after`, a response sends its full Content-Length but stops after that many body bytes and closes
the connection (a server dying mid-file).
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


@dataclass
class Served:
    files: dict[str, bytes]
    base: str = ""
    die_after: int | None = None
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


@contextmanager
def serving(files: dict[str, bytes], *, die_after: int | None = None):
    state = Served(files=dict(files), die_after=die_after)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            path = unquote(self.path)
            rng = self.headers.get("Range")
            state.requests.append((path, rng))
            data = state.files.get(path)
            if data is None:
                self.send_error(404, "File not found")
                return
            start = 0
            m = re.fullmatch(r"bytes=(\d+)-", rng or "")
            if m:
                start = int(m.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if state.die_after is not None:
                self.wfile.write(body[: state.die_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
