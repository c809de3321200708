"""Checks of a `POST /generate/async` body beyond what the protocol model enforces."""

from __future__ import annotations

from horde_api.errors import BadRequest, ImageValidationFailed, ValidationFailed
from horde_api.images import alpha_has_transparency, decode_and_check
from horde_api.queue.descriptors import MODEL_SEPARATOR
from horde_api.queue.enqueue import SourceImages
from horde_api.settings import HordeSettings
from horde_protocol import (
    MAX_LORAS,
    MAX_RESULT_PIXELS,
    MAX_TEXTUAL_INVERSIONS,
    UPSCALER_FACTORS,
    UPSCALERS,
    ErrorCode,
    GenerationInput,
    RequestWarning,
    SourceProcessing,
)

MAX_MODEL_NAME = 200
# The public horde keeps the first five workers a request names.
MAX_TARGETED_WORKERS = 5


def check_features(spec: GenerationInput, trusted: bool) -> list[RequestWarning]:
    """Refuse, by name, what no worker of this horde could honour; warn about what is ignored.

    A request is never run as something else: a field either reaches a worker that serves it
    (the queue routes it), is refused here with the public horde's `rc` where it has one, or is
    accepted with a warning that says it is ignored (docs/protocol.md, "Compatibility").
    """
    params = spec.params
    refusals: list[tuple[bool, ErrorCode, str]] = [
        (
            params.special is not None,
            ErrorCode.SPECIAL_FIELD_NEEDS_SPECIAL_USER,
            "params.special is only for the public horde's special users; this horde has none",
        ),
        (
            params.workflow is not None,
            ErrorCode.UNSUPPORTED_WORKFLOW,
            f"params.workflow {params.workflow!r}: this horde cannot tell which workers run"
            " workflows (the public horde does it through its bridge reference); leave it out",
        ),
        (
            bool(params.extra_texts),
            ErrorCode.INVALID_EXTRA_TEXTS,
            "params.extra_texts belong to workflows, which this horde does not route",
        ),
        (
            params.transparent,
            ErrorCode.UNSUPPORTED_TRANSPARENCY,
            "params.transparent: this horde cannot tell which workers render transparency;"
            " leave it out or false",
        ),
        (
            bool(spec.extra_source_images),
            ErrorCode.INVALID_EXTRA_SOURCE_IMAGES,
            "extra_source_images serve remix requests, which this horde does not route",
        ),
        (
            spec.source_processing == SourceProcessing.REMIX,
            ErrorCode.INVALID_REMIX,
            "source_processing remix is for Stable Cascade workers, which this horde does not"
            " route; use img2img, inpainting or outpainting",
        ),
        (
            spec.proxied_account is not None,
            ErrorCode.ONLY_SERVICE_ACCOUNT_PROXY,
            "proxied_account is only for service accounts; this horde has none",
        ),
        (
            spec.style is not None,
            ErrorCode.UNSUPPORTED_STYLE,
            "style: this horde has no styles; put the style's prompt and settings in the request",
        ),
        (
            len(params.loras) > MAX_LORAS,
            ErrorCode.TOO_MANY_LORAS,
            f"params.loras: at most {MAX_LORAS} LoRAs, got {len(params.loras)}",
        ),
        (
            any(lora.is_version and not lora.name.isdigit() for lora in params.loras),
            ErrorCode.BAD_LORA_VERSION,
            "params.loras: a LoRA with is_version true must be named by its version number",
        ),
        (
            len(params.tis) > MAX_TEXTUAL_INVERSIONS,
            ErrorCode.TOO_MANY_TIS,
            f"params.tis: at most {MAX_TEXTUAL_INVERSIONS} textual inversions,"
            f" got {len(params.tis)}",
        ),
        (
            sum(name in UPSCALERS for name in params.post_processing) > 1,
            ErrorCode.TOO_MANY_UPSCALERS,
            f"params.post_processing: at most one upscaler ({', '.join(UPSCALERS)})",
        ),
        (
            _upscaled_pixels(spec) > MAX_RESULT_PIXELS,
            ErrorCode.BAD_REQUEST,
            f"params.post_processing: upscaling {params.width}x{params.height} would give"
            f" {_upscaled_pixels(spec)} pixels; at most {MAX_RESULT_PIXELS} are allowed (a 4x"
            " upscale of 1536x1024): ask for a smaller size or a 2x upscaler",
        ),
        (
            params.control_type is not None and spec.source_image is None,
            ErrorCode.CONTROLNET_SOURCE_MISSING,
            "params.control_type needs a source_image (the control map or the image to derive"
            " it from)",
        ),
        (
            params.control_type is not None
            and spec.source_processing
            in (SourceProcessing.INPAINTING, SourceProcessing.OUTPAINTING),
            ErrorCode.CONTROLNET_INPAINTING_MISMATCH,
            "params.control_type cannot be combined with inpainting or outpainting",
        ),
        (
            params.interpolation is not None
            and params.interpolation.to_seed is not None
            and spec.source_image is not None,
            ErrorCode.INTERPOLATION_NEEDS_TXT2IMG,
            "params.interpolation.to_seed interpolates the initial noise, which only txt2img"
            " starts from; leave out source_image or to_seed (to_prompt works on any kind)",
        ),
        (
            spec.disable_batching and params.n > 1 and not trusted,
            ErrorCode.REQUIRES_TRUST,
            "disable_batching with n > 1 is for trusted users; send n = 1 or leave it out",
        ),
    ]
    for refused, rc, message in refusals:
        if refused:
            raise BadRequest(message, rc=rc)
    warnings = []
    if spec.webhook is not None:
        warnings.append(
            RequestWarning(
                code="WebhookIgnored",
                message="This horde does not call webhooks; poll /generate/check instead.",
            )
        )
    if spec.shared:
        warnings.append(
            RequestWarning(
                code="SharingIgnored",
                message="This horde does not share images with LAION; shared is false.",
            )
        )
    return warnings


def _upscaled_pixels(spec: GenerationInput) -> int:
    factor = 1
    for name in spec.params.post_processing:
        factor *= UPSCALER_FACTORS.get(name, 1)
    return spec.params.width * spec.params.height * factor * factor


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
