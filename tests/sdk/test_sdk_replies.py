"""Every endpoint we serve, called with the SDK's request models and parsed with its reply
models; and, recursively, every field of those reply models present in our replies (except the
few docs/protocol.md lists as not sent, each with its reason)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from horde_sdk.ai_horde_api.ai_horde_clients import AIHordeAPIManualClient
from horde_sdk.ai_horde_api.apimodels import (
    AIHordeHeartbeatRequest,
    AllWorkersDetailsRequest,
    DeleteImageGenerateRequest,
    FindUserRequest,
    HordeStatusModelsAllRequest,
    HordeStatusModelsSingleRequest,
    ImageGenerateAsyncDryRunResponse,
    ImageGenerateAsyncRequest,
    ImageGenerateCheckRequest,
    ImageGenerateJobPopResponse,
    ImageGenerateStatusRequest,
    ImageGenerationInputPayload,
    ModifyWorkerRequest,
    SingleUserDetailsRequest,
    SingleWorkerDetailsRequest,
    SingleWorkerNameDetailsRequest,
    UserDetailsResponse,
)
from horde_sdk.generic_api.apimodels import HordeResponse, RequestErrorResponse
from pydantic import BaseModel

from tests.sdk.conftest import SdkHorde
from tests.sdk.model_fields import missing_fields
from tests.sdk.sdk_worker import SDK_MODEL, SdkWorker

# Text and interrogation workers' fields, and what the public horde shows only to moderators
# (ipaddr, contact, paused, suspicious, forms).
WORKER_NOT_SENT = {
    "contact",
    "forms",
    "ipaddr",
    "max_context_length",
    "max_length",
    "paused",
    "suspicious",
    "tokens_generated",
}
# SDK reply fields our horde does not send, and why (the same list is in docs/protocol.md).
NOT_SENT: dict[str, set[str]] = {
    "AllWorkersDetailsResponse": WORKER_NOT_SENT,
    "SingleWorkerDetailsResponse": WORKER_NOT_SENT,
    # Privileged (moderator) fields, and features this horde has not: styles, monthly kudos,
    # shared keys, contact details, customizer/special/vpn flags, kudos under evaluation.
    "UserDetailsResponse": {
        "admin_comment",
        "active_generations",
        "contact",
        "customizer",
        "evaluating_kudos",
        "monthly_kudos",
        "sharedkey_ids",
        "special",
        "styles",
        "suspicious",
        "vpn",
        "records.style",
    },
    # Sent only with warnings or a message, as on the public horde.
    "ImageGenerateAsyncResponse": {"message", "warnings"},
    # As on the public horde: `payload` leaves out what is null or was not asked for, `skipped`
    # sends these four counts only above zero.
    "ImageGenerateJobPopResponse": {
        "payload.clip_skip",
        "payload.control_type",
        "payload.denoising_strength",
        "payload.extra_texts",
        "payload.facefixer_strength",
        "payload.hires_fix_denoising_strength",
        "payload.loras",
        "payload.post_processing",
        "payload.post_processing_order",
        "payload.prompt",
        "payload.seed",
        "payload.seed_variation",
        "payload.special",
        "payload.tis",
        "payload.use_nsfw_censor",
        "payload.workflow",
        "skipped.blacklist",
        "skipped.kudos",
        "skipped.max_pixels",
        "skipped.step_count",
    },
}


def _client() -> AIHordeAPIManualClient:
    return AIHordeAPIManualClient()


def _call(request: Any, expected: type[BaseModel] | None = None) -> Any:
    reply_type = expected or request.get_default_success_response_type()
    reply = _client().submit_request(request, reply_type)
    assert not isinstance(reply, RequestErrorResponse), f"{type(request).__name__}: {reply}"
    assert isinstance(reply, HordeResponse)
    return reply


def _covers(model: type[BaseModel], raw: Any) -> None:
    missing = set(missing_fields(model, raw)) - NOT_SENT.get(model.__name__, set())
    assert not missing, f"{model.__name__}: our reply lacks {sorted(missing)}"


def _raw(horde: SdkHorde, method: str, path: str, apikey: str | None = None) -> Any:
    headers = {"apikey": apikey} if apikey else {}
    reply = httpx.request(method, f"{horde.url}/api/v2{path}", headers=headers, timeout=10)
    assert reply.status_code < 400, reply.text
    return reply.json()


def test_every_endpoint_parses_with_the_sdks_models(sdk_horde: SdkHorde) -> None:
    artist = sdk_horde.user("artist")
    volunteer = sdk_horde.user("volunteer")
    worker = SdkWorker(volunteer, f"sdk-worker-{uuid.uuid4().hex[:8]}")

    # A pop without a job: `payload` is an object, `skipped` has the public horde's counts.
    idle = worker.pop_once()
    assert idle.ids == [] and idle.id_ is None and idle.payload.prompt is None
    raw_idle = _raw_pop(sdk_horde, volunteer, worker.name)
    _covers(ImageGenerateJobPopResponse, raw_idle)

    # A request with the SDK's request model; the async reply, check and dry run.
    request = ImageGenerateAsyncRequest(
        apikey=artist,
        prompt="a red fox",
        models=[SDK_MODEL],
        r2=False,
        params=ImageGenerationInputPayload(width=64, height=64, steps=4, n=3),
    )
    queued = _call(request)
    request_id = str(queued.id_)
    assert queued.kudos > 0
    dry = _call(request.model_copy(update={"dry_run": True}), ImageGenerateAsyncDryRunResponse)
    assert dry.kudos == queued.kudos
    check = _call(ImageGenerateCheckRequest(id=request_id))
    assert (check.waiting, check.done) == (3, False)
    _covers(type(check), _raw(sdk_horde, "GET", f"/generate/check/{request_id}"))

    # A pop of two images at once (`amount`): ids and r2_uploads stay paired after the SDK
    # sorts each list on its own.
    raw_job = _raw_pop(sdk_horde, volunteer, worker.name, amount=1)
    assert raw_job["payload"]["prompt"] == "a red fox" and len(raw_job["ids"]) == 1
    _covers(ImageGenerateJobPopResponse, raw_job)
    worker.serve(ImageGenerateJobPopResponse.model_validate(raw_job))
    batch = worker.pop_once(amount=2)
    assert len(batch.ids) == 2 and batch.payload.n_iter == 2
    assert batch.r2_uploads is not None
    for job_id, upload in zip(batch.ids, batch.r2_uploads, strict=True):
        assert f"/upload/{job_id}?" in upload
    worker.serve(batch)
    assert not worker.errors, worker.errors

    status = _call(ImageGenerateStatusRequest(id=request_id))
    assert len(status.generations) == 3
    assert {str(g.id_) for g in status.generations} == {*map(str, batch.ids), *raw_job["ids"]}
    _covers(type(status), _raw(sdk_horde, "GET", f"/generate/status/{request_id}"))
    cancelled = _call(DeleteImageGenerateRequest(id=request_id))
    assert cancelled.done and len(cancelled.generations) == 3 and cancelled.waiting == 0

    # The horde's state: heartbeat, models, workers, users.
    heartbeat = _call(AIHordeHeartbeatRequest())
    assert heartbeat.version
    _covers(type(heartbeat), _raw(sdk_horde, "GET", "/status/heartbeat"))
    models = _call(HordeStatusModelsAllRequest())
    assert SDK_MODEL in {m.name for m in models.root}
    _covers(type(models), _raw(sdk_horde, "GET", "/status/models?type=image&model_state=all"))
    one_model = _call(HordeStatusModelsSingleRequest(model_name=SDK_MODEL))
    assert [m.name for m in one_model.root] == [SDK_MODEL]

    workers = _call(AllWorkersDetailsRequest(apikey=volunteer))
    (mine,) = [w for w in workers.root if w.name == worker.name]
    assert mine.online and mine.bridge_agent and mine.requests_fulfilled == 3
    _covers(type(workers), _raw(sdk_horde, "GET", "/workers?type=", volunteer))
    by_id = _call(SingleWorkerDetailsRequest(worker_id=mine.id_, apikey=volunteer))
    assert by_id.name == worker.name
    _covers(type(by_id), _raw(sdk_horde, "GET", f"/workers/{mine.id_}", volunteer))
    by_name = _call(SingleWorkerNameDetailsRequest(worker_name=worker.name, apikey=volunteer))
    assert by_name.id_ == mine.id_
    modified = _call(ModifyWorkerRequest(worker_id=mine.id_, apikey=volunteer, maintenance=True))
    assert modified.maintenance is True
    _call(ModifyWorkerRequest(worker_id=mine.id_, apikey=volunteer, maintenance=False))

    me = _call(FindUserRequest(apikey=volunteer), UserDetailsResponse)
    assert me.records.fulfillment.image == 3 and me.worker_ids == [mine.id_]
    _covers(UserDetailsResponse, _raw(sdk_horde, "GET", "/find_user", volunteer))
    requester = _call(FindUserRequest(apikey=artist), UserDetailsResponse)
    assert requester.records.request.image == 3
    assert requester.records.usage.megapixelsteps > 0
    public = _call(SingleUserDetailsRequest(user_id=str(requester.id_)), UserDetailsResponse)
    assert public.username == requester.username
    anonymous = _call(FindUserRequest(apikey="0000000000"), UserDetailsResponse)
    assert anonymous.id_ == 0


def _raw_pop(horde: SdkHorde, apikey: str, name: str, amount: int = 0) -> dict[str, Any]:
    """A pop's JSON as it is on the wire; without `amount`, the no-job reply is checked."""
    body = {"name": name, "models": [SDK_MODEL], "max_pixels": 512 * 512}
    if amount:
        body["amount"] = amount
    reply = httpx.post(
        f"{horde.url}/api/v2/generate/pop", json=body, headers={"apikey": apikey}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    raw: dict[str, Any] = reply.json()
    if amount:
        return raw
    assert raw["payload"] == {
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
    return raw
