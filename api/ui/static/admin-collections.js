// Collections: the list, a new one (keys not limited to collections only), delete after
// typing its name.

import { api, h, report, toast, when } from "./ui.js";
import {
  busy,
  clearFormError,
  formError,
  join,
  loader,
  plural,
  table,
  typedConfirm,
} from "./admin-common.js";

export function collectionsTab(panel) {
  const load = loader(
    panel,
    (signal) => api("/v1/collections", { signal }),
    (items, list) => {
      list.replaceChildren(
        table(
          "Collections",
          [
            { label: "Name", cell: (c) => h("strong", {}, c.name) },
            { label: "Description", cell: (c) => c.description || "—", optional: true },
            { label: "Documents", cell: (c) => String(c.document_count), num: true },
            {
              label: "Metadata fields",
              cell: (c) => join(Object.keys(c.metadata_fields)),
              optional: true,
            },
            { label: "Embedding model", cell: (c) => c.embedding_model, optional: true },
            { label: "Created", cell: (c) => when(c.created_at) },
            { label: "Actions", cell: (c) => deleteButton(c.name) },
          ],
          items,
          "No collections yet.",
        ),
      );
      return plural(items.length, "collection");
    },
  );

  function deleteButton(name) {
    return h(
      "button",
      {
        type: "button",
        class: "danger",
        "aria-label": `Delete collection ${name}`,
        onclick: () => remove(name),
      },
      "Delete",
    );
  }

  async function remove(name) {
    const message =
      `Delete the collection “${name}”? Its documents, their files and vectors are removed ` +
      "for good; this cannot be undone.";
    if (!(await typedConfirm(message, name, "Delete collection"))) return;
    try {
      await api(`/v1/collections/${encodeURIComponent(name)}`, { method: "DELETE" });
      toast(`Collection ${name} deleted.`);
      panel.focus();
      await load();
    } catch (error) {
      report(error);
    }
  }

  const form = panel.querySelector("#collection-form");
  form?.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormError(form);
    const name = form.elements.name;
    const json = { name: name.value.trim(), description: form.elements.description.value.trim() };
    try {
      await busy(form.querySelector('[type="submit"]'), () =>
        api("/v1/collections", { method: "POST", json }),
      );
    } catch (error) {
      name.setAttribute("aria-invalid", "true");
      formError(form, error);
      name.focus();
      return;
    }
    name.removeAttribute("aria-invalid");
    form.reset();
    toast(`Collection ${json.name} created.`);
    await load();
  });

  return load;
}
