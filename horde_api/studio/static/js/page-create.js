// The prompt page: a prompt, a model, a seed, and results as they come; several requests may
// run at once, each in its own card.
import { initChrome, notify } from "./chrome.js";
import { byId } from "./dom.js";
import { baseRequest, fieldProblems, randomSeed, setupCommonFields } from "./form.js";
import { JobCard, submitRequest } from "./jobs.js";

async function generate(event) {
  event.preventDefault();
  const problems = fieldProblems();
  if (problems.length) {
    notify(`Please fix: ${problems.join("; ")}`, "error");
    return;
  }
  const [width, height] = byId("size").value.split("x").map(Number);
  const body = baseRequest({ width, height, steps: Number(byId("steps").value) });
  const button = byId("generate");
  button.setAttribute("aria-busy", "true");
  try {
    const queued = await submitRequest(body, null);
    notify("");
    const card = new JobCard(queued.id, body.prompt, { warnings: queued.warnings });
    byId("jobs-empty").hidden = true;
    byId("jobs").prepend(card.element);
    card.follow();
    byId("seed").value = randomSeed();
  } catch (failure) {
    notify(`Not queued: ${failure.message}`, "error");
  } finally {
    button.removeAttribute("aria-busy");
  }
}

setupCommonFields();
byId("generate-form").addEventListener("submit", generate);
initChrome();
