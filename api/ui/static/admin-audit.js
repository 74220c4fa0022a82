// The audit log: who did what, newest first, filtered by key, action, collection and time,
// a page at a time ("Newer" / "Older").

import { api, h, when } from "./ui.js";
import { loader, table } from "./admin-common.js";

const PAGE = 50;

const COLUMNS = [
  { label: "Time", cell: (e) => h("time", { datetime: e.at }, when(e.at)) },
  { label: "Key", cell: (e) => e.key_name },
  { label: "User", cell: (e) => e.user, optional: true },
  { label: "Action", cell: (e) => h("code", {}, e.action) },
  { label: "Collection", cell: (e) => e.collection },
  { label: "Target", cell: (e) => e.target, optional: true },
  { label: "Status", cell: (e) => String(e.status), num: true },
  {
    label: "Detail",
    cell: ({ detail }) =>
      Object.keys(detail).length ? h("code", { class: "detail" }, JSON.stringify(detail)) : null,
    optional: true,
  },
];

/** The form's filters as query parameters (times from the browser's zone to UTC). */
function filters(form) {
  const query = new URLSearchParams();
  for (const name of ["key", "action", "collection"]) {
    const value = form.elements[name].value.trim();
    if (value) query.set(name, value);
  }
  for (const name of ["since", "until"]) {
    const value = form.elements[name].value;
    if (value) query.set(name, new Date(value).toISOString());
  }
  return query;
}

export function auditTab(panel) {
  const form = panel.querySelector("#audit-form");
  const older = panel.querySelector("#audit-older");
  const newer = panel.querySelector("#audit-newer");
  let offset = 0;
  let query = filters(form);

  const load = loader(
    panel,
    (signal) => {
      // One more than a page: whether there is an older page.
      const params = new URLSearchParams(query);
      params.set("limit", String(PAGE + 1));
      params.set("offset", String(offset));
      return api(`/v1/audit?${params}`, { signal });
    },
    (entries, list) => {
      const shown = entries.slice(0, PAGE);
      const empty = query.toString()
        ? "No entries match these filters."
        : "The audit log is empty.";
      list.replaceChildren(table("Audit log", COLUMNS, shown, empty));
      older.disabled = entries.length <= PAGE;
      newer.disabled = offset === 0;
      if (!shown.length) return offset ? "No older entries." : "";
      return `Entries ${offset + 1}–${offset + shown.length}, newest first`;
    },
  );

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    query = filters(form);
    offset = 0;
    load();
  });
  form.addEventListener("reset", () => {
    // The fields are cleared after this event.
    setTimeout(() => form.requestSubmit());
  });
  // A pager button disabled at the last page would drop the focus: hand it to the other one.
  older.addEventListener("click", async () => {
    offset += PAGE;
    await load();
    if (older.disabled && !newer.disabled) newer.focus();
  });
  newer.addEventListener("click", async () => {
    offset = Math.max(0, offset - PAGE);
    await load();
    if (newer.disabled && !older.disabled) older.focus();
  });

  // Key names to pick from in the filter; without them the field still takes any name.
  api("/v1/keys")
    .then((keys) => {
      const names = [...new Set(keys.map((k) => k.name))].sort();
      const options = names.map((n) => h("option", { value: n }));
      panel.querySelector("#audit-keys").replaceChildren(...options);
    })
    .catch(() => {});

  return load;
}
