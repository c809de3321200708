// The parts of the prompt and advanced forms they share: models with live worker counts, the
// random seed, and turning the fields into a /generate/async body.
import { json } from "./api.js";
import { byId, h } from "./dom.js";
import { setupSurprise } from "./surprise.js";

const MODEL = "studio.model";

export function randomSeed() {
  const value = new Uint32Array(1);
  crypto.getRandomValues(value);
  return String(value[0] % 1000000000);
}

export async function loadModels(select) {
  let models = [];
  try {
    models = await json("/status/models");
  } catch (failure) {
    select.replaceChildren(h("option", { value: "" }, `Models unavailable: ${failure.message}`));
    return;
  }
  const wanted = select.value || localStorage.getItem(MODEL);
  const options = models.map((model) =>
    h(
      "option",
      { value: model.name },
      `${model.name} — ${model.count} worker${model.count === 1 ? "" : "s"}` +
        (model.jobs ? `, ${model.jobs} waiting` : ""),
    ),
  );
  if (!options.length) options.push(h("option", { value: "" }, "No worker is online"));
  select.replaceChildren(...options);
  if (wanted && models.some((model) => model.name === wanted)) select.value = wanted;
}

export function setupCommonFields() {
  setupSurprise(byId("surprise"), byId("prompt"));
  const seed = byId("seed");
  seed.value = randomSeed();
  byId("new-seed").addEventListener("click", () => {
    seed.value = randomSeed();
  });
  const model = byId("model");
  model.addEventListener("change", () => localStorage.setItem(MODEL, model.value));
  loadModels(model);
  setInterval(() => loadModels(model), 15000);
}

// Problems a person can fix before anything is sent; the horde checks everything again.
export function fieldProblems() {
  const problems = [];
  for (const input of byId("generate-form").querySelectorAll("input, select, textarea")) {
    if (input.closest("[hidden]") || input.type === "file") continue;
    if (!input.checkValidity()) {
      const label = input.labels && input.labels[0] ? input.labels[0].firstChild.textContent : input.id;
      problems.push(`${label.trim()}: ${input.validationMessage}`);
      input.setAttribute("aria-invalid", "true");
    } else {
      input.removeAttribute("aria-invalid");
    }
  }
  if (!byId("model").value) problems.push("Model: no worker is online to choose");
  return problems;
}

export function promptText() {
  const prompt = byId("prompt").value.trim();
  const negative = byId("negative").value.trim();
  return negative ? `${prompt} ### ${negative}` : prompt;
}

export function baseRequest(params) {
  const seed = byId("seed").value.trim();
  return {
    prompt: promptText(),
    models: [byId("model").value],
    r2: false,
    params: {
      n: Number(byId("n").value),
      seed: seed || undefined,
      seed_variation: 1,
      ...params,
    },
  };
}
