"""What a worker's owner earns for keeping it online, as on the public AI Horde
(`ImageWorker.calculate_uptime_reward`, `WorkerTemplate.check_in`): every 10 minutes online,
50 kudos, +2 per model it serves, +30 when it takes LoRAs. The time counts between pops (a pop is
the worker's check-in) less than `HORDE_WORKER_OFFLINE_SECONDS` apart, never in maintenance; the
pop script keeps the count (queue/pop.py)."""

from __future__ import annotations

UPTIME_REWARD_EVERY_SECONDS = 600
BASE_UPTIME_REWARD = 50.0
PER_MODEL_UPTIME_REWARD = 2.0
LORA_UPTIME_REWARD = 30.0


def uptime_reward(model_count: int, takes_loras: bool) -> float:
    """Kudos per 10 minutes online."""
    reward = BASE_UPTIME_REWARD + PER_MODEL_UPTIME_REWARD * model_count
    return reward + (LORA_UPTIME_REWARD if takes_loras else 0.0)
