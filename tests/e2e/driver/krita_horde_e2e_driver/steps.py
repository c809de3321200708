"""What both e2e scenarios share: a list of steps run one per event-loop turn (Krita needs
that between node changes), the report, the test document, the docker and quitting Krita."""

import json
import time
import traceback

from krita import Krita
from PyQt5.QtCore import QTimer

DOC_SIZE = 512
POLL_MS = 50


class StepRunner:
    """Subclasses fill `self.steps` and define `finish` (which writes the report)."""

    def __init__(self, config_path, report):
        with open(config_path, encoding="utf-8") as f:
            self.config = json.load(f)
        self.report = report
        self.app = Krita.instance()
        self.doc = None
        self.docker = None
        self.steps = []

    def start(self):
        QTimer.singleShot(self.config.get("start_delay_ms", 500), self._run_next)

    def wait_until(self, condition, then, what, timeout_s=240):
        """Poll `condition` every POLL_MS; call `then()` once true, fail after `timeout_s`."""
        started = time.monotonic()

        def poll():
            try:
                if condition():
                    then()
                    return
            except Exception:
                self.fail(traceback.format_exc())
                return
            if time.monotonic() - started > timeout_s:
                status = self.docker.status_label.text() if self.docker else ""
                self.fail(f"timed out waiting for {what} (status: {status!r})")
                return
            QTimer.singleShot(POLL_MS, poll)

        poll()

    def next_step(self, delay_ms=0):
        QTimer.singleShot(delay_ms, self._run_next)

    def _run_next(self):
        if not self.steps:
            return
        step = self.steps.pop(0)
        self.report["steps"].append(getattr(step, "__name__", "step"))
        try:
            step()
        except Exception:
            self.fail(traceback.format_exc())

    def fail(self, message):
        self.report["error"] = message
        self.steps = [self.finish, self.quit]
        self.next_step()

    def write_report(self):
        with open(self.config["report"], "w", encoding="utf-8") as f:
            json.dump(self.report, f, indent=2)

    def new_document(self):
        """The test document, open in a view; the next step runs 200 ms later."""
        self.report["krita_version"] = self.app.version()
        self.doc = self.app.createDocument(DOC_SIZE, DOC_SIZE, "e2e", "RGBA", "U8", "", 72.0)
        self.app.activeWindow().addView(self.doc)
        self.doc.setBatchmode(True)
        self.next_step(200)

    def live_docker(self):
        """The plug-in's docker, shown (None after failing the run when it is missing)."""
        from krita_horde import docker as docker_module

        dockers = docker_module.live_dockers()
        self.report["docker_found"] = bool(dockers)
        if not dockers:
            self.fail("the krita-horde docker is not registered")
            return None
        self.docker = dockers[0]
        self.docker.show()
        return self.docker

    def write_outcome(self, events):
        """The report, ok unless a step or one of `events` (kind, job id, payload) failed;
        then the next step."""
        failed = [e for e in events if e[0] == "failed"]
        if failed and not self.report["error"]:
            self.report["error"] = f"jobs failed: {failed}"
        self.report["ok"] = self.report["error"] is None
        self.write_report()
        self.next_step(100)

    def finish(self):
        raise NotImplementedError

    def quit(self):
        if self.doc is not None:
            self.doc.setModified(False)
            self.doc.close()
            self.doc = None
        QTimer.singleShot(300, lambda: self.app.action("file_quit").trigger())
