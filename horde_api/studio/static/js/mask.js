// The source image and the inpainting mask painted over it. The visible mask is a translucent
// overlay; what is sent is a separate black image with the painted parts white (white = repaint,
// as the horde wants), at the source's own size.

export class SourceEditor {
  constructor(sourceCanvas, overlayCanvas) {
    this.source = sourceCanvas;
    this.overlay = overlayCanvas;
    this.mask = document.createElement("canvas");
    this.brush = 32;
    this.painting = false;
    this.painted = false;
    this.enabled = false;
    overlayCanvas.addEventListener("pointerdown", (event) => this.down(event));
    overlayCanvas.addEventListener("pointermove", (event) => this.move(event));
    for (const name of ["pointerup", "pointercancel", "pointerleave"]) {
      overlayCanvas.addEventListener(name, () => {
        this.painting = false;
      });
    }
  }

  get loaded() {
    return this.source.width > 0 && this.source.dataset.loaded === "1";
  }

  async load(blob) {
    const bitmap = await createImageBitmap(blob);
    for (const canvas of [this.source, this.overlay, this.mask]) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
    }
    this.source.getContext("2d").drawImage(bitmap, 0, 0);
    this.source.dataset.loaded = "1";
    this.clearMask();
    return { width: bitmap.width, height: bitmap.height };
  }

  unload() {
    this.source.dataset.loaded = "0";
  }

  clearMask() {
    this.overlay.getContext("2d").clearRect(0, 0, this.overlay.width, this.overlay.height);
    const mask = this.mask.getContext("2d");
    mask.fillStyle = "#000";
    mask.fillRect(0, 0, this.mask.width, this.mask.height);
    this.painted = false;
  }

  maskAll() {
    const overlay = this.overlay.getContext("2d");
    overlay.fillStyle = "rgba(255, 40, 80, 0.45)";
    overlay.fillRect(0, 0, this.overlay.width, this.overlay.height);
    const mask = this.mask.getContext("2d");
    mask.fillStyle = "#fff";
    mask.fillRect(0, 0, this.mask.width, this.mask.height);
    this.painted = true;
  }

  point(event) {
    const box = this.overlay.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) / box.width) * this.overlay.width,
      y: ((event.clientY - box.top) / box.height) * this.overlay.height,
      scale: this.overlay.width / box.width,
    };
  }

  // A stroke from the last point to this one, on the overlay and on the mask alike.
  stroke(to) {
    const from = this.last || to;
    const width = this.brush * to.scale;
    for (const [canvas, colour] of [
      [this.overlay, "rgba(255, 40, 80, 0.45)"],
      [this.mask, "#fff"],
    ]) {
      const context = canvas.getContext("2d");
      context.strokeStyle = colour;
      context.lineWidth = width;
      context.lineCap = "round";
      context.lineJoin = "round";
      context.beginPath();
      context.moveTo(from.x, from.y);
      context.lineTo(to.x + 0.01, to.y);
      context.stroke();
    }
    this.last = to;
    this.painted = true;
  }

  down(event) {
    if (!this.enabled || !this.loaded) return;
    event.preventDefault();
    this.overlay.setPointerCapture(event.pointerId);
    this.painting = true;
    this.last = null;
    this.stroke(this.point(event));
  }

  move(event) {
    if (this.painting) this.stroke(this.point(event));
  }

  // base64 PNGs (without the data: prefix) for source_image and source_mask.
  sourceBase64() {
    return this.source.toDataURL("image/png").split(",", 2)[1];
  }

  maskBase64() {
    return this.mask.toDataURL("image/png").split(",", 2)[1];
  }
}
