"""A live horde with an artist's key and one tiny worker serving it: what the client layers
(CLI, GIMP) run against."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.live_horde import LiveHorde, start_horde
from tests.helpers.live_worker import start_worker


@dataclass
class LiveSetup:
    horde: LiveHorde
    artist_key: str


@contextmanager
def horde_with_worker(
    folder: Path, artist: str, worker_name: str, kudos: float = 0
) -> Iterator[LiveSetup]:
    """The horde in `folder`, a trusted `artist` (given `kudos`) and a ready tiny worker."""
    with start_horde(folder) as horde:
        artist_key = horde.create_user(artist, trusted=True, kudos=kudos)
        volunteer = horde.create_user("volunteer")
        with start_worker(folder, horde.url, volunteer, name=worker_name) as worker:
            worker.wait_ready()
            yield LiveSetup(horde, artist_key)
