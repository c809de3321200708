"""What the studio's routes need, built once per process by `install_studio`."""

from __future__ import annotations

from dataclasses import dataclass

from horde_api.studio.collector import LibrarySweeper
from horde_api.studio.settings import StudioSettings
from horde_api.studio.url_fetch import SourceFetcher


@dataclass
class StudioState:
    settings: StudioSettings
    sweeper: LibrarySweeper
    fetcher: SourceFetcher
