"""Krita actions of the plug-in: "Generate with Krita Horde" (id `krita_horde_generate`), so
an artist can give Generate a keyboard shortcut in Settings › Configure Krita › Keyboard
Shortcuts (it is under Scripts). No default key: Krita's own shortcuts take most of them."""

from __future__ import annotations

from typing import Any

from .docker import HordeDocker, live_dockers

GENERATE_ACTION_ID = "krita_horde_generate"
GENERATE_ACTION_TEXT = "Generate with Krita Horde"


def docker_for(window: Any, dockers: list[HordeDocker]) -> HordeDocker | None:
    """The docker of `window` (the Krita main window's QMainWindow), else any live one."""
    for docker in dockers:
        if window is not None and docker.window() is window:
            return docker
    return dockers[0] if dockers else None


def generate_in_active_window(app: Any) -> str | None:
    """What the action does: Generate in the active window's docker (its job id)."""
    window = app.activeWindow()
    qwindow = window.qwindow() if window is not None else None
    docker = docker_for(qwindow, live_dockers())
    return docker.generate() if docker is not None else None


def make_extension(krita_module: Any) -> Any:
    """The Extension that creates the action in every Krita window."""

    class HordeActions(krita_module.Extension):
        def setup(self) -> None:
            pass

        def createActions(self, window: Any) -> None:
            action = window.createAction(GENERATE_ACTION_ID, GENERATE_ACTION_TEXT, "tools/scripts")
            action.triggered.connect(
                lambda: generate_in_active_window(krita_module.Krita.instance())
            )

    return HordeActions(krita_module.Krita.instance())
