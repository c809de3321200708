"""`horde generate`: one request (txt2img, img2img or inpainting), its images saved."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from horde_client.errors import ExitCode, UsageError
from horde_client.images import prepare_mask, prepare_source, snap_side
from horde_client.payloads import RequestSpec
from horde_client.runner import Finished, Outcome, Work
from horde_client.session import Session
from horde_client.settings import ClientSettings
from horde_protocol.seeds import seed_to_int


def generate_spec(
    settings: ClientSettings,
    prompt: str,
    *,
    negative: str = "",
    image: Path | None = None,
    mask: Path | None = None,
    strength: float = 0.6,
    n: int = 1,
    seed: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> tuple[RequestSpec, Image.Image | None]:
    """The request, and the source image (for color correction) when there is one."""
    if mask is not None and image is None:
        raise UsageError("--mask needs --image (the picture to inpaint)")
    source = source_png = mask_png = None
    if image is not None:
        source, source_png = prepare_source(image)
        size = source.size
        if mask is not None:
            mask_png = prepare_mask(mask, size)
    else:
        size = (snap_side(width or settings.size), snap_side(height or settings.size))
    spec = RequestSpec(
        prompt=prompt,
        negative=negative,
        width=size[0],
        height=size[1],
        steps=settings.steps,
        cfg_scale=settings.cfg_scale,
        sampler=settings.sampler,
        model=settings.model,
        n=n,
        strength=strength if image is not None else None,
        source_png=source_png,
        mask_png=mask_png,
        **({"seed": seed_to_int(seed)} if seed else {}),
    )
    return spec, source


def run_generate(
    session: Session,
    spec: RequestSpec,
    folder: Path,
    *,
    parent: str | None,
    reference: Image.Image | None,
) -> int:
    """Run the request and save its images; the exit code (1 when nothing could be saved)."""
    results: list[Finished] = []
    session.board.overall(spec.mode.value, spec.n)

    def save(finished: Finished) -> list[Work]:
        results.append(finished)
        for generated in finished.images:
            session.save(
                folder,
                finished,
                generated,
                kind=spec.mode.value,
                parent=parent,
                reference=reference,
            )
        return []

    session.runner().run([Work(spec, spec.mode.value)], save)
    saved = sum(len(result.images) for result in results)
    for result in results:
        if result.outcome is not Outcome.DONE:
            session.board.say(f"request {result.request_id} {result.outcome.value}")
    return ExitCode.OK if saved else ExitCode.FAILED
