"""Turning a claim (or nothing) into the pop reply, key for key as the public horde sends it.

Every top-level key is always present (null when it does not apply), `payload` leaves out what is
null, and a reply without a job still carries a `payload` object of defaults and every one of
the public horde's twelve `skipped` counts: clients written for the public horde (horde-sdk, the
reGen worker) parse exactly that shape.
"""

from __future__ import annotations

import json
from typing import Any

from horde_api.queue.pop import Claim
from horde_api.store.results import ResultStore

# What the public horde puts in `payload` when it has no job for the worker.
EMPTY_PAYLOAD: dict[str, Any] = {
    "sampler_name": "k_euler_a",
    "cfg_scale": 7.5,
    "height": 512,
    "width": 512,
    "karras": False,
    "tiling": False,
    "hires_fix": False,
    "image_is_control": False,
    "return_control_map": False,
    "transparent": False,
    "ddim_steps": 30,
    "n_iter": 1,
}
# The `skipped` counts the public horde always sends, zero or not; others only when above zero.
ALWAYS_SKIPPED = (
    "bridge_version",
    "untrusted",
    "performance",
    "controlnet",
    "post-processing",
    "lora",
    "nsfw",
    "unsafe_ip",
    "painting",
    "img2img",
    "worker_id",
    "models",
)
# Request params handed to the worker under the same name (when not null).
_PASSED_PARAMS = (
    "sampler_name",
    "cfg_scale",
    "height",
    "width",
    "karras",
    "clip_skip",
    "hires_fix",
    "hires_fix_denoising_strength",
    "tiling",
    "post_processing",
    "post_processing_order",
    "facefixer_strength",
    "control_type",
    "image_is_control",
    "return_control_map",
    "loras",
    "tis",
    "interpolation",  # our extension; only workers that announced it get such images
)
DEFAULT_IMG2IMG_STRENGTH = 0.75


def _reply(**fields: Any) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "id": None,
        "ids": [],
        "payload": {},
        "ttl": None,
        "skipped": {},
        "model": None,
        "source_image": None,
        "source_processing": "img2img",
        "source_mask": None,
        "r2_upload": None,
        "r2_uploads": None,
        "extra_source_images": None,
    }
    reply.update(fields)
    return reply


def _skipped(counts: dict[str, int]) -> dict[str, int]:
    skipped = dict.fromkeys(ALWAYS_SKIPPED, 0)
    skipped.update({reason: count for reason, count in counts.items() if count > 0})
    return skipped


def no_job_reply(skipped: dict[str, int]) -> dict[str, Any]:
    return _reply(payload=dict(EMPTY_PAYLOAD), skipped=_skipped(skipped))


def job_reply(claim: Claim, base_url: str, store: ResultStore) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(claim.spec_json)
    params: dict[str, Any] = spec["params"]
    payload: dict[str, Any] = {
        name: params[name] for name in _PASSED_PARAMS if params.get(name) is not None
    }
    for empty_list in ("loras", "tis", "post_processing"):
        if not payload.get(empty_list):
            # The public horde routes any request whose params hold the key (even empty).
            payload.pop(empty_list, None)
    if claim.source_image is not None:
        payload["denoising_strength"] = params.get("denoising_strength") or (
            DEFAULT_IMG2IMG_STRENGTH
        )
    payload.update(
        # Refused when asked for (generation_checks), so never true here.
        transparent=False,
        prompt=spec["prompt"],
        ddim_steps=params["steps"],
        seed=claim.images[0].seed,
        n_iter=len(claim.images),
        use_nsfw_censor=bool(spec.get("censor_nsfw")) and not spec.get("nsfw"),
    )
    ids = claim.lease_ids
    # Our upload endpoint, or a presigned PUT to the bucket that lives as long as the lease.
    upload_seconds = max(60, int(claim.ttl))
    uploads = [
        store.upload_url(image.lease_id, image.upload_token, base_url, upload_seconds)
        for image in claim.images
    ]
    return _reply(
        id=ids[0],
        ids=ids,
        payload=payload,
        ttl=int(claim.ttl) if claim.ttl >= 1 else 1,
        skipped=_skipped({}),
        model=claim.model,
        source_image=claim.source_image,
        source_processing=spec.get("source_processing", "img2img"),
        source_mask=claim.source_mask,
        r2_upload=uploads[0],
        r2_uploads=uploads,
        # Our extension: where the worker may POST progress for these jobs.
        progress_url=f"{base_url}/api/v2/generate/progress",
    )
