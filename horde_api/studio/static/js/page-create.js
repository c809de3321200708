// The prompt page: a prompt, a model, a seed, and results as they come; several requests may
// run at once, each in its own card.
import { json } from "./api.js";
import { initChrome, notify, refreshUser } from "./chrome.js";
import { byId } from "./dom.js";
import { baseRequest, fieldProblems, randomSeed, setupCommonFields } from "./form.js";
import { JobCard, submitRequest } from "./jobs.js";

const QUOTE_DELAY_MS = 400;

function requestBody() {
  const [width, height] = byId("size").value.split("x").map(Number);
  return baseRequest({ width, height, steps: Number(byId("steps").value) });
}

// The price of what the form would queue (the horde's `dry_run`), kept up to date as it changes.
let quoteTimer = null;
function quoteLater() {
  clearTimeout(quoteTimer);
  quoteTimer = setTimeout(async () => {
    const cost = byId("cost");
    if (!byId("model").value) {
      quoteLater(); // the model list is still loading
      return;
    }
    if (fieldProblems().length) {
      cost.textContent = "";
      return;
    }
    try {
      const quote = await json("/generate/async", {
        method: "POST",
        body: { ...requestBody(), dry_run: true },
      });
      cost.textContent = `Costs ${quote.kudos.toFixed(2)} kudos`;
    } catch (failure) {
      cost.textContent = failure.message;
    }
  }, QUOTE_DELAY_MS);
}

async function generate(event) {
  event.preventDefault();
  const problems = fieldProblems();
  if (problems.length) {
    notify(`Please fix: ${problems.join("; ")}`, "error");
    return;
  }
  const body = requestBody();
  const button = byId("generate");
  button.setAttribute("aria-busy", "true");
  try {
    const queued = await submitRequest(body, null);
    notify("");
    const card = new JobCard(queued.id, body.prompt, {
      warnings: queued.warnings,
      onDone: refreshUser,
    });
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
byId("generate-form").addEventListener("input", quoteLater);
byId("generate-form").addEventListener("change", quoteLater);
initChrome(quoteLater);
