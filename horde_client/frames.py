"""`horde dream` and `horde animate`: videos whose frames are rendered across the horde.

dream: frame k starts from the spherical interpolation between the noises of two successive
seeds (a latent walk of one prompt); animate: one seed, the text conditioning interpolated from
prompt A to prompt B. Both use our `interpolation` extension (docs/protocol.md).

A run lives in a folder `<dream_dir>/<plan-hash>/`: `plan.json` (including the seeds drawn at
the first run), `frames/` and the video. Running the same command again resumes: frames whose
files exist are not rendered again.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field

from horde_client.errors import UsageError
from horde_client.payloads import RequestSpec
from horde_client.runner import Finished, Work
from horde_client.session import Session
from horde_client.video import write_video
from horde_protocol import Extension, Interpolation
from horde_protocol.seeds import random_seed

PLAN_FILE = "plan.json"
FRAMES_FOLDER = "frames"
_FRAME_FILE = re.compile(r"^frame(\d{5})_.*\.(png|webp)$")
WORKER_HINT = (
    "dream/animate frames need a worker announcing allow_interpolation (krita-horde's worker"
    " does; workers written for the public horde do not)."
)


class FrameKind(str, Enum):
    DREAM = "dream"
    ANIMATE = "animate"


class FramePlan(BaseModel):
    kind: FrameKind
    prompt: str = Field(min_length=1)
    negative: str = ""
    to_prompt: str | None = None
    frames: int = Field(ge=2, le=10_000)
    walk: int = Field(ge=1, description="frames from one seed to the next (dream)")
    width: int
    height: int
    steps: int
    cfg_scale: float
    sampler: str
    model: str | None = None
    seeds: list[int] = Field(default_factory=list)

    def identity(self) -> str:
        """What makes two runs the same video (not the seeds: those are drawn once)."""
        return json.dumps(self.model_dump(mode="json", exclude={"seeds"}), sort_keys=True)

    def with_seeds(self, first: int | None) -> FramePlan:
        count = self.frames // self.walk + 2 if self.kind is FrameKind.DREAM else 1
        seeds = [random_seed() if first is None else first + i for i in range(count)]
        return self.model_copy(update={"seeds": seeds})

    def frame_spec(self, k: int) -> RequestSpec:
        if self.kind is FrameKind.DREAM:
            segment, offset = divmod(k, self.walk)
            seed = self.seeds[segment]
            interpolation = Interpolation(
                to_seed=str(self.seeds[segment + 1]), seed_t=offset / self.walk
            )
        else:
            seed = self.seeds[0]
            interpolation = Interpolation(to_prompt=self.to_prompt, prompt_t=k / (self.frames - 1))
        return RequestSpec(
            prompt=self.prompt,
            negative=self.negative,
            width=self.width,
            height=self.height,
            steps=self.steps,
            cfg_scale=self.cfg_scale,
            sampler=self.sampler,
            model=self.model,
            seed=seed,
            interpolation=interpolation,
        )


def plan_folder(root: Path, plan: FramePlan) -> Path:
    digest = hashlib.sha256(plan.identity().encode()).hexdigest()[:12]
    return root / f"{plan.kind.value}-{digest}"


def load_or_create(folder: Path, plan: FramePlan, first_seed: int | None) -> FramePlan:
    """The plan of `folder`: the saved one when resuming (its seeds), else a new one."""
    plan_file = folder / PLAN_FILE
    if plan_file.exists():
        saved = FramePlan.model_validate_json(plan_file.read_text())
        if saved.identity() != plan.identity():
            raise UsageError(
                f"{folder} holds another {saved.kind.value} ({plan_file}); give another --out"
                " or remove it"
            )
        if first_seed is not None and saved.seeds[0] != first_seed:
            raise UsageError(
                f"{folder} was started with seed {saved.seeds[0]}, not {first_seed}; give"
                " another --out or remove it"
            )
        return saved
    folder.mkdir(parents=True, exist_ok=True)
    created = plan.with_seeds(first_seed)
    plan_file.write_text(created.model_dump_json(indent=2) + "\n")
    return created


def finished_frames(folder: Path) -> dict[int, Path]:
    frames: dict[int, Path] = {}
    for path in sorted((folder / FRAMES_FOLDER).glob("frame*")):
        match = _FRAME_FILE.match(path.name)
        if match:
            frames.setdefault(int(match.group(1)), path)
    return frames


def render(
    session: Session,
    plan: FramePlan,
    *,
    out: Path | None,
    first_seed: int | None,
    video_format: str,
) -> Path | None:
    """Render the missing frames, then the video. Returns the video (None if frames failed)."""
    session.require_extension(Extension.INTERPOLATION, plan.kind.value)
    folder = out or plan_folder(session.settings.dream_dir, plan)
    plan = load_or_create(folder, plan, first_seed)
    done = finished_frames(folder)
    missing = [k for k in range(plan.frames) if k not in done]
    session.board.say(
        f"{plan.kind.value}: {plan.frames} frames in {folder}/"
        + (f" ({len(done)} already there, resuming)" if done else "")
    )
    session.board.overall("frames", plan.frames)
    session.board.advance(len(done))

    def save(finished: Finished) -> list[Work]:
        k: int = finished.work.tag
        for image in finished.images[:1]:
            path, _ = session.save(
                folder / FRAMES_FOLDER, finished, image, kind=plan.kind.value, frame=k
            )
            done[k] = path
        return []

    works = (Work(plan.frame_spec(k), f"frame {k + 1}/{plan.frames}", k) for k in missing)
    session.runner(require_worker=True, worker_hint=WORKER_HINT).run(works, save)
    if len(done) < plan.frames:
        lost = sorted(set(range(plan.frames)) - set(done))
        session.board.say(
            f"{len(lost)} frames could not be rendered ({lost[:10]}…); run the same command"
            " again to retry them"
        )
        return None
    video = folder / f"{plan.kind.value}.{video_format}"
    write_video([done[k] for k in range(plan.frames)], video, session.settings.fps)
    return video
