"""The tiny random-weight NSFW safety checker that goes with the tiny model (worker/tiny_model.py).

Like the tiny model it proves the path, not the judgement: diffusers' StableDiffusionSafetyChecker
with a tiny CLIP vision tower and its feature extractor, in the real folder layout. Its verdict
is set by its concept thresholds: the checker flags an image when the cosine between the
image's embedding and a concept's exceeds that concept's threshold, and a cosine lies in
[-1, 1], so -2 flags every image and 2 (the one the `tiny` model serves with) none. The demo
and the tests that send censored requests through a `tiny` worker get a worker that honours
`use_nsfw_censor` on the path of a real one.
"""

from __future__ import annotations

from pathlib import Path

from horde_worker.tiny_model import default_cache_dir, ensure_built

FLAG_ALL = -2.0
FLAG_NONE = 2.0
# Bump when the layout below changes, so cached builds of an older one are not reused.
TINY_CHECKER_VERSION = 1


def build_tiny_checker(folder: Path, *, threshold: float = FLAG_NONE, nested: bool = True) -> Path:
    """Write the checker into `folder` (as `safety_checker/` + `feature_extractor/` when
    `nested`, a model folder's layout; else both side by side); returns `folder`.
    Deterministic: built from a fixed seed."""
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPTextConfig, CLIPVisionConfig

    small = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "projection_dim": 16,
    }
    vision = CLIPVisionConfig(image_size=32, patch_size=4, **small)
    # The checker never builds the text tower, but CLIPConfig wants a consistent one.
    text = CLIPTextConfig(vocab_size=1000, bos_token_id=0, eos_token_id=2, **small)
    config = CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        checker = StableDiffusionSafetyChecker(config)
    with torch.no_grad():
        checker.concept_embeds_weights.fill_(threshold)
        # The "special care" concepts only raise the other scores a little: keep them quiet.
        checker.special_care_embeds_weights.fill_(FLAG_NONE)
    extractor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    folder = Path(folder)
    checker.save_pretrained(str(folder / "safety_checker" if nested else folder))
    extractor.save_pretrained(str(folder / "feature_extractor" if nested else folder))
    return folder


def ensure_tiny_checker(cache_dir: Path | None = None) -> Path:
    """The cached checker of the `tiny` model (flags nothing), built on first use. It lives
    beside the tiny pipeline folder, not in it, so that folder stays a model without one."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return ensure_built(
        root / f"tiny-safety-checker-v{TINY_CHECKER_VERSION}",
        "safety_checker/config.json",
        build_tiny_checker,
    )
