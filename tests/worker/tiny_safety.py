"""A tiny random-weight NSFW safety checker in the real diffusers layout, whose verdict the test
chooses.

StableDiffusionSafetyChecker flags an image when the cosine between its CLIP embedding and a
concept embedding exceeds that concept's threshold (`concept_embeds_weights`). A cosine lies in
[-1, 1], so a threshold of -2 flags every image and one of 2 flags none, whatever the random
weights make of the picture.
"""

from __future__ import annotations

from pathlib import Path

import torch

FLAG_ALL = -2.0
FLAG_NONE = 2.0


def write_safety_checker(folder: Path, *, threshold: float, nested: bool = True) -> Path:
    """Write the checker into `folder` (as `safety_checker/` + `feature_extractor/` when
    `nested`, the layout of a model folder; else both side by side); returns `folder`."""
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
    checker_dir = folder / "safety_checker" if nested else folder
    extractor_dir = folder / "feature_extractor" if nested else folder
    checker.save_pretrained(str(checker_dir))
    extractor.save_pretrained(str(extractor_dir))
    return folder
