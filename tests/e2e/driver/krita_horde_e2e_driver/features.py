"""The docker's all-day features in the real Krita, one step per event-loop turn: the TLS
connection (trusted and untrusted), a live preview, the history and applying from it,
concurrent jobs, and outpainting. Each step waits on a condition (polling with timers), records
what it saw in the report, and grabs the docker (or the window) for the screenshots."""

import traceback

from krita import InfoObject, Selection

from .scenario import all_nodes, painted_content
from .steps import DOC_SIZE, StepRunner


def layer_info(node):
    bounds = node.bounds()
    parent = node.parentNode()
    return {
        "name": node.name(),
        "type": node.type(),
        "bounds": [bounds.x(), bounds.y(), bounds.width(), bounds.height()],
        "parent": parent.name() if parent is not None else None,
        "children": [child.type() for child in node.childNodes()],
    }


class FeatureScenario(StepRunner):
    def __init__(self, config_path):
        super().__init__(config_path, {"ok": False, "error": None, "steps": []})
        self.events = []  # (kind, job_id, payload) from the docker's signals
        self.steps = [
            self.open_document,
            self.find_docker,
            # Untrusted first: after a trusted handshake Qt may reuse the open connection.
            self.tls_untrusted,
            self.tls_trusted,
            self.connect_plain,
            self.paint,
            self.screenshot_at_rest,
            self.preview_job,
            self.history_job,
            self.apply_from_history,
            self.concurrent_jobs,
            self.outpaint,
            self.undo_outpaint,
            self.finish,
            self.quit,
        ]

    # -- plumbing -------------------------------------------------------------------------
    def grab(self, name, widget=None, show=None):
        """A PNG of the docker (or `widget`) into the artifacts folder; `show` is scrolled
        into view first."""
        if show is not None:
            from PyQt5.QtWidgets import QScrollArea

            scroll = self.docker.findChild(QScrollArea, "form_scroll")
            scroll.ensureWidgetVisible(show)
        target = widget or self.docker
        path = f"{self.config['artifacts']}/{name}.png"
        target.grab().save(path)
        self.report.setdefault("screenshots", []).append(path)

    def outcome(self, job_id):
        for kind, event_id, payload in self.events:
            if event_id == job_id:
                return kind, payload
        return None

    # -- steps ----------------------------------------------------------------------------
    def open_document(self):
        self.new_document()

    def find_docker(self):
        if self.live_docker() is None:
            return
        # Floating and tall, so the screenshots show the queue and the history too.
        self.docker.setFloating(True)
        self.docker.resize(380, 960)
        self.report["docker_title"] = self.docker.windowTitle()
        self.docker.job_finished.connect(
            lambda job_id, names: self.events.append(("finished", job_id, list(names)))
        )
        self.docker.job_failed.connect(
            lambda job_id, message: self.events.append(("failed", job_id, message))
        )
        self.docker.apply_settings(self.config["settings"])
        self.next_step(100)

    def _models_status(self, key, url, ca_file):
        """Load the model list from `url` trusting `ca_file`: the status line says how it went."""
        self.docker.form.status_label.setText("")
        self.docker.apply_settings({"url": url, "ca_file": ca_file})
        self.wait_until(
            lambda: (
                "model(s) available" in self.docker.status_label.text()
                or "Could not load" in self.docker.status_label.text()
            ),
            lambda: (self.report.update({key: self.docker.status_label.text()}), self.next_step()),
            f"the model list of {url}",
            timeout_s=60,
        )

    def tls_trusted(self):
        tls = self.config["tls"]
        self._models_status("tls_trusted_status", tls["trusted_url"], tls["ca_file"])

    def tls_untrusted(self):
        tls = self.config["tls"]
        self._models_status("tls_untrusted_status", tls["untrusted_url"], tls["other_ca_file"])

    def connect_plain(self):
        self.docker.apply_settings({"url": self.config["settings"]["url"], "ca_file": ""})
        self.wait_until(
            lambda: self.docker.workers is not None and self.docker.balance is not None,
            self.next_step,
            "the workers and the balance",
            timeout_s=60,
        )

    def paint(self):
        layer = self.doc.createNode("painting", "paintlayer")
        self.doc.rootNode().addChildNode(layer, None)
        layer.setPixelData(painted_content(DOC_SIZE), 0, 0, DOC_SIZE, DOC_SIZE)
        self.doc.waitForDone()
        self.doc.refreshProjection()
        self.painting = layer
        self.next_step(300)

    def screenshot_at_rest(self):
        selection = Selection()
        selection.select(64, 96, 256, 192, 255)
        self.doc.setSelection(selection)
        self.docker.update_plan()
        self.wait_until(
            lambda: self.docker.price is not None,
            self._rest_done,
            "the price of the planned job",
            timeout_s=30,
        )

    def _rest_done(self):
        self.report["plan_text"] = self.docker.plan_label.text()
        self.report["kudos_text"] = self.docker.kudos_label.text()
        self.grab("docker-at-rest")
        self.next_step()

    def _active_is_painting(self):
        active = self.doc.activeNode()
        return active is not None and active.name() == "painting"

    def preview_job(self):
        """A longer job: its preview layer must appear (with pixels) before its results."""
        self.doc.setActiveNode(self.painting)
        self.docker.apply_settings(
            {"insert_all": True, "steps": self.config["preview_steps"], "n": 1}
        )
        job_id = self.docker.generate()
        self.report["preview"] = {"job_id": job_id, "seen": False}

        def preview_node():
            return next(
                (n for n in all_nodes(self.doc.rootNode()) if n.name().startswith("Horde preview")),
                None,
            )

        def seen():
            node = preview_node()
            if node is not None and bytes(node.pixelData(64, 96, 256, 192)).strip(b"\x00"):
                return True
            return self.outcome(job_id) is not None

        def after_preview():
            node = preview_node()
            info = self.report["preview"]
            info["seen"] = node is not None
            if node is not None:
                info["layer"] = layer_info(node)
                info["active_is_painting"] = self._active_is_painting()
                self.grab("docker-job", show=self.docker.queue_view)
                self.grab("window-job", self.app.activeWindow().qwindow())
            self.wait_until(
                lambda: self.outcome(job_id) is not None, preview_done, "the preview job"
            )

        def preview_done():
            info = self.report["preview"]
            info["outcome"] = self.outcome(job_id)
            info["left_after"] = preview_node() is not None
            info["active_is_painting_after"] = self._active_is_painting()
            self.next_step(100)

        self.wait_until(seen, after_preview, "a preview layer")

    def history_job(self):
        self.docker.apply_settings({"insert_all": False, "steps": 6, "n": 2})
        before = len(all_nodes(self.doc.rootNode()))
        job_id = self.docker.generate()

        def done():
            self.report["history"] = {
                "outcome": self.outcome(job_id),
                "nodes_added": len(all_nodes(self.doc.rootNode())) - before,
                "items": [
                    {"seed": item.seed, "applied": item.applied}
                    for item in self.docker.history.items.values()
                ],
            }
            self.grab("docker-history", show=self.docker.history_view)
            self.next_step(100)

        self.wait_until(lambda: self.outcome(job_id) is not None, done, "the history job")

    def apply_from_history(self):
        applied = []
        self.docker.history.applied.connect(lambda item_id, names: applied.append(names))
        self.docker.history.apply_failed.connect(
            lambda item_id, message: applied.append(["error: " + message])
        )
        view = self.docker.history_view
        view.history_list.setCurrentRow(0)
        view.apply_button.click()

        def done():
            names = applied[0]
            self.report["apply_active_now"] = self._active_is_painting()
            nodes = [n for n in all_nodes(self.doc.rootNode()) if n.name() in names]
            self.report["applied"] = {
                "names": names,
                "layers": [layer_info(n) for n in nodes],
                "active_is_painting": self._active_is_painting(),
            }
            self.next_step(100)

        self.wait_until(lambda: bool(applied), done, "applying from the history", timeout_s=60)

    def concurrent_jobs(self):
        self.docker.apply_settings({"insert_all": True, "n": 1, "prompt": "a red barn"})
        first = self.docker.generate()
        second = self.docker.generate()
        rows = [row.label.text() for row in self.docker.queue_view.rows.values()]

        def done():
            self.report["concurrent"] = {
                "outcomes": [self.outcome(first), self.outcome(second)],
                "rows_while_running": rows,
                "groups": [
                    n.name()
                    for n in self.doc.rootNode().childNodes()
                    if n.name().startswith("Horde #")
                ],
            }
            self.next_step(100)

        self.wait_until(
            lambda: self.outcome(first) is not None and self.outcome(second) is not None,
            done,
            "two concurrent jobs",
        )

    def outpaint(self):
        self.app.action("deselect").trigger()
        before = (self.doc.width(), self.doc.height())
        existing = {n.uniqueId().toString() for n in all_nodes(self.doc.rootNode())}
        job_id = self.docker.outpaint(right=64)

        def done():
            self.doc.waitForDone()
            self.doc.refreshProjection()
            names = (self.outcome(job_id) or ("", []))[1]
            nodes = [
                n
                for n in all_nodes(self.doc.rootNode())
                if n.name() in names and n.uniqueId().toString() not in existing
            ]
            info = {
                "outcome": self.outcome(job_id),
                "size_before": list(before),
                "size_after": [self.doc.width(), self.doc.height()],
                "layers": [layer_info(n) for n in nodes],
                "groups": [layer_info(n.parentNode()) for n in nodes],
            }
            self.report["outpaint"] = info
            self.undo_tries = 0
            self.next_step(100)

        self.wait_until(lambda: self.outcome(job_id) is not None, done, "the outpainting job")

    def undo_outpaint(self):
        """Edit › Undo until the canvas is back to its old width (at most 8 steps: the result's
        layers may be undo steps of their own); the resize must be one step of the history."""
        info = self.report["outpaint"]
        if self.doc.width() == info["size_before"][0] or self.undo_tries >= 8:
            info["size_after_undo"] = [self.doc.width(), self.doc.height()]
            info["undo_steps"] = self.undo_tries
            self.next_step(100)
            return
        self.undo_tries += 1
        undo = self.app.action("edit_undo")
        # What this step undoes, as Krita's Edit menu names it ("Undo Add Layer", …).
        info.setdefault("undone", []).append(undo.text())
        undo.trigger()
        self.doc.waitForDone()
        self.steps.insert(0, self.undo_outpaint)
        self.next_step(200)

    def finish(self):
        artifacts = self.config["artifacts"]
        if self.doc is not None:
            try:
                self.doc.exportImage(f"{artifacts}/document.png", InfoObject())
                self.doc.waitForDone()
            except Exception:
                self.report["export_error"] = traceback.format_exc()
        self.write_outcome(self.events)
