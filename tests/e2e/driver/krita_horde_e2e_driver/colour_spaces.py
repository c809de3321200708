"""Documents in colour models Krita converts for the plug-in (CMYK, Lab), in the real Krita: for
each, a known colour is painted, a rectangle selected and one img2img job run with its result
added as a layer. The report says what the horde was sent (the source image's colour), where
the result layer landed, in which colour space, and how far its colours (read back as 8-bit
sRGB through Krita) are from the image the worker returned."""

from krita import Selection

from .scenario import all_nodes
from .steps import StepRunner

SIZE = 256
RECT = (32, 48, 128, 96)
PAINTED = (40, 80, 200, 255)  # B, G, R, A: a brick red
SRGB = ("RGBA", "U8", "sRGB-elle-V2-srgbtrc.icc")


class ColourSpaceScenario(StepRunner):
    def __init__(self, config_path):
        super().__init__(config_path, {"ok": False, "error": None, "steps": [], "documents": {}})
        self.events = []
        self.steps = [self.find_docker]
        for model, depth in self.config["colour_spaces"]:
            self.steps += [
                lambda m=model, d=depth: self.open_document(m, d),
                self.paint,
                self.generate,
                self.close_document,
            ]
        self.steps += [self.finish, self.quit]

    def find_docker(self):
        if self.live_docker() is None:
            return
        self.docker.job_finished.connect(
            lambda job_id, names: self.events.append(("finished", job_id, list(names)))
        )
        self.docker.job_failed.connect(
            lambda job_id, message: self.events.append(("failed", job_id, message))
        )
        self.docker.apply_settings(self.config["settings"])
        self.wait_until(lambda: self.docker.workers is not None, self.next_step, "the workers")

    def open_document(self, model, depth):
        self.doc = self.app.createDocument(SIZE, SIZE, model, model, depth, "", 72.0)
        self.app.activeWindow().addView(self.doc)
        self.doc.setBatchmode(True)
        self.key = f"{model}/{depth}"
        self.info = self.report["documents"][self.key] = {
            "before": [self.doc.colorModel(), self.doc.colorDepth(), self.doc.colorProfile()]
        }
        self.next_step(200)

    def paint(self):
        """The known colour, painted as 8-bit sRGB and converted into the document's space
        by Krita (like an artist's painting in that space)."""
        layer = self.doc.createNode("painting", "paintlayer")
        layer.setColorSpace(*SRGB)
        layer.setPixelData(bytes(PAINTED) * (SIZE * SIZE), 0, 0, SIZE, SIZE)
        layer.setColorSpace(self.doc.colorModel(), self.doc.colorDepth(), self.doc.colorProfile())
        self.doc.rootNode().addChildNode(layer, None)
        self.doc.waitForDone()
        self.doc.refreshProjection()
        self.info["painting_model"] = layer.colorModel()
        selection = Selection()
        selection.select(*RECT, 255)
        self.doc.setSelection(selection)
        self.next_step(300)

    def generate(self):
        job_id = self.docker.generate()

        def done():
            kind, _, names = next(e for e in self.events if e[1] == job_id)
            self.info["outcome"] = [kind, names]
            if kind == "finished":
                self.inspect(names)
            self.next_step(100)

        self.wait_until(lambda: any(e[1] == job_id for e in self.events), done, "the job")

    def inspect(self, names):
        from krita_horde.images import decode_base64
        from krita_horde.inserter import fit_to_area

        info, doc = self.info, self.doc
        info["after"] = [doc.colorModel(), doc.colorDepth(), doc.colorProfile()]
        item = max(self.docker.history.items.values(), key=lambda i: i.job_number)
        source = decode_base64(item.prepared.payload["source_image"])
        colour = source.pixelColor(source.width() // 2, source.height() // 2)
        info["source_rgb"] = [colour.red(), colour.green(), colour.blue()]
        info["mode"] = item.prepared.mode
        (layer,) = [n for n in all_nodes(doc.rootNode()) if n.name() in names]
        bounds = layer.bounds()
        info["layer"] = {
            "bounds": [bounds.x(), bounds.y(), bounds.width(), bounds.height()],
            "space": [layer.colorModel(), layer.colorDepth(), layer.colorProfile()],
        }
        # The layer's pixels back in 8-bit sRGB (on a copy, through Krita) vs. the image the
        # worker returned, fitted to the area like the plug-in does.
        copy = layer.duplicate()
        copy.setColorSpace(*SRGB)
        x, y, w, h = RECT
        got = bytes(copy.pixelData(x, y, w, h))
        want = fit_to_area(item.image.image, item.prepared.area)
        diffs = [abs(a - b) for i, (a, b) in enumerate(zip(got, want, strict=True)) if i % 4 != 3]
        info["result_mean_abs_diff"] = sum(diffs) / len(diffs)
        info["result_max_abs_diff"] = max(diffs)
        info["result_opaque"] = got[3::4].count(255) == w * h

    def close_document(self):
        self.doc.setModified(False)
        self.doc.close()
        self.doc = None
        self.next_step(300)

    def finish(self):
        self.write_outcome(self.events)
