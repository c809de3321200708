"""The prompt text: a negative prompt follows `###` inside the same string."""

from __future__ import annotations

NEGATIVE_PROMPT_SEPARATOR = "###"


def split_prompt(prompt: str) -> tuple[str, str]:
    """Split an AI Horde prompt into (prompt, negative prompt) at the first `###`."""
    positive, _, negative = prompt.partition(NEGATIVE_PROMPT_SEPARATOR)
    return positive.strip(), negative.strip()
