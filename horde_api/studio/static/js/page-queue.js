// The queue page: your waiting and running requests (the library's pending ones, followed with
// the public `check`), and the horde's queue depth per model (counts only).
import { json } from "./api.js";
import { initChrome, notify } from "./chrome.js";
import { byId, h, seconds } from "./dom.js";
import { cancelRequest, describeCheck } from "./jobs.js";

const REFRESH_MS = 2000;
// A request cancelled from this page leaves the library's pending list as soon as the library
// notices; its row stays this long with "Cancelled", so the artist sees the cancel took effect.
const CANCELLED_SHOWN_MS = 60000;
const cancelledHere = new Map(); // request id -> { kept, until }

function cancelledRow(kept) {
  return h(
    "article",
    { class: "job", dataset: { requestId: kept.request_id, state: "cancelled" } },
    h("header", {}, h("p", { class: "job-prompt" }, kept.prompt)),
    h("p", { class: "job-status" }, "Cancelled"),
  );
}

async function requestRow(kept) {
  let check = null;
  try {
    check = await json(`/generate/check/${kept.request_id}`);
  } catch (failure) {
    return h("article", { class: "job" }, h("p", {}, kept.prompt), h("p", {}, failure.message));
  }
  const cancel = h(
    "button",
    {
      type: "button",
      class: "secondary outline",
      "aria-label": `Cancel “${kept.prompt}”`,
      onclick: async () => {
        cancel.disabled = true;
        try {
          await cancelRequest(kept.request_id);
          cancelledHere.set(kept.request_id, { kept, until: Date.now() + CANCELLED_SHOWN_MS });
          refresh();
        } catch (failure) {
          notify(`Could not cancel: ${failure.message}`, "error");
          cancel.disabled = false;
        }
      },
    },
    "Cancel",
  );
  return h(
    "article",
    { class: "job", dataset: { requestId: kept.request_id, state: check.processing ? "running" : "waiting" } },
    h("header", {}, h("p", { class: "job-prompt" }, kept.prompt)),
    h("p", { class: "muted" }, `${kept.n} image${kept.n === 1 ? "" : "s"} · ${kept.model} · seed ${kept.params.seed ?? "random"}`),
    h("p", { class: "job-status" }, describeCheck(check)),
    h("progress", { max: "100", value: String(Math.round((check.progress || 0) * 100)), "aria-label": "Progress" }),
    h("footer", {}, cancel),
  );
}

function modelRow(model) {
  return h(
    "tr",
    {},
    h("th", { scope: "row" }, model.name),
    h("td", {}, String(model.count)),
    h("td", {}, String(model.jobs)),
    h("td", {}, String(model.queued)),
    h("td", {}, model.jobs ? seconds(model.eta) : "–"),
  );
}

let timer = null;

async function refresh() {
  clearTimeout(timer);
  try {
    const [page, models] = await Promise.all([
      json("/library/requests?state=pending&limit=50"),
      json("/status/models"),
    ]);
    const rows = await Promise.all(page.requests.map(requestRow));
    const pending = new Set(page.requests.map((kept) => kept.request_id));
    for (const [id, { kept, until }] of cancelledHere) {
      if (Date.now() > until) cancelledHere.delete(id);
      else if (!pending.has(id)) rows.push(cancelledRow(kept));
    }
    // Re-rendering must not take the keyboard focus away from a Cancel button.
    const focused = document.activeElement && document.activeElement.closest("article.job");
    const focusedId = focused ? focused.dataset.requestId : null;
    byId("queue-list").replaceChildren(...rows);
    if (focusedId) {
      const again = byId("queue-list").querySelector(`article[data-request-id="${focusedId}"] button`);
      if (again) again.focus();
    }
    byId("queue-empty").hidden = rows.length > 0;
    byId("models-table").tBodies[0].replaceChildren(...models.map(modelRow));
  } catch (failure) {
    notify(`Could not refresh the queue: ${failure.message}`, "error");
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

initChrome(refresh);
