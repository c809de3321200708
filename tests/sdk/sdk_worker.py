"""A horde worker built on AI Horde's own SDK (horde-sdk): its pop and submit models, its HTTP
client. It proves that a worker written for the public horde serves our horde unchanged.

It generates nothing: each job gets a small solid-colour WebP, uploaded to the job's
`r2_uploads` URL and submitted as "R2" (as the public horde's reGen worker does), or submitted as
base64 when the pop hands out no upload URL.
"""

from __future__ import annotations

import base64
import io
import threading
from dataclasses import dataclass, field

import requests
from horde_sdk.ai_horde_api.ai_horde_clients import AIHordeAPIManualClient
from horde_sdk.ai_horde_api.apimodels import (
    ImageGenerateJobPopRequest,
    ImageGenerateJobPopResponse,
    ImageGenerationJobSubmitRequest,
    JobSubmitResponse,
)
from horde_sdk.generic_api.apimodels import RequestErrorResponse
from PIL import Image

SDK_MODEL = "sdk-served-model"


@dataclass
class SdkWorker:
    apikey: str
    name: str
    models: list[str] = field(default_factory=lambda: [SDK_MODEL])
    upload_verify: str | bool = True
    popped: list[ImageGenerateJobPopResponse] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.client = AIHordeAPIManualClient()

    def pop_once(self, **fields: object) -> ImageGenerateJobPopResponse:
        request = ImageGenerateJobPopRequest(
            apikey=self.apikey, name=self.name, models=self.models, max_pixels=512 * 512, **fields
        )
        reply = self.client.submit_request(request, ImageGenerateJobPopResponse)
        if isinstance(reply, RequestErrorResponse):
            raise AssertionError(f"pop failed: {reply}")
        return reply

    def serve(self, reply: ImageGenerateJobPopResponse) -> None:
        """Answer every id of a popped job, as a worker built on the SDK would."""
        assert reply.payload.width and reply.payload.height
        uploads = list(reply.r2_uploads or [])
        for index, job_id in enumerate(reply.ids):
            webp = _solid_webp(reply.payload.width, reply.payload.height, index)
            generation = base64.b64encode(webp).decode()
            if index < len(uploads) and uploads[index]:
                put = requests.put(uploads[index], data=webp, timeout=10, verify=self.upload_verify)
                assert put.status_code == 200, put.text
                generation = "R2"
            submit = ImageGenerationJobSubmitRequest(
                apikey=self.apikey,
                id=job_id,
                state="ok",
                seed=int(reply.payload.seed or 0) + index,
                generation=generation,
            )
            answer = self.client.submit_request(submit, JobSubmitResponse)
            if isinstance(answer, RequestErrorResponse):
                self.errors.append(f"submit {job_id}: {answer}")
            else:
                self.rewards.append(answer.reward)

    def start(self) -> SdkWorker:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> SdkWorker:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                reply = self.pop_once()
                if not reply.ids:
                    self._stop.wait(0.1)
                    continue
                self.popped.append(reply)
                self.serve(reply)
            except Exception as error:  # the test reads `errors`; the thread must not die
                self.errors.append(f"{type(error).__name__}: {error}")
                self._stop.wait(0.2)


def _solid_webp(width: int, height: int, shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40 * shade % 256, 90, 160)).save(out, format="WEBP")
    return out.getvalue()
