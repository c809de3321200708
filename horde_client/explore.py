"""`horde explore` and `horde continue`: keep the horde busy with new seeds of one prompt.

A prompt folder `explore/<prompt-hash>/` holds `prompt.txt`, the exploration's settings
(`explore.json`, so `continue` resumes it as it was) and every image, named by its settings.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from horde_client.errors import UsageError
from horde_client.files import PROMPT_FILE, prompt_folder
from horde_client.images import snap_side
from horde_client.payloads import RequestSpec
from horde_client.runner import Finished, Work
from horde_client.session import Session

SETTINGS_FILE = "explore.json"
# Sides of the three aspects, as multiples of the configured short side.
ASPECTS: dict[str, tuple[float, float]] = {
    "square": (1.0, 1.0),
    "landscape": (1.5, 1.0),
    "portrait": (1.0, 1.5),
}


def aspect_size(aspect: str, short_side: int) -> tuple[int, int]:
    wide, tall = ASPECTS[aspect]
    return snap_side(short_side * wide), snap_side(short_side * tall)


class Exploration(BaseModel):
    """What an exploration repeats; saved beside the images."""

    prompt: str = Field(min_length=1)
    negative: str = ""
    aspects: list[str] = Field(min_length=1)
    scales: list[float] = Field(min_length=1)
    size: int
    steps: int
    sampler: str
    model: str | None = None
    batch: int = Field(ge=1, le=20)

    def batches(self, count: int | None, seconds: float | None, start: int = 0) -> Iterator[Work]:
        """Batches of new seeds, cycling through every (aspect, scale) of the sweep from its
        `start`th, until `count` images are planned or `seconds` have passed (both None: until
        stopped)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        planned = 0
        cycle = itertools.cycle(itertools.product(self.aspects, self.scales))
        for number, (aspect, scale) in enumerate(
            itertools.islice(cycle, start, None), start=start + 1
        ):
            if count is not None and planned >= count:
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            n = self.batch if count is None else min(self.batch, count - planned)
            width, height = aspect_size(aspect, self.size)
            spec = RequestSpec(
                prompt=self.prompt,
                negative=self.negative,
                width=width,
                height=height,
                steps=self.steps,
                cfg_scale=scale,
                sampler=self.sampler,
                model=self.model,
                n=n,
            )
            yield Work(spec, f"batch {number} ({aspect}, scale {scale:g})")
            planned += n


def save_exploration(folder: Path, exploration: Exploration) -> None:
    (folder / SETTINGS_FILE).write_text(exploration.model_dump_json(indent=2) + "\n")


def load_exploration(prompt_file: Path) -> Exploration:
    """The exploration of a prompt folder, from its prompt.txt (which the user may have edited)
    and explore.json."""
    if prompt_file.name != PROMPT_FILE or not prompt_file.is_file():
        raise UsageError(
            f"{prompt_file}: expected the {PROMPT_FILE} of a prompt folder (explore/<hash>/)"
        )
    settings_file = prompt_file.parent / SETTINGS_FILE
    try:
        exploration = Exploration.model_validate_json(settings_file.read_text())
    except FileNotFoundError:
        raise UsageError(
            f"{settings_file}: missing; was this folder made by horde explore?"
        ) from None
    except ValidationError as error:
        raise UsageError(f"{settings_file}: damaged ({error.error_count()} problems)") from None
    prompt = prompt_file.read_text(encoding="utf-8").strip()
    if not prompt:
        raise UsageError(f"{prompt_file} is empty: write the prompt in it")
    return exploration.model_copy(update={"prompt": prompt})


def explore(
    session: Session,
    exploration: Exploration,
    *,
    count: int | None,
    seconds: float | None,
    folder: Path | None = None,
    ask_first: bool = True,
) -> Path:
    """Run an exploration into its prompt folder; returns the folder."""
    folder = folder or prompt_folder(session.settings.explore_dir, exploration.prompt)
    save_exploration(folder, exploration)
    session.board.say(f"exploring into {folder}/")

    def save(finished: Finished) -> list[Work]:
        for image in finished.images:
            session.save(folder, finished, image, kind="txt2img")
        return []

    start = 0
    if ask_first:
        scratch = next(exploration.batches(exploration.batch, None))
        start = 1  # the sweep goes on after the scratch batch's (aspect, scale)
        session.board.overall("scratch batch", scratch.spec.n)
        session.runner().run([scratch], save)
        with session.board.paused():
            if not _confirm(f"keep exploring this prompt? (images in {folder}/)"):
                session.board.say("stopped after the scratch batch; its images are kept")
                return folder
        if count is not None:
            count = max(0, count - scratch.spec.n)
    session.board.overall("images", count)
    session.runner().run(exploration.batches(count, seconds, start), save)
    return folder


def _confirm(question: str) -> bool:
    import typer

    try:
        # The question goes to stderr: stdout lists only saved files.
        return bool(typer.confirm(question, default=True, err=True))
    except typer.Abort:  # no terminal to answer on
        return False
