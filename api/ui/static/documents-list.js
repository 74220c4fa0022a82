// The collection's documents: a page of them (status filter, limit/offset), who may read each,
// and two actions: change who may read it (a dialog) and delete it (after a confirmation).

import { api, badge, bytes, confirmDialog, h, report, toast, when } from "./ui.js";

const enc = encodeURIComponent;
const names = (raw) =>
  raw
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);

function readers(doc) {
  if (!doc.allowed_groups.length && !doc.allowed_users.length) {
    return h("span", { class: "muted" }, "everyone");
  }
  const line = (label, list) =>
    list.length ? h("div", {}, h("span", { class: "muted" }, `${label}: `), list.join(", ")) : null;
  const groups = line("groups", doc.allowed_groups);
  return h("div", { class: "readers" }, groups, line("users", doc.allowed_users));
}

/**
 * `list.load()` shows the current page of `collection()`'s documents; `list.reset()` goes back
 * to the first page (a new collection or filter).
 */
export function documentList(parts) {
  const { body, empty, heading, filter, size, prev, next, info, dialog, collection } = parts;
  const form = dialog.querySelector("form");
  const groups = dialog.querySelector("#access-groups");
  const users = dialog.querySelector("#access-users");
  const error = dialog.querySelector("#access-error");
  let offset = 0;
  let editing = null; // the document whose access the dialog shows
  let loading = null;

  async function load() {
    const target = collection();
    if (!target) return;
    const limit = Number(size.value);
    const params = new URLSearchParams({ limit: String(limit + 1), offset: String(offset) });
    if (filter.value) params.set("status", filter.value);
    loading?.abort();
    const mine = (loading = new AbortController());
    let docs;
    try {
      const url = `/v1/collections/${enc(target)}/documents?${params}`;
      docs = await api(url, { signal: mine.signal });
    } catch (failure) {
      report(failure);
      return;
    }
    if (!docs.length && offset > 0) {
      offset = Math.max(0, offset - limit); // the last page emptied (deletes): the one before
      return load();
    }
    const more = docs.length > limit;
    const shown = docs.slice(0, limit);
    body.replaceChildren(...shown.map((doc) => row(target, doc)));
    empty.classList.toggle("hidden", shown.length > 0);
    prev.disabled = offset === 0;
    next.disabled = !more;
    info.textContent = shown.length ? `${offset + 1}–${offset + shown.length}` : "";
  }

  function row(target, doc) {
    const status = [badge(doc.status)];
    if (doc.error) status.push(h("div", { class: "muted small" }, doc.error));
    if (doc.duplicate_of) status.push(h("div", { class: "muted small" }, "same as another"));
    return h(
      "tr",
      {},
      h("td", { class: "source-name" }, doc.source),
      h("td", { class: "optional" }, doc.title || "—"),
      h("td", {}, ...status),
      h("td", { class: "num optional" }, String(doc.version)),
      h("td", { class: "num" }, String(doc.chunk_count)),
      h("td", { class: "num optional" }, bytes(doc.size_bytes)),
      h("td", { class: "optional" }, when(doc.updated_at)),
      h("td", {}, readers(doc)),
      h(
        "td",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            onclick: () => edit(doc),
            "aria-label": `Edit access of ${doc.source}`,
          },
          "Edit access",
        ),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            onclick: () => remove(target, doc),
            "aria-label": `Delete ${doc.source}`,
          },
          "Delete",
        ),
      ),
    );
  }

  function edit(doc) {
    editing = { collection: collection(), doc };
    dialog.querySelector("#access-source").textContent = doc.source;
    groups.value = doc.allowed_groups.join(", ");
    users.value = doc.allowed_users.join(", ");
    error.textContent = "";
    dialog.showModal();
    groups.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault(); // closed on success only: an error keeps what was typed
    if (!editing) return;
    const { collection: target, doc } = editing;
    const save = form.querySelector("#access-save");
    save.disabled = true;
    error.textContent = "";
    try {
      const url = `/v1/collections/${enc(target)}/documents/${enc(doc.id)}/permissions`;
      const json = { allowed_groups: names(groups.value), allowed_users: names(users.value) };
      await api(url, { method: "PUT", json });
      dialog.close();
      toast(`Access to ${doc.source} changed.`);
      await load();
      // The row was drawn again: keep the keyboard where it was.
      const label = CSS.escape(`Edit access of ${doc.source}`);
      body.querySelector(`button[aria-label="${label}"]`)?.focus();
    } catch (failure) {
      error.textContent = failure.message;
    } finally {
      save.disabled = false;
    }
  });
  dialog.querySelector("#access-cancel").addEventListener("click", () => dialog.close());

  async function remove(target, doc) {
    const ok = await confirmDialog(
      `Delete ${doc.source}? Its passages leave the index and its file is removed.`,
      "Delete",
    );
    if (!ok) return;
    try {
      await api(`/v1/collections/${enc(target)}/documents/${enc(doc.id)}`, { method: "DELETE" });
      toast(`${doc.source} deleted.`);
    } catch (failure) {
      report(failure);
    }
    await load();
    heading.focus(); // its row is gone: the table's heading is the nearest place
  }

  const reset = () => {
    offset = 0;
    return load();
  };
  filter.addEventListener("change", reset);
  size.addEventListener("change", reset);
  prev.addEventListener("click", () => {
    offset = Math.max(0, offset - Number(size.value));
    load();
  });
  next.addEventListener("click", () => {
    offset += Number(size.value);
    load();
  });
  return { load, reset };
}
