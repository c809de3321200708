// One library image as a tile: hover (or keyboard focus) enlarges it, a click opens it in the
// advanced page with its settings, and it can be downloaded (or deleted, in the library).
import { imageUrl } from "./api.js";
import { h } from "./dom.js";

export function advancedLink(request, image) {
  const query = new URLSearchParams({ request: request.request_id, image: image.id });
  return `/advanced?${query}`;
}

export async function imageTile(image, request, { onDelete } = {}) {
  const label = `Image ${image.index + 1} of “${request.prompt}”, seed ${image.seed}`;
  const img = h("img", { alt: label, loading: "lazy", class: "tile-image" });
  try {
    img.src = await imageUrl(image.url);
  } catch (failure) {
    img.alt = `${label} (not loaded: ${failure.message})`;
  }
  const actions = [
    h("a", { href: img.src, download: `seed-${image.seed}.webp`, class: "tile-action" }, "Download"),
  ];
  if (onDelete) {
    actions.push(
      h(
        "button",
        { type: "button", class: "tile-action secondary outline", onclick: () => onDelete(image) },
        "Delete",
      ),
    );
  }
  return h(
    "figure",
    { class: "tile", dataset: { imageId: image.id } },
    h(
      "a",
      { href: advancedLink(request, image), class: "tile-open", title: "Open in the advanced page" },
      img,
    ),
    h("figcaption", {}, `Seed ${image.seed}`, image.censored ? " (censored)" : "", " ", ...actions),
  );
}
