"""`./run demo`: a complete local horde on this machine, three sample requests, then it serves.

1. starts `horde-api serve` on its embedded default stores (in-process Redis-compatible store +
   a SQLite file under demo-output/horde-data);
2. creates a user and API key with the admin CLI;
3. starts one `horde-worker` on the tiny built-in model (random weights: its images are noise —
   it proves the pipeline, not the art);
4. runs txt2img, img2img and inpainting through the HTTP API with `horde-api generate` and saves
   the WebP results with their seeds under demo-output/;
5. prints how to point the Krita docker at this horde and keeps serving until Ctrl-C, which stops
   both processes cleanly.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = "krita-horde-tiny"


def wait_for_heartbeat(url: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the horde API exited early (code {process.returncode})")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/status/heartbeat", timeout=2) as reply:
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


def run_generate(url: str, apikey: str, out: Path, extra: list[str]) -> None:
    command = [
        str(BIN / "horde-api"), "generate", "--url", url,
        "--model", MODEL, "--width", "256", "--height", "256", "--steps", "12",
        "--out", str(out), *extra,
    ]  # fmt: skip
    # Keys travel in the environment: a command line is visible to every local user in ps.
    subprocess.run(command, check=True, env={**os.environ, "HORDE_APIKEY": apikey})


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7420)
    parser.add_argument("--output", type=Path, default=ROOT / "demo-output")
    parser.add_argument(
        "--no-serve", action="store_true", help="stop after the three sample requests"
    )
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    output: Path = args.output
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    env = {**os.environ, "HORDE_DATA_DIR": str(output / "horde-data"), "HF_HUB_OFFLINE": "1"}
    env.pop("HORDE_REDIS_URL", None)
    env.pop("HORDE_DATABASE_URL", None)

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
            [str(BIN / "horde-api"), "serve", "--host", "127.0.0.1", "--port", str(args.port)],
            env=env, stdout=server_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        processes.append(server)
        wait_for_heartbeat(url, server)

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
        run_generate(url, apikey, output / "txt2img", ["--prompt", "a lighthouse at dusk"])
        print("==> img2img")
        run_generate(
            url, apikey, output / "img2img",
            ["--prompt", "a stormy sea", "--source-image", str(source), "--denoise", "0.6"],
        )  # fmt: skip
        print("==> inpainting")
        run_generate(
            url, apikey, output / "inpainting",
            ["--prompt", "a full moon", "--source-image", str(source), "--mask", str(mask),
             "--mode", "inpainting"],
        )  # fmt: skip
        print(f"\nResults (WebP, named by seed) are in {output}/{{txt2img,img2img,inpainting}}/")
        if args.no_serve:
            return
        print(
            "\nThe horde keeps serving. In Krita's krita-horde docker set\n"
            f"  Horde URL: {url}\n"
            f"  API key:   the one in {output}/apikey.txt\n"
            f"  Model:     {MODEL}\n"
            "Logs: demo-output/horde-api.log and demo-output/worker.log. Ctrl-C stops everything."
        )
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
