// One request from submit to results: queue it (public API), keep it in the library (our
// extension), follow it with long-polled checks, show the worker's preview, then the images.
import { ApiError, call, imageUrl, json } from "./api.js";
import { h, seconds } from "./dom.js";
import { imageTile } from "./gallery.js";

const LONG_POLL_SECONDS = 10;

export function describeCheck(check) {
  if (check.cancelled) return "Cancelled";
  if (check.faulted) return "Failed: the workers could not make it";
  if (check.done) return "Done";
  if (check.processing > 0) {
    return `Generating: ${Math.round((check.progress || 0) * 100)}% ` +
      `(${check.finished} of ${check.finished + check.processing + check.waiting} images done)`;
  }
  const possible = check.is_possible ? "" : " — no worker online can take it now";
  return `Waiting: position ${check.queue_position + 1} in the queue, about ${seconds(check.wait_time)}${possible}`;
}

// Queue `body`, keep it in the library; returns the request id. A request the library cannot
// keep (it is full) is cancelled at once, so nothing runs that would be lost.
export async function submitRequest(body, source) {
  const queued = await json("/generate/async", { method: "POST", body });
  try {
    await json("/library/requests", { method: "POST", body: { id: queued.id, source } });
  } catch (failure) {
    await call(`/generate/status/${queued.id}`, { method: "DELETE" }).catch(() => {});
    throw failure;
  }
  return { id: queued.id, warnings: queued.warnings || [] };
}

export async function cancelRequest(requestId) {
  return json(`/generate/status/${requestId}`, { method: "DELETE" });
}

export class JobCard {
  constructor(requestId, prompt, { onDone = () => {}, warnings = [] } = {}) {
    this.requestId = requestId;
    this.onDone = onDone;
    this.status = h("p", { class: "job-status", role: "status", "aria-live": "polite" }, "Queued");
    this.progress = h("progress", { max: "100", value: "0", "aria-label": "Progress" });
    this.preview = h("img", { class: "job-preview", alt: "The worker's preview", hidden: true });
    this.results = h("div", { class: "gallery" });
    this.cancelButton = h(
      "button",
      { type: "button", class: "secondary outline", onclick: () => this.cancel() },
      "Cancel",
    );
    const notes = warnings.map((warning) => h("p", { class: "muted" }, warning.message));
    this.element = h(
      "article",
      { class: "job", dataset: { requestId } },
      h("header", {}, h("p", { class: "job-prompt" }, prompt)),
      ...notes,
      this.status,
      this.progress,
      this.preview,
      this.results,
      h("footer", {}, this.cancelButton),
    );
    this.previewStep = -1;
  }

  async cancel() {
    this.cancelButton.disabled = true;
    try {
      await cancelRequest(this.requestId);
    } catch (failure) {
      this.status.textContent = `Could not cancel: ${failure.message}`;
      this.cancelButton.disabled = false;
    }
  }

  async follow() {
    let check = null;
    for (;;) {
      try {
        const wait = check ? `?wait=${LONG_POLL_SECONDS}` : "";
        check = await json(`/generate/check/${this.requestId}${wait}`);
      } catch (failure) {
        this.status.textContent = `Lost track of the request: ${failure.message}`;
        if (failure instanceof ApiError && failure.status === 404) break;
        await new Promise((resolve) => setTimeout(resolve, 2000));
        continue;
      }
      this.update(check);
      if (check.done || check.faulted || check.cancelled) break;
    }
    this.cancelButton.hidden = true;
    this.preview.hidden = true;
    await this.showResults();
    this.onDone(this);
  }

  update(check) {
    this.kudos = check.kudos;
    this.status.textContent = describeCheck(check);
    this.progress.value = Math.round((check.progress || 0) * 100);
    this.element.dataset.state = check.done ? "done" : check.processing ? "running" : "waiting";
    if (check.preview_available && this.progress.value !== this.previewStep) {
      this.previewStep = this.progress.value;
      imageUrl(`/generate/preview/${this.requestId}`, { fresh: true })
        .then((url) => {
          this.preview.src = url;
          this.preview.hidden = false;
        })
        .catch(() => {});
    }
  }

  async showResults() {
    let kept;
    try {
      kept = await json(`/library/requests/${this.requestId}`);
    } catch (failure) {
      this.status.textContent += ` — the library could not show it: ${failure.message}`;
      return;
    }
    this.element.dataset.state = kept.state;
    if (kept.state === "done" && kept.total_seconds !== null) {
      const cost = this.kudos ? ` · ${this.kudos.toFixed(2)} kudos` : "";
      this.status.textContent = `Done in ${seconds(kept.total_seconds)}${cost} — kept in your library`;
    }
    this.progress.value = 100;
    const tiles = await Promise.all(kept.images.map((image) => imageTile(image, kept)));
    this.results.replaceChildren(...tiles);
  }
}
