"""ASGI entry points for servers that import the app by name.

`uvicorn --factory horde_api.asgi:app_from_env --workers 4` runs several processes, each
building its app from the `HORDE_*` environment (shared Redis and database required).
"""

from __future__ import annotations

from fastapi import FastAPI

from horde_api.app import create_app
from horde_api.settings import HordeSettings


def app_from_env() -> FastAPI:
    return create_app(HordeSettings())
