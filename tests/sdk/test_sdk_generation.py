"""AI Horde's own SDK completes generations on our horde: its simple client asks, a worker built
on its pop/submit models serves (docs/protocol.md, "Compatibility")."""

from __future__ import annotations

import uuid

from horde_sdk.ai_horde_api.ai_horde_clients import AIHordeAPISimpleClient
from horde_sdk.ai_horde_api.apimodels import (
    ImageGenerateAsyncRequest,
    ImageGenerateStatusResponse,
    ImageGenerationInputPayload,
)

from tests.sdk.conftest import SdkHorde
from tests.sdk.sdk_worker import SDK_MODEL, SdkWorker


def _generate(
    horde: SdkHorde, *, r2: bool, n: int = 2
) -> tuple[ImageGenerateStatusResponse, SdkWorker, AIHordeAPISimpleClient]:
    client_key = horde.user("artist")
    worker_key = horde.user("volunteer")
    verify = horde.horde.verify
    worker = SdkWorker(worker_key, f"sdk-worker-{uuid.uuid4().hex[:8]}", upload_verify=verify)
    client = AIHordeAPISimpleClient()
    request = ImageGenerateAsyncRequest(
        apikey=client_key,
        prompt="a lighthouse at dusk ### fog",
        models=[SDK_MODEL],
        r2=r2,
        params=ImageGenerationInputPayload(
            width=64, height=64, steps=4, n=n, seed="1234", seed_variation=1
        ),
    )
    with worker:
        status, _ = client.image_generate_request(request, timeout=60)
    assert not worker.errors, worker.errors
    return status, worker, client


def _check_images(
    status: ImageGenerateStatusResponse, worker: SdkWorker, client: AIHordeAPISimpleClient
) -> None:
    assert status.done and status.finished == len(status.generations) == 2
    # A generation's id is the id the worker was handed, in the SDK's dashed form.
    popped = {str(job_id) for reply in worker.popped for job_id in reply.ids}
    assert {str(g.id_) for g in status.generations} == popped
    assert sorted(g.seed for g in status.generations) == ["1234", "1235"]
    for generation in status.generations:
        image = client.download_image_from_generation(generation)
        assert (image.format, image.size) == ("WEBP", (64, 64))
        assert generation.model == SDK_MODEL and generation.worker_name == worker.name
    assert worker.rewards and all(reward >= 0 for reward in worker.rewards)


def test_sdk_simple_client_gets_two_inline_images(sdk_horde: SdkHorde) -> None:
    status, worker, client = _generate(sdk_horde, r2=False)
    assert not any(g.img.startswith("http") for g in status.generations)
    _check_images(status, worker, client)


def test_sdk_r2_request_on_a_plain_http_horde_gets_its_images_inline(sdk_horde: SdkHorde) -> None:
    """Clients of the public horde read anything but an https link as base64; over plain http
    an r2 link would be decoded into garbage, so the images come inline."""
    status, worker, client = _generate(sdk_horde, r2=True)
    assert not any(g.img.startswith("http") for g in status.generations)
    _check_images(status, worker, client)


def test_sdk_r2_request_on_a_tls_horde_gets_https_links(tls_horde: SdkHorde) -> None:
    status, worker, client = _generate(tls_horde, r2=True)
    assert all(g.img.startswith("https://127.0.0.1:") for g in status.generations)
    _check_images(status, worker, client)
    # The worker uploaded through the pop's https r2_uploads links, one per image.
    uploads = [url for reply in worker.popped for url in reply.r2_uploads or []]
    assert len(uploads) == 2 and all(url.startswith("https://") for url in uploads)
