// The advanced page: every generation parameter, a source image (upload, library or URL),
// denoising strength, seed lock and inpainting with a mask painted on the source. Opened from
// the library (`?request=…&image=…`) it starts from that image and its settings.
import { call, imageBlob, json } from "./api.js";
import { initChrome, notify } from "./chrome.js";
import { byId, h } from "./dom.js";
import { baseRequest, fieldProblems, randomSeed, setupCommonFields } from "./form.js";
import { JobCard, submitRequest } from "./jobs.js";
import { SourceEditor } from "./mask.js";

const editor = new SourceEditor(byId("source-canvas"), byId("mask-canvas"));
let sourceNote = null;

function sourceKind() {
  return document.querySelector('input[name="source-kind"]:checked').value;
}

function showSourcePanels() {
  const kind = sourceKind();
  for (const name of ["upload", "library", "url"]) byId(`source-${name}`).hidden = kind !== name;
  if (kind === "none") {
    editor.unload();
    sourceNote = null;
    byId("source-editor").hidden = true;
  }
}

function roundSide(value) {
  return Math.min(1024, Math.max(64, Math.round(value / 64) * 64));
}

async function useSource(blob, note) {
  let size;
  try {
    size = await editor.load(blob);
  } catch {
    notify("That file is not an image this browser can read (PNG, JPEG or WebP).", "error");
    return;
  }
  sourceNote = note;
  byId("width").value = roundSide(size.width);
  byId("height").value = roundSide(size.height);
  byId("source-editor").hidden = false;
  byId("source-label").textContent =
    `Source: ${size.width} × ${size.height} from ${note.kind}${note.label ? ` (${note.label})` : ""}`;
  notify("");
}

async function loadLibraryChoices(selected) {
  const select = byId("source-library-select");
  let page;
  try {
    page = await json("/library/requests?state=kept&limit=50");
  } catch (failure) {
    select.replaceChildren(h("option", { value: "" }, `Library unavailable: ${failure.message}`));
    return [];
  }
  const options = [h("option", { value: "" }, "Choose an image…")];
  for (const kept of page.requests) {
    for (const image of kept.images) {
      options.push(
        h("option", { value: image.id, dataset: { prompt: kept.prompt } },
          `${kept.prompt.slice(0, 60)} — seed ${image.seed}`),
      );
    }
  }
  select.replaceChildren(...options);
  if (selected) select.value = selected;
  return page.requests;
}

async function useLibraryImage(imageId, prompt) {
  const blob = await imageBlob(`/library/images/${imageId}.webp`);
  await useSource(blob, { kind: "library", label: prompt, image_id: imageId });
}

function setField(id, value) {
  if (value !== undefined && value !== null) byId(id).value = value;
}

async function prefillFrom(requestId, imageId) {
  const kept = await json(`/library/requests/${requestId}`);
  const image = kept.images.find((candidate) => candidate.id === imageId) || kept.images[0];
  const p = kept.params;
  setField("prompt", kept.prompt);
  setField("negative", kept.negative_prompt);
  setField("steps", p.steps);
  setField("cfg", p.cfg_scale);
  setField("sampler", p.sampler_name);
  setField("clip-skip", p.clip_skip);
  byId("karras").checked = Boolean(p.karras);
  setField("seed", image ? image.seed : p.seed);
  const model = byId("model");
  if (kept.model && ![...model.options].some((option) => option.value === kept.model)) {
    model.append(h("option", { value: kept.model }, kept.model));
  }
  if (kept.model) model.value = kept.model;
  if (p.denoising_strength) setField("denoise", p.denoising_strength);
  byId("denoise-value").textContent = byId("denoise").value;
  if (image) {
    document.querySelector('input[name="source-kind"][value="library"]').checked = true;
    showSourcePanels();
    await loadLibraryChoices(image.id);
    await useLibraryImage(image.id, kept.prompt);
    setField("width", p.width);
    setField("height", p.height);
  }
  notify(`Starting from “${kept.prompt}”, seed ${image ? image.seed : p.seed}.`);
}

async function fetchUrlSource() {
  const url = byId("source-url-input").value.trim();
  if (!url) {
    notify("Enter the image's http(s) URL first.", "error");
    return;
  }
  const button = byId("source-url-fetch");
  button.setAttribute("aria-busy", "true");
  try {
    const reply = await call("/library/fetch-source", { method: "POST", body: { url } });
    await useSource(await reply.blob(), { kind: "url", label: url });
  } catch (failure) {
    notify(failure.message, "error");
  } finally {
    button.removeAttribute("aria-busy");
  }
}

function setupSource() {
  for (const radio of document.querySelectorAll('input[name="source-kind"]')) {
    radio.addEventListener("change", () => {
      showSourcePanels();
      if (sourceKind() === "library") loadLibraryChoices();
    });
  }
  byId("source-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) useSource(file, { kind: "upload", label: file.name });
  });
  byId("source-library-select").addEventListener("change", (event) => {
    const option = event.target.selectedOptions[0];
    if (option && option.value) useLibraryImage(option.value, option.dataset.prompt || "");
  });
  byId("source-url-fetch").addEventListener("click", fetchUrlSource);
  const processing = byId("processing");
  processing.addEventListener("change", () => {
    const inpainting = processing.value === "inpainting";
    byId("mask-tools").hidden = !inpainting;
    byId("mask-canvas").classList.toggle("painting", inpainting);
    editor.enabled = inpainting;
    if (!inpainting) editor.clearMask();
  });
  byId("brush").addEventListener("input", (event) => {
    editor.brush = Number(event.target.value);
  });
  byId("mask-all").addEventListener("click", () => editor.maskAll());
  byId("mask-clear").addEventListener("click", () => editor.clearMask());
  byId("denoise").addEventListener("input", (event) => {
    byId("denoise-value").textContent = event.target.value;
  });
}

function requestBody() {
  const body = baseRequest({
    width: Number(byId("width").value),
    height: Number(byId("height").value),
    steps: Number(byId("steps").value),
    cfg_scale: Number(byId("cfg").value),
    sampler_name: byId("sampler").value,
    clip_skip: Number(byId("clip-skip").value),
    karras: byId("karras").checked,
  });
  if (sourceKind() !== "none") {
    if (!editor.loaded) throw new Error("Choose the source image first, or pick None.");
    body.source_image = editor.sourceBase64();
    body.params.denoising_strength = Number(byId("denoise").value);
    if (byId("processing").value === "inpainting") {
      if (!editor.painted) throw new Error("Paint the area to repaint on the image, or choose Variations.");
      body.source_processing = "inpainting";
      body.source_mask = editor.maskBase64();
    } else {
      body.source_processing = "img2img";
    }
  }
  return body;
}

async function generate(event) {
  event.preventDefault();
  const problems = fieldProblems();
  if (problems.length) {
    notify(`Please fix: ${problems.join("; ")}`, "error");
    return;
  }
  const button = byId("generate");
  button.setAttribute("aria-busy", "true");
  try {
    const body = requestBody();
    const queued = await submitRequest(body, sourceKind() === "none" ? null : sourceNote);
    notify("");
    const card = new JobCard(queued.id, body.prompt, { warnings: queued.warnings });
    byId("jobs-empty").hidden = true;
    byId("jobs").prepend(card.element);
    card.follow();
    if (!byId("seed-lock").checked) byId("seed").value = randomSeed();
  } catch (failure) {
    notify(`Not queued: ${failure.message}`, "error");
  } finally {
    button.removeAttribute("aria-busy");
  }
}

setupCommonFields();
setupSource();
byId("generate-form").addEventListener("submit", generate);
initChrome(async () => {
  const query = new URLSearchParams(location.search);
  if (query.get("request")) {
    try {
      await prefillFrom(query.get("request"), query.get("image"));
    } catch (failure) {
      notify(`Could not open that library image: ${failure.message}`, "error");
    }
  }
});
