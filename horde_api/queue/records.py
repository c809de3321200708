"""Users' records: images requested and generated, megapixel-steps used and contributed.

Counted where the work happens (the enqueue pipeline, the submit script) in one Redis hash per
user (`RedisKeys.user_records`; user 0 is the anonymous user), so they cost no database write
on the hot path. They live as long as the queue's data: a Redis with persistence, or the
embedded store's snapshot.
"""

from __future__ import annotations

from redis import Redis

from horde_api.queue.keys import RedisKeys
from horde_protocol import UserAmountRecords, UserRecords, UserThingRecords
from horde_protocol.status import ContributionDetails, UsageDetails


def read_records(redis: Redis, keys: RedisKeys, user_id: int) -> UserRecords:
    raw = {k.decode(): v.decode() for k, v in redis.hgetall(keys.user_records(user_id)).items()}
    return UserRecords(
        usage=UserThingRecords(megapixelsteps=round(float(raw.get("usage_mps", 0)), 2)),
        contribution=UserThingRecords(
            megapixelsteps=round(float(raw.get("contribution_mps", 0)), 2)
        ),
        fulfillment=UserAmountRecords(image=int(raw.get("fulfillment_image", 0))),
        request=UserAmountRecords(image=int(raw.get("request_image", 0))),
    )


def obsolete_counts(records: UserRecords) -> dict[str, UsageDetails | ContributionDetails]:
    """`usage` and `contributions`, the public horde's older names for the same counts."""
    return {
        "usage": UsageDetails(
            megapixelsteps=records.usage.megapixelsteps, requests=records.request.image
        ),
        "contributions": ContributionDetails(
            megapixelsteps=records.contribution.megapixelsteps,
            fulfillments=records.fulfillment.image,
        ),
    }
