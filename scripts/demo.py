"""`./run demo`: a complete local horde on this machine, three sample requests, then it serves.

1. starts `horde-api serve` on its embedded default stores (in-process Redis-compatible store +
   a SQLite file under demo-output/horde-data);
2. creates a user and API key with the admin CLI;
3. starts one `horde-worker` on the tiny built-in model (random weights: its images are noise —
   it proves the pipeline, not the art);
4. runs txt2img, img2img and inpainting through the HTTP API with the client CLI `horde generate`
   and saves the results (PNG, named by their settings and seed, the settings embedded) under
   demo-output/;
5. prints how to point the Krita docker at this horde and keeps serving until Ctrl-C, which stops
   both processes cleanly.

With `--tls` the horde speaks HTTPS with a certificate for 127.0.0.1 signed by a certificate
authority made for this demo (demo-output/tls/ca.pem): its `r2` results are then https links, as
clients of the public horde expect. The worker and the sample requests trust that CA through
REQUESTS_CA_BUNDLE (the worker) and SSL_CERT_FILE (the `horde` CLI); other clients must be told
to trust it too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = "krita-horde-tiny"


def wait_for_heartbeat(
    url: str, process: subprocess.Popen, ca_file: Path | None, timeout_s: float = 60
) -> None:
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the horde API exited early (code {process.returncode})")
        try:
            heartbeat = f"{url}/api/v2/status/heartbeat"
            with urllib.request.urlopen(heartbeat, timeout=2, context=context) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the horde API did not answer at {url} within {timeout_s:.0f} s")


def sample_images(folder: Path) -> tuple[Path, Path]:
    """A small painting for img2img and a white-on-black ellipse mask for inpainting."""
    picture = Image.new("RGB", (256, 256), (70, 120, 200))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((150, 30, 230, 110), fill=(250, 210, 40))
    draw.rectangle((0, 180, 256, 256), fill=(40, 90, 30))
    mask = Image.new("L", (256, 256), 0)
    ImageDraw.Draw(mask).ellipse((64, 64, 192, 192), fill=255)
    picture_path, mask_path = folder / "source.png", folder / "mask.png"
    picture.save(picture_path)
    mask.save(mask_path)
    return picture_path, mask_path


def run_generate(
    url: str, apikey: str, out: Path, prompt: str, extra: list[str], env: dict[str, str]
) -> None:
    command = [
        str(BIN / "horde"), "--url", url, "--model", MODEL,
        "generate", prompt, "--width", "256", "--height", "256", "--steps", "12",
        "--out", str(out), *extra,
    ]  # fmt: skip
    # Keys travel in the environment: a command line is visible to every local user in ps.
    subprocess.run(command, check=True, env={**env, "HORDE_APIKEY": apikey})


def make_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """(CA, certificate, key) files: a demo CA and a certificate it signed for 127.0.0.1."""
    import trustme  # installed with the dev extra, which ./run demo installs

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    server.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    server.private_key_pem.write_to_path(str(key_file))
    os.chmod(key_file, 0o600)
    return ca_file, cert_file, key_file


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7420)
    parser.add_argument("--output", type=Path, default=ROOT / "demo-output")
    parser.add_argument(
        "--no-serve", action="store_true", help="stop after the three sample requests"
    )
    parser.add_argument(
        "--tls", action="store_true", help="serve HTTPS with a certificate of a demo CA"
    )
    args = parser.parse_args()
    output: Path = args.output
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    env = {**os.environ, "HORDE_DATA_DIR": str(output / "horde-data"), "HF_HUB_OFFLINE": "1"}
    env.pop("HORDE_REDIS_URL", None)
    env.pop("HORDE_DATABASE_URL", None)
    ca_file = None
    serve_tls: list[str] = []
    if args.tls:
        ca_file, cert_file, key_file = make_certificate(output / "tls")
        serve_tls = ["--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file)]
        env["REQUESTS_CA_BUNDLE"] = str(ca_file)  # the worker (requests)
        env["SSL_CERT_FILE"] = str(ca_file)  # the client CLI (httpx)
    url = f"{'https' if args.tls else 'http'}://127.0.0.1:{args.port}"

    processes: list[subprocess.Popen] = []

    def stop_all(*_: object) -> None:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    try:
        print(f"==> starting the horde API on {url} (embedded stores in {output}/horde-data)")
        server_log = (output / "horde-api.log").open("wb")
        server = subprocess.Popen(
            [str(BIN / "horde-api"), "serve", "--host", "127.0.0.1", "--port", str(args.port),
             *serve_tls],
            env=env, stdout=server_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        processes.append(server)
        wait_for_heartbeat(url, server, ca_file)

        created = subprocess.run(
            [str(BIN / "horde-api"), "user", "create", "demo-artist", "--trusted", "--json"],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        apikey = json.loads(created.stdout)["apikey"]
        (output / "apikey.txt").write_text(apikey + "\n")
        os.chmod(output / "apikey.txt", 0o600)

        print(f"==> starting a worker on the tiny built-in model ({MODEL})")
        worker_log = (output / "worker.log").open("wb")
        worker = subprocess.Popen(
            [
                str(BIN / "horde-worker"), "run", "--horde-url", url,
                "--name", "demo-worker", "--model", f"{MODEL}=tiny",
            ],
            env={**env, "HORDE_WORKER_API_KEY": apikey},
            stdout=worker_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        processes.append(worker)

        source, mask = sample_images(output)
        print("==> txt2img")
        run_generate(url, apikey, output / "txt2img", "a lighthouse at dusk", [], env)
        print("==> img2img")
        run_generate(
            url, apikey, output / "img2img", "a stormy sea",
            ["--image", str(source), "--strength", "0.6"], env,
        )  # fmt: skip
        print("==> inpainting")
        run_generate(
            url, apikey, output / "inpainting", "a full moon",
            ["--image", str(source), "--mask", str(mask), "--strength", "1.0"], env,
        )  # fmt: skip
        print(
            f"\nResults (PNG, named by settings and seed; `horde info FILE` shows them) are in"
            f" {output}/{{txt2img,img2img,inpainting}}/"
        )
        if args.no_serve:
            return
        print(
            f"\nThe web studio is at {url}/ (sign in with the key below, or anonymously).\n"
            "The horde keeps serving. In Krita's krita-horde docker set\n"
            f"  Horde URL: {url}\n"
            f"  API key:   the one in {output}/apikey.txt\n"
            f"  Model:     {MODEL}\n"
            "Logs: demo-output/horde-api.log and demo-output/worker.log. Ctrl-C stops everything."
        )
        if ca_file:
            print(f"HTTPS with a demo certificate authority: clients must trust {ca_file}")
        signal.signal(signal.SIGTERM, _interrupt)
        while all(process.poll() is None for process in processes):
            time.sleep(1)
        print("a horde process exited; stopping", file=sys.stderr)
    except KeyboardInterrupt:
        print("\n==> stopping")
    finally:
        stop_all()


if __name__ == "__main__":
    main()
