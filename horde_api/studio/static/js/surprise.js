// "Surprise me": a random prompt from a few small word lists.

const SUBJECTS = [
  "a lighthouse on a cliff", "a fox in a snowy forest", "an old tram in the rain",
  "a castle floating on clouds", "a cat reading a book", "a robot tending a garden",
  "a harbour town at night", "a hot-air balloon over mountains", "a dragon made of glass",
  "a desert caravan", "an underwater library", "a tea house in the mist",
];
const STYLES = [
  "oil painting", "watercolour", "ink drawing", "pixel art", "low-poly render",
  "ukiyo-e woodblock print", "charcoal sketch", "art nouveau poster", "gouache illustration",
];
const LIGHT = [
  "at golden hour", "under a full moon", "in soft morning fog", "lit by lanterns",
  "in dramatic storm light", "on a bright spring day",
];
const DETAILS = ["highly detailed", "muted colours", "vivid colours", "wide angle", "close-up"];

function pick(list, random) {
  return list[Math.floor(random() * list.length)];
}

export function surprisePrompt(random = Math.random) {
  return `${pick(SUBJECTS, random)} ${pick(LIGHT, random)}, ${pick(STYLES, random)}, ${pick(DETAILS, random)}`;
}

export function setupSurprise(button, field) {
  button.addEventListener("click", () => {
    let prompt = surprisePrompt();
    while (prompt === field.value) prompt = surprisePrompt();
    field.value = prompt;
    field.dispatchEvent(new Event("input"));
    field.focus();
  });
}
