"""The artist's path, one step per event-loop turn (Krita needs that between node changes)."""

import math
import time
import traceback

from krita import InfoObject, Selection
from PyQt5.QtCore import QTimer
from PyQt5.QtGui import QImageReader
from PyQt5.QtWidgets import QApplication

from .steps import DOC_SIZE, StepRunner

POLL_MS = 50
STALL_TICK_MS = 10


def painted_content(size):
    """BGRA bytes of a recognisable picture: a gradient sky, a sun and a dark hill."""
    pixels = bytearray(size * size * 4)
    for y in range(size):
        for x in range(size):
            i = (y * size + x) * 4
            blue, green, red = 230 - y // 4, 120 + y // 5, 60 + x // 5
            if (x - 380) ** 2 + (y - 120) ** 2 < 60**2:
                blue, green, red = 40, 210, 250
            if y > 360 + int(40 * math.sin(x / 60)):
                blue, green, red = 30, 90, 40
            pixels[i : i + 4] = bytes((blue, green, red, 255))
    return bytes(pixels)


def ellipse_mask(width, height):
    """1 byte per pixel: 255 inside the ellipse inscribed in width x height, 0 outside."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    rx, ry = width / 2, height / 2
    return bytes(
        255 if ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1 else 0
        for y in range(height)
        for x in range(width)
    )


def all_nodes(node):
    """The node and all its descendants, depth first."""
    found = [node]
    for child in node.childNodes():
        found.extend(all_nodes(child))
    return found


def node_id(node):
    return node.uniqueId().toString()


class StallMeter:
    """The longest gap between ticks of a 10 ms timer: how long the event loop was blocked.

    Gaps are split by phase: `mark(phase)` attributes the next tick's gap to that phase, e.g.
    "preparing" right before the Generate click (reading pixels, encoding the job) and
    "inserting" from the plug-in's job_finished signal (emitted inside the layer insertion);
    every other tick counts as "waiting" (submitting, polling, downloading).

    Besides the wall-clock gap, the GUI thread's own CPU time between two ticks is kept
    (`time.thread_time`): on a machine shared with other processes a wall-clock gap also holds
    the time the thread waited for a core; the CPU time does not (nor the time it waited for
    Krita's own worker threads)."""

    PHASES = ("preparing", "waiting", "inserting")

    def __init__(self):
        self.timer = QTimer()
        self.timer.setInterval(STALL_TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.last_cpu = None
        self.longest = 0.0
        self.longest_cpu = 0.0
        self.longest_by_phase = dict.fromkeys(self.PHASES, 0.0)
        self.pending_phase = None
        self.ticks = 0

    def start(self):
        self.last = time.monotonic()
        self.last_cpu = time.thread_time()
        self.timer.start()

    def stop(self):
        self.timer.stop()

    def mark(self, phase):
        self.pending_phase = phase

    def _tick(self):
        now, cpu = time.monotonic(), time.thread_time()
        gap = now - self.last - STALL_TICK_MS / 1000
        self.longest_cpu = max(self.longest_cpu, cpu - self.last_cpu)
        self.last_cpu = cpu
        self.longest = max(self.longest, gap)
        phase = self.pending_phase or "waiting"
        self.longest_by_phase[phase] = max(self.longest_by_phase[phase], gap)
        self.pending_phase = None
        self.last = now
        self.ticks += 1


class Scenario(StepRunner):
    def __init__(self, config_path):
        super().__init__(config_path, {"ok": False, "error": None, "jobs": [], "steps": []})
        self.stall = StallMeter()
        self.current_job = None

    # -- plumbing -------------------------------------------------------------------------
    def start(self):
        self.steps = [self.open_document, self.find_docker, self.paint]
        for job in self.config["jobs"]:
            self.steps += [
                lambda job=job: self.select(job),
                lambda job=job: self.snapshot(job["name"] + "-before"),
                lambda job=job: self.generate(job),
                self.wait_for_job,
                lambda job=job: self.snapshot(job["name"] + "-after"),
            ]
        self.steps += [self.finish, self.quit]
        QTimer.singleShot(self.config.get("start_delay_ms", 500), self.next_step)

    # -- steps ----------------------------------------------------------------------------
    def open_document(self):
        formats = [bytes(f).decode() for f in QImageReader.supportedImageFormats()]
        self.report["webp_readable"] = "webp" in formats
        self.new_document()

    def find_docker(self):
        if self.live_docker() is None:
            return
        self.docker.job_started.connect(self.on_job_started)
        self.docker.job_finished.connect(self.on_job_finished)
        self.docker.job_failed.connect(self.on_job_failed)
        self.docker.apply_settings(self.config.get("settings", {}))
        self.next_step(100)

    def paint(self):
        layer = self.doc.createNode("painting", "paintlayer")
        self.doc.rootNode().addChildNode(layer, None)
        layer.setPixelData(painted_content(DOC_SIZE), 0, 0, DOC_SIZE, DOC_SIZE)
        self.doc.waitForDone()
        self.doc.refreshProjection()
        self.next_step(200)

    def select(self, job):
        shape = job.get("selection")
        if shape is None:
            self.app.action("deselect").trigger()
        else:
            x, y, w, h = shape["rect"]
            selection = Selection()
            if shape["kind"] == "ellipse":
                selection.setPixelData(ellipse_mask(w, h), x, y, w, h)
            else:
                selection.select(x, y, w, h, 255)
            self.doc.setSelection(selection)
        self.next_step(200)

    def snapshot(self, name):
        self.doc.waitForDone()
        self.doc.refreshProjection()
        data = bytes(self.doc.pixelData(0, 0, DOC_SIZE, DOC_SIZE))
        with open(f"{self.config['artifacts']}/{name}.bgra", "wb") as f:
            f.write(data)
        self.next_step(50)

    def generate(self, job):
        settings = dict(job.get("settings", {}))
        if settings:
            self.docker.apply_settings(settings)
        self.current_job = {"name": job["name"], "id": None, "done": False, "layers": []}
        self.current_job["started"] = time.monotonic()
        # Every job names its layers "<prompt> [seed N]": only nodes that did not exist before
        # this job can be its layers.
        self.nodes_before = {node_id(node) for node in all_nodes(self.doc.rootNode())}
        self.report["jobs"].append(self.current_job)
        self.stall.start()
        self.stall.mark("preparing")
        self.docker.generate_button.click()
        self.next_step(POLL_MS)

    def wait_for_job(self):
        job = self.current_job
        if not job["done"]:
            if time.monotonic() - job["started"] > self.config.get("job_timeout", 240):
                job["error"] = "timed out waiting for the job's layers"
                job["status_text"] = self.docker.status_label.text()
                self.stall.stop()
                self.fail(f"job {job['name']} timed out")
                return
            self.steps.insert(0, self.wait_for_job)
            self.next_step(POLL_MS)
            return
        self.stall.stop()
        job["seconds"] = round(time.monotonic() - job["started"], 2)
        job["status_text"] = self.docker.status_label.text()
        new_nodes = [
            node
            for node in all_nodes(self.doc.rootNode())
            if node_id(node) not in self.nodes_before
        ]
        job["layer_info"] = [self.describe(name, new_nodes) for name in job["layers"]]
        self.next_step(100)

    def describe(self, name, candidates):
        node = next((node for node in candidates if node.name() == name), None)
        if node is None:
            return {"name": name, "found": False}
        bounds = node.bounds()
        parent = node.parentNode()
        return {
            "name": name,
            "found": True,
            "type": node.type(),
            "bounds": [bounds.x(), bounds.y(), bounds.width(), bounds.height()],
            "parent": parent.name() if parent is not None else None,
            "parent_type": parent.type() if parent is not None else None,
            "children": [child.type() for child in node.childNodes()],
        }

    def on_job_started(self, job_id):
        if self.current_job is not None and self.current_job["id"] is None:
            self.current_job["id"] = job_id

    def on_job_finished(self, job_id, layer_names):
        if self.current_job is not None and self.current_job["id"] == job_id:
            self.stall.mark("inserting")
            self.current_job["layers"] = list(layer_names)
            self.current_job["done"] = True

    def on_job_failed(self, job_id, message):
        if self.current_job is not None and self.current_job["id"] == job_id:
            self.current_job["error"] = message
            self.current_job["done"] = True

    def finish(self):
        self.report["max_stall_ms"] = round(self.stall.longest * 1000, 1)
        self.report["max_stall_cpu_ms"] = round(self.stall.longest_cpu * 1000, 1)
        for phase, longest in self.stall.longest_by_phase.items():
            self.report[f"max_stall_{phase}_ms"] = round(longest * 1000, 1)
        self.report["stall_ticks"] = self.stall.ticks
        artifacts = self.config["artifacts"]
        try:
            screen = QApplication.primaryScreen().grabWindow(0)
            screen.save(f"{artifacts}/screenshot.png")
            self.report["screenshot"] = f"{artifacts}/screenshot.png"
        except Exception:
            self.report["screenshot_error"] = traceback.format_exc()
        if self.doc is not None:
            self.doc.exportImage(f"{artifacts}/document.png", InfoObject())
            self.doc.waitForDone()
        failed = [job["name"] for job in self.report["jobs"] if job.get("error")]
        if failed and not self.report["error"]:
            self.report["error"] = f"jobs failed: {failed}"
        self.report["ok"] = self.report["error"] is None
        self.write_report()
        self.next_step(100)
