"""A local stand-in for the Hugging Face hub's HTTP API, just the calls `snapshot_download` makes
for a public model repo: repo info, the recursive file tree (with sizes), and each file's
`resolve` URL (HEAD for its metadata, GET for its bytes). `HF_ENDPOINT` points the worker here."""

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
from urllib.parse import unquote, urlparse

COMMIT = "1234567890abcdef1234567890abcdef12345678"


@dataclass
class HubServer:
    repo_id: str
    files: dict[str, bytes]
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""

    def file_gets(self) -> list[str]:
        prefix = f"/{self.repo_id}/resolve/{COMMIT}/"
        return [
            p.removeprefix(prefix) for m, p in self.requests if m == "GET" and p.startswith(prefix)
        ]


def _handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._route(body=False)

        def do_GET(self) -> None:
            self._route(body=True)

        def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def _route(self, body: bool) -> None:
            path = unquote(urlparse(self.path).path)
            hub.requests.append((self.command, path))
            api = f"/api/models/{hub.repo_id}"
            json_type = {"Content-Type": "application/json"}
            if path.startswith(f"{api}/revision/"):
                siblings = [{"rfilename": name} for name in sorted(hub.files)]
                info = {"id": hub.repo_id, "sha": COMMIT, "siblings": siblings, "private": False}
                self._send(200, json.dumps(info).encode(), json_type, body)
            elif path.startswith(f"{api}/tree/"):
                tree = [
                    {
                        "type": "file",
                        "oid": hashlib.sha1(data).hexdigest(),
                        "size": len(data),
                        "path": name,
                    }
                    for name, data in sorted(hub.files.items())
                ]
                self._send(200, json.dumps(tree).encode(), json_type, body)
            elif path.startswith(f"/{hub.repo_id}/resolve/"):
                name = path.split("/resolve/", 1)[1].split("/", 1)[1]
                data = hub.files.get(name)
                if data is None:
                    self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, body)
                    return
                headers = {
                    "X-Repo-Commit": COMMIT,
                    "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
                }
                self._send(200, data, headers, body)
            else:
                self._send(404, b"", {"X-Error-Code": "RepoNotFound"}, body)

    return Handler


@contextlib.contextmanager
def serving_hub(
    repo_id: str, folder: Path, extra: dict[str, bytes] | None = None
) -> Iterator[HubServer]:
    """A hub holding `folder`'s files as the repo `repo_id` (plus `extra` files)."""
    files = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    files.update(extra or {})
    hub = HubServer(repo_id=repo_id, files=files)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
