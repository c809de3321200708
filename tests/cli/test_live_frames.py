"""`horde dream` / `horde animate` against the real horde and the tiny worker: smooth walks,
videos with every frame, resume after an interruption, and a clear stop without a capable
worker."""

from __future__ import annotations

import json
import signal
import time
from itertools import pairwise
from pathlib import Path

import av
import httpx
import pytest
from PIL import Image, ImageChops, ImageStat

from tests.cli.conftest import CONFIG, Cli, make_cli
from tests.cli.recording_proxy import RecordingProxy, recording_proxy
from tests.helpers.live_horde import start_horde

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def difference(a: Path, b: Path) -> float:
    with Image.open(a) as one, Image.open(b) as two:
        return sum(
            ImageStat.Stat(ImageChops.difference(one.convert("RGB"), two.convert("RGB"))).mean
        )


def frame_files(folder: Path) -> list[Path]:
    return sorted((folder / "frames").glob("frame*.png"))


def decoded_frames(video: Path) -> int:
    if video.suffix == ".webp":
        with Image.open(video) as animation:
            return int(animation.n_frames)
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_dream_walks_smoothly_and_the_video_has_every_frame(
    cli: Cli, proxy: RecordingProxy
) -> None:
    saved = cli.ok("dream", "a forest", "--frames", "4", "--walk", "3", "--seed", "100")
    video = saved[-1]
    frames = frame_files(video.parent)
    assert video.name == "dream.mp4" and len(frames) == 4 and decoded_frames(video) == 4
    sent = [e.body["params"] for e in proxy.submitted()]
    walk = sorted(
        (p["seed"], p["interpolation"]["to_seed"], p["interpolation"].get("seed_t", 0))
        for p in sent
    )
    assert walk == [
        ("100", "101", 0),
        ("100", "101", 1 / 3),
        ("100", "101", 2 / 3),
        ("101", "102", 0),
    ]
    # Frames 0 and 3 are two unrelated seeds' images; the walk between them moves in smaller
    # steps than that.
    unrelated = difference(frames[0], frames[3])
    steps = [difference(a, b) for a, b in pairwise(frames)]
    assert max(steps) < unrelated and min(steps) > 0


def test_animate_morphs_between_prompts_on_one_seed(cli: Cli, proxy: RecordingProxy) -> None:
    saved = cli.ok(
        "animate", "a forest", "a desert", "--frames", "3", "--seed", "7", "--video", "webp"
    )
    video = saved[-1]
    frames = frame_files(video.parent)
    assert video.suffix == ".webp" and decoded_frames(video) == 3 and len(frames) == 3
    prompts_t = sorted(
        e.body["params"]["interpolation"].get("prompt_t", 0) for e in proxy.submitted()
    )
    assert prompts_t == [0, 0.5, 1.0]
    # The first frame is exactly the first prompt's plain image; another seed is far away.
    (plain,) = cli.ok("generate", "a forest", "--seed", "7", "--sampler", "k_euler")
    (other_seed,) = cli.ok("generate", "a forest", "--seed", "8", "--sampler", "k_euler")
    assert difference(frames[0], plain) == 0
    unrelated = difference(frames[0], other_seed)
    steps = [difference(a, b) for a, b in pairwise(frames)]
    assert max(steps) < unrelated and difference(frames[0], frames[2]) > 0


def test_an_interrupted_dream_resumes_without_redoing_frames(
    tmp_path: Path, live, proxy: RecordingProxy
) -> None:
    # More steps: a frame takes long enough to be surely in flight when Ctrl-C comes.
    cli = make_cli(tmp_path, proxy.url, live.artist_key, CONFIG.replace("steps = 4", "steps = 40"))
    command = ("--parallel", "1", "dream", "a river", "--frames", "4", "--walk", "2", "--seed", "5")
    process = cli.popen(*command)
    deadline = time.monotonic() + 240
    while len(proxy.submitted()) < 2:  # frame 0 saved, frame 1 in flight
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "finished files are kept" in stderr
    folder = next((cli.cwd / "dream").iterdir())
    kept = frame_files(folder)
    assert 1 <= len(kept) < 4 and not (folder / "dream.mp4").exists()
    # Nothing is left queued: every request sent either gave its frame or was cancelled.
    kept_generations = {
        json.loads(cli.run("info", "--json", str(path)).stdout)["generation_id"] for path in kept
    }
    cancelled = {e.path.rsplit("/", 1)[1] for e in proxy.sent("DELETE", "/generate/status/")}
    for exchange in proxy.submitted():
        request_id = exchange.reply["id"]
        made = {g["id"] for g in proxy.status_of(request_id)["generations"]}
        assert made & kept_generations or request_id in cancelled, request_id

    first_run = len(proxy.submitted())
    kept_names = [path.name for path in kept]
    saved = cli.ok(*command)
    assert len(proxy.submitted()) - first_run == 4 - len(kept)  # only the missing frames
    assert "already there, resuming" in cli.run(*command).stderr  # and a third run renders none
    assert len(proxy.submitted()) - first_run == 4 - len(kept)
    frames = frame_files(folder)
    assert len(frames) == 4 and set(kept_names) <= {f.name for f in frames}
    assert decoded_frames(saved[-1]) == 4


def test_without_a_capable_worker_dream_says_so_and_leaves_nothing_queued(
    tmp_path: Path,
) -> None:
    with start_horde(tmp_path / "horde") as horde, recording_proxy(horde.url) as proxy:
        artist = horde.create_user("artist")
        volunteer = horde.create_user("volunteer")
        # A live worker written for the public horde: it does not announce allow_interpolation.
        pop = httpx.post(
            f"{horde.api}/generate/pop",
            json={"name": "public-kind", "models": ["krita-horde-tiny"]},
            headers={"apikey": volunteer},
        )
        assert pop.status_code == 200
        cli = make_cli(tmp_path, proxy.url, artist)
        result = cli.run("dream", "a forest", "--frames", "3")
        assert result.returncode == 1
        assert "NoAvailableWorker" in result.stderr and "allow_interpolation" in result.stderr
        sent = proxy.submitted()
        assert sent  # frames were sent (in parallel), and every one was cancelled, not left
        assert all(proxy.sent("DELETE", exchange.reply["id"]) for exchange in sent)
        assert not list((tmp_path / "dream").glob("*/frames/*.png"))
