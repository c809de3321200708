"""Checks of a `POST /generate/async` body beyond what the protocol model enforces."""

from __future__ import annotations

from horde_api.errors import ImageValidationFailed, ValidationFailed
from horde_api.images import alpha_has_transparency, decode_and_check
from horde_api.queue.descriptors import MODEL_SEPARATOR
from horde_api.queue.enqueue import SourceImages
from horde_api.settings import HordeSettings
from horde_protocol import GenerationInput, SourceProcessing

MAX_MODEL_NAME = 200


def check_models(models: list[str]) -> None:
    for model in models:
        if not model or len(model) > MAX_MODEL_NAME or MODEL_SEPARATOR in model:
            raise ValidationFailed(
                f"models: invalid model name {model[:50]!r}; names are 1..{MAX_MODEL_NAME}"
                f" characters without {MODEL_SEPARATOR!r}"
            )


def check_sources(spec: GenerationInput, settings: HordeSettings) -> SourceImages:
    """Validate source image and mask; returns them as the worker will receive them."""
    if spec.source_image is None:
        if spec.source_mask is not None:
            raise ValidationFailed("source_mask was sent without a source_image")
        if spec.source_processing != SourceProcessing.IMG2IMG:
            raise ValidationFailed(
                f"source_processing {spec.source_processing.value} needs a source_image"
            )
        return SourceImages()
    image = decode_and_check(
        spec.source_image, "source_image", settings.max_source_bytes, settings.max_source_pixels
    )
    mask_text = spec.source_mask
    if mask_text is not None:
        mask = decode_and_check(
            mask_text, "source_mask", settings.max_source_bytes, settings.max_source_pixels
        )
        if (mask.width, mask.height) != (image.width, image.height):
            raise ImageValidationFailed(
                f"source_mask is {mask.width}x{mask.height} but source_image is"
                f" {image.width}x{image.height}; they must be the same size"
            )
    elif spec.source_processing != SourceProcessing.IMG2IMG and (
        not image.has_alpha or not alpha_has_transparency(image.raw)
    ):
        raise ImageValidationFailed(
            f"{spec.source_processing.value} needs a source_mask or a source_image with"
            " transparent pixels (transparent = area to repaint)"
        )
    return SourceImages(image=_strip_data_url(spec.source_image), mask=_strip_data_url(mask_text))


def _strip_data_url(text: str | None) -> str | None:
    if text is not None and text.startswith("data:") and "," in text:
        return text.split(",", 1)[1]
    return text


def kudos_cost(spec: GenerationInput) -> float:
    """A rough price like the public horde's: grows with pixels, steps and images."""
    pixels = spec.params.width * spec.params.height
    per_image = (pixels / (512 * 512)) * (spec.params.steps / 30) * 10
    if spec.source_image is not None:
        per_image *= 1.1
    return round(per_image * spec.params.n, 2)
