"""`horde vary IMAGE TRANSFORM ["extra words"]`: named img2img transforms of an image."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from horde_client.errors import UsageError
from horde_client.files import prompt_folder
from horde_client.images import png_bytes, prepare_source
from horde_client.metadata import read_record
from horde_client.payloads import RequestSpec
from horde_client.runner import Finished, Work
from horde_client.session import Session
from horde_client.settings import ClientSettings
from horde_client.transforms import Transform, TransformKind
from horde_protocol.seeds import random_seed


@dataclass(frozen=True)
class ChainStep:
    chain: int
    step: int  # index into the transform's pairs
    parent: str  # the file this step starts from


@dataclass
class VaryPlan:
    transform: Transform
    base: RequestSpec  # prompt, size, source; scale/strength set per pair
    parent: str
    folder: Path

    def spec(self, pair: int, source_png: bytes | None = None) -> RequestSpec:
        scale, strength = self.transform.pairs[pair]
        return replace(
            self.base,
            cfg_scale=scale,
            strength=strength,
            seed=random_seed(),
            source_png=source_png or self.base.source_png,
        )

    def label(self, pair: int, chain: int | None = None) -> str:
        scale, strength = self.transform.pairs[pair]
        where = f"chain {chain + 1} step {pair + 1}" if chain is not None else "pair"
        return f"{self.transform.name} {where}: scale {scale:g} strength {strength:g}"


def plan_vary(
    settings: ClientSettings,
    image_path: Path,
    transform: Transform,
    extra_words: str | None,
    prompt: str | None,
    n: int,
) -> tuple[VaryPlan, Image.Image]:
    """What to send, from the image, its embedded record and the command line."""
    record = read_record(image_path)
    base_prompt = prompt or (record.prompt if record else None)
    if not base_prompt:
        raise UsageError(
            f"{image_path} carries no krita-horde metadata: give its prompt with --prompt"
        )
    if extra_words and extra_words.strip():
        base_prompt = f"{base_prompt.strip()}, {extra_words.strip()}"
    source, source_png = prepare_source(image_path)
    base = RequestSpec(
        prompt=base_prompt,
        negative=record.negative if record else "",
        width=source.width,
        height=source.height,
        steps=record.steps if record else settings.steps,
        cfg_scale=settings.cfg_scale,
        sampler=record.sampler if record else settings.sampler,
        model=settings.model or (record.model if record else None),
        n=n,
        source_png=source_png,
    )
    # Extra words make a new prompt, hence a new prompt folder; otherwise the image's own.
    folder = prompt_folder(settings.explore_dir, base_prompt)
    return VaryPlan(transform, base, image_path.name, folder), source


def vary(
    session: Session,
    plan: VaryPlan,
    source: Image.Image,
    *,
    chains: int,
    color_correct: bool,
) -> Path:
    transform = plan.transform
    reference = source if color_correct else None
    session.board.say(f"{transform.name} ({transform.kind.value}) into {plan.folder}/")

    if transform.kind is TransformKind.SINGLE:
        works = [
            Work(plan.spec(pair), plan.label(pair), None) for pair in range(len(transform.pairs))
        ]
        session.board.overall(transform.name, len(works) * plan.base.n)
    else:
        chain_spec = replace(plan.base, n=1)
        plan = replace(plan, base=chain_spec)
        works = [
            Work(plan.spec(0), plan.label(0, c), ChainStep(c, 0, plan.parent))
            for c in range(chains)
        ]
        session.board.overall(transform.name, chains * len(transform.pairs))

    def save(finished: Finished) -> list[Work]:
        step: ChainStep | None = finished.work.tag
        follow_ups = []
        for image in finished.images:
            if step is None:
                name, parent = transform.name, plan.parent
            else:
                name = f"{transform.name} step {step.step + 1}/{len(transform.pairs)}"
                parent = step.parent
            path, pixels = session.save(
                plan.folder,
                finished,
                image,
                kind="img2img",
                parent=parent,
                transform=name,
                reference=reference,
            )
            if step is not None and step.step + 1 < len(transform.pairs):
                # The next step starts from exactly the pixels just saved.
                follow_ups.append(
                    Work(
                        plan.spec(step.step + 1, png_bytes(pixels)),
                        plan.label(step.step + 1, step.chain),
                        ChainStep(step.chain, step.step + 1, path.name),
                    )
                )
        return follow_ups

    session.runner().run(works, save)
    return plan.folder
