"""What every command shares: settings, the horde connection, the progress board, saving."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from horde_client.api import HordeApi
from horde_client.color import correct_colors
from horde_client.errors import ClientError, NoCapableWorker
from horde_client.files import save_image
from horde_client.images import decode_generation
from horde_client.metadata import ImageRecord, now
from horde_client.progress import Board, print_path
from horde_client.runner import Finished, GeneratedImage, Runner, RunOptions
from horde_client.settings import ClientSettings
from horde_protocol import Extension


@dataclass
class Session:
    settings: ClientSettings
    api: HordeApi
    board: Board
    stop: threading.Event

    def runner(self, *, require_worker: bool = False, worker_hint: str = "") -> Runner:
        options = RunOptions(
            parallel=self.settings.parallel,
            check_wait=self.settings.check_wait,
            check_interval=self.settings.check_interval,
            timeout=self.settings.timeout,
            require_worker=require_worker,
            worker_hint=worker_hint,
        )
        return Runner(self.api, options, self.board, self.stop)

    def require_extension(self, extension: Extension, command: str) -> None:
        """Fail clearly when the horde does not serve one of our extensions."""
        served = self.api.heartbeat().extensions or []
        if extension.value not in served:
            raise NoCapableWorker(
                f"`horde {command}` needs the {extension.value!r} extension of a krita-horde"
                f" horde; {self.api.url} does not serve it (its heartbeat lists"
                f" {', '.join(served) or 'no extensions'}). The public AI Horde has no such"
                " extension: run dream/animate against a krita-horde horde with a worker of"
                " ours."
            )

    def save(
        self,
        folder: Path,
        finished: Finished,
        image: GeneratedImage,
        *,
        kind: str,
        parent: str | None = None,
        transform: str | None = None,
        frame: int | None = None,
        reference: PILImage.Image | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[Path, PILImage.Image]:
        """Save one generated image with its record; color-corrected toward `reference` when
        given. Returns the path and the saved pixels."""
        spec = finished.work.spec
        pixels = decode_generation(image.data)
        if reference is not None:
            pixels = correct_colors(pixels, reference)
        record = ImageRecord(
            created=now(),
            prompt=spec.prompt,
            negative=spec.negative,
            model=image.model or spec.model,
            seed=image.seed,
            steps=spec.steps,
            scale=spec.cfg_scale,
            strength=spec.strength if spec.source_png is not None else None,
            sampler=spec.sampler,
            width=pixels.width,
            height=pixels.height,
            kind=kind,
            parent=parent,
            transform=transform,
            color_corrected=reference is not None,
            horde=self.api.url,
            request_id=finished.request_id,
            generation_id=image.generation_id,
            worker=image.worker,
            frame=frame,
            interpolation=(
                spec.interpolation.model_dump(exclude_unset=True) if spec.interpolation else None
            ),
            **(extra or {}),
        )
        if image.censored:
            self.board.warn_once(
                f"censored:{image.generation_id}",
                f"the worker censored generation {image.generation_id} (saved as it came)",
            )
        path = save_image(folder, pixels, record, self.settings.image_format)
        print_path(path)
        self.board.advance()
        return path, pixels


def _say_kudos(board: Board, api: HordeApi, *, anonymous: bool) -> None:
    """What the run cost, and the balance left (kudos: docs/protocol.md)."""
    if not board.kudos_spent:
        return
    line = f"kudos: {board.kudos_spent:.2f} spent"
    if not anonymous:
        # The images are saved; a balance we cannot read is no reason to fail the run.
        with contextlib.suppress(ClientError):
            line += f"; your balance is {api.find_user().kudos:.2f}"
    board.say(line)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def open_session(settings: ClientSettings, board: Board | None = None) -> Iterator[Session]:
    """A session; SIGTERM stops it like Ctrl-C (cancel in flight, keep what finished). `board`:
    another progress display (`horde gimp-job` reports progress as JSON lines)."""
    stop = threading.Event()
    board = board or Board()
    api = HordeApi(
        settings.url,
        settings.apikey.get_secret_value(),
        pause=stop.wait,
        on_retry=lambda message: board.say(f"[yellow]{message}[/yellow]"),
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with board:
            if settings.anonymous:
                board.say(
                    "note: no API key (HORDE_APIKEY or the config file): anonymous, lowest priority"
                )
            try:
                yield Session(settings, api, board, stop)
            finally:
                _say_kudos(board, api, anonymous=settings.anonymous)
    finally:
        signal.signal(signal.SIGTERM, previous)
        api.close()
