"""The small client behind `horde-api generate`: submit, follow progress, save WebP files."""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path
from typing import Any

import requests

from horde_protocol import GenerationInput, GenerationParams, SourceProcessing


def _b64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    params = GenerationParams(
        width=args.width,
        height=args.height,
        steps=args.steps,
        seed=args.seed,
        # Without a variation the horde gives all n images the same seed (as the public one does).
        seed_variation=1 if args.seed and args.n > 1 else None,
        n=args.n,
        denoising_strength=args.denoise,
        sampler_name=args.sampler,
    )
    body = GenerationInput(
        prompt=args.prompt,
        params=params,
        models=args.model,
        source_image=_b64(args.source_image) if args.source_image else None,
        source_mask=_b64(args.mask) if args.mask else None,
        source_processing=SourceProcessing(args.mode),
        r2=False,
    )
    return body.model_dump(mode="json", exclude_none=True)


def run_generate(args: argparse.Namespace) -> int:
    api = args.url.rstrip("/") + "/api/v2"
    session = requests.Session()
    session.headers.update({"apikey": args.apikey, "Client-Agent": "horde-api-cli:0.1:local"})
    try:
        body = build_request(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reply = session.post(f"{api}/generate/async", json=body, timeout=60)
    if reply.status_code != 202:
        print(f"error: {reply.status_code} {reply.text}", file=sys.stderr)
        return 1
    request_id = reply.json()["id"]
    print(f"request {request_id} queued", file=sys.stderr)
    deadline = time.monotonic() + args.timeout
    while True:
        check = session.get(f"{api}/generate/check/{request_id}", params={"wait": 10}, timeout=60)
        check.raise_for_status()
        state = check.json()
        print(
            f"  waiting {state['waiting']} processing {state['processing']} finished"
            f" {state['finished']} position {state['queue_position']} eta {state['wait_time']}s"
            f" progress {int(100 * (state.get('progress') or 0))}%",
            file=sys.stderr,
        )
        if state["done"] or state["faulted"]:
            break
        if time.monotonic() > deadline:
            print("error: timed out; cancelling", file=sys.stderr)
            session.delete(f"{api}/generate/status/{request_id}", timeout=60)
            return 1
    status = session.get(f"{api}/generate/status/{request_id}", timeout=60).json()
    if state["faulted"]:
        print("error: the request faulted", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for generation in status["generations"]:
        img = generation["img"]
        data = (
            session.get(img, timeout=60).content
            if img.startswith("http")
            else base64.b64decode(img)
        )
        path = out / f"{generation['seed']}.webp"
        path.write_bytes(data)
        print(path)
    return 0
