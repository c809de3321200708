"""A local HTTP file server for the download tests: serves bytes by path, answers `Range`
requests, records every request, and can drop a connection half-way through a file once."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    range: str | None


@dataclass
class FileServer:
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    drop_once: set[str] = field(default_factory=set)  # paths cut half-way on their first GET
    url: str = ""

    def gets(self, path: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.method == "GET" and r.path == path]


def _handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            path = unquote(self.path.split("?")[0])
            state.requests.append(SeenRequest(self.command, path, self.headers.get("Range")))
            data = state.files.get(path)
            if data is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            requested = self.headers.get("Range")
            if requested and requested.startswith("bytes="):
                start = int(requested.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if not body:
                return
            if self.command == "GET" and path in state.drop_once:
                state.drop_once.discard(path)
                half = start + (len(data) - start) // 2
                self.wfile.write(data[start:half])
                self.wfile.flush()
                self.close_connection = True  # the client sees the body end early
                return
            self.wfile.write(data[start:])

    return Handler


@contextlib.contextmanager
def serving(files: dict[str, bytes] | None = None) -> Iterator[FileServer]:
    state = FileServer(files=dict(files or {}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reference_for_folder(
    name: str, folder: Path, base_url: str, *, baseline: str = "stable_diffusion_1"
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A model reference entry (the public reference's shape) listing every file of `folder`
    under `name/`, and the files to serve for it by URL path."""
    files: dict[str, bytes] = {}
    listed = []
    downloads = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        data = path.read_bytes()
        url_path = f"/files/{name}/{relative.as_posix()}"
        files[url_path] = data
        file_path = (Path(name) / relative.parent).as_posix()
        listed.append({"path": f"{file_path}/{relative.name}", "sha256sum": sha256(data)})
        url = base_url + quote(url_path)
        downloads.append({"file_name": relative.name, "file_path": file_path, "file_url": url})
    entry = {
        "name": name,
        "baseline": baseline,
        "type": "ckpt",
        "inpainting": False,
        "description": "the tiny random-weight test pipeline",
        "version": "1",
        "style": "generalist",
        "nsfw": False,
        "download_all": False,
        "config": {"files": listed, "download": downloads},
        "available": False,
        "size_on_disk_bytes": sum(len(data) for data in files.values()),
    }
    return entry, files


def publish_reference(server: FileServer, entries: dict[str, dict[str, Any]]) -> str:
    """Serve `entries` as the reference JSON; its URL."""
    server.files["/stable_diffusion.json"] = json.dumps(entries, indent=1).encode()
    return server.url + "/stable_diffusion.json"
