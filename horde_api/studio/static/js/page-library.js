// The library: every request you made with its settings, timing and images, newest first.
import { call, json } from "./api.js";
import { initChrome, notify } from "./chrome.js";
import { byId, h, seconds, when } from "./dom.js";
import { imageTile } from "./gallery.js";

const PAGE_SIZE = 10;
const AUTO = "studio.libraryAutoRefresh";
const AUTO_MS = 5000;
let offset = 0;
let timer = null;

function confirmDelete(text) {
  const dialog = byId("confirm-dialog");
  byId("confirm-text").textContent = text;
  return new Promise((resolve) => {
    const finish = (answer) => {
      dialog.close();
      resolve(answer);
    };
    byId("confirm-delete").onclick = () => finish(true);
    byId("confirm-cancel").onclick = () => finish(false);
    dialog.oncancel = () => resolve(false);
    dialog.showModal();
    byId("confirm-cancel").focus();
  });
}

function settingsList(kept) {
  const p = kept.params;
  const rows = [
    ["Prompt", kept.prompt],
    ["Negative prompt", kept.negative_prompt || "–"],
    ["Model", kept.model || "any"],
    ["Seed", p.seed ?? "random"],
    ["Steps", p.steps],
    ["CFG scale", p.cfg_scale],
    ["Sampler", `${p.sampler_name}${p.karras ? " (Karras)" : ""}`],
    ["Size", `${p.width} × ${p.height}`],
  ];
  if (kept.source_processing) {
    rows.push(["Source", `${kept.source_processing}${kept.source ? ` from ${kept.source.kind}` : ""}` +
      (kept.source && kept.source.label ? `: ${kept.source.label}` : "")]);
    rows.push(["Denoising strength", p.denoising_strength ?? "default"]);
  }
  rows.push(["Made", `${when(kept.queued_at)} · waited ${seconds(kept.wait_seconds)}, ` +
    `generated in ${seconds(kept.generation_seconds)}, ${seconds(kept.total_seconds)} in all`]);
  return h("dl", { class: "settings" }, ...rows.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, String(value))]));
}

async function deleteImage(image) {
  if (!(await confirmDelete(`Delete image with seed ${image.seed}? This cannot be undone.`))) return;
  try {
    await call(`/library/images/${image.id}`, { method: "DELETE" });
    notify(`Deleted the image with seed ${image.seed}.`);
  } catch (failure) {
    notify(`Not deleted: ${failure.message}`, "error");
  }
  refresh();
}

async function deleteRequest(kept) {
  const count = kept.images.length;
  if (!(await confirmDelete(`Delete “${kept.prompt}” and its ${count} image${count === 1 ? "" : "s"}?`))) return;
  try {
    await call(`/library/requests/${kept.request_id}`, { method: "DELETE" });
    notify(`Deleted “${kept.prompt}”.`);
  } catch (failure) {
    notify(`Not deleted: ${failure.message}`, "error");
  }
  refresh();
}

async function requestCard(kept) {
  const tiles = await Promise.all(kept.images.map((image) => imageTile(image, kept, { onDelete: deleteImage })));
  const state = kept.state === "done" ? "" : ` · ${kept.state}`;
  return h(
    "article",
    { class: "kept", dataset: { requestId: kept.request_id, state: kept.state } },
    h("header", {},
      h("h2", { class: "kept-title" }, kept.prompt),
      h("small", { class: "muted" }, `${kept.images.length} of ${kept.n} image${kept.n === 1 ? "" : "s"}${state}`)),
    h("div", { class: "gallery" }, ...tiles),
    h("details", {}, h("summary", {}, "Settings and timing"), settingsList(kept)),
    h("footer", {}, h("button", {
      type: "button", class: "secondary outline", onclick: () => deleteRequest(kept),
      "aria-label": `Delete “${kept.prompt}” and its images`,
    }, "Delete request")),
  );
}

async function refresh() {
  clearTimeout(timer);
  try {
    const [summary, page] = await Promise.all([
      json("/library"),
      json(`/library/requests?limit=${PAGE_SIZE}&offset=${offset}`),
    ]);
    if (!page.requests.length && offset > 0) {
      offset = Math.max(0, offset - PAGE_SIZE);
      return refresh();
    }
    const retention = summary.retention_days ? `, each kept ${summary.retention_days} days` : "";
    byId("library-usage").textContent =
      `${summary.owner}: ${summary.images} of ${summary.max_images} images` +
      (summary.pending_images ? `, ${summary.pending_images} coming` : "") + retention;
    const cards = await Promise.all(page.requests.map(requestCard));
    byId("library-list").replaceChildren(...cards);
    byId("library-empty").hidden = page.total > 0;
    byId("newer").disabled = offset === 0;
    byId("older").disabled = offset + PAGE_SIZE >= page.total;
    const last = Math.min(page.total, offset + PAGE_SIZE);
    byId("page-label").textContent = page.total ? `${offset + 1}–${last} of ${page.total}` : "";
  } catch (failure) {
    notify(`Could not load the library: ${failure.message}`, "error");
  }
  if (byId("auto-refresh").checked) timer = setTimeout(refresh, AUTO_MS);
}

const auto = byId("auto-refresh");
auto.checked = localStorage.getItem(AUTO) === "1";
auto.addEventListener("change", () => {
  localStorage.setItem(AUTO, auto.checked ? "1" : "0");
  refresh();
});
byId("refresh").addEventListener("click", refresh);
byId("newer").addEventListener("click", () => { offset = Math.max(0, offset - PAGE_SIZE); refresh(); });
byId("older").addEventListener("click", () => { offset += PAGE_SIZE; refresh(); });
initChrome(() => { offset = 0; return refresh(); });
