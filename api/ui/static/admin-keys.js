// API keys: the list, a new key (its secret shown once, with a Copy button), revoke.

import { api, badge, confirmDialog, h, report, toast, when } from "./ui.js";
import {
  busy,
  clearFormError,
  formError,
  join,
  loader,
  plural,
  splitList,
  table,
  yesNo,
} from "./admin-common.js";

// The signed-in key: revoking it also ends this session.
const ME = document.getElementById("admin").dataset.key;

const you = (key) => key.name === ME && h("span", { class: "muted" }, " (you)");

const COLUMNS = [
  { label: "Name", cell: (k) => h("span", {}, h("strong", {}, k.name), you(k)) },
  { label: "Scopes", cell: (k) => join(k.scopes) },
  {
    label: "Collections",
    cell: (k) => (k.collections === null ? "all" : join(k.collections, "none")),
  },
  { label: "Groups", cell: (k) => join(k.groups), optional: true },
  { label: "Delegate", cell: (k) => yesNo(k.delegate), optional: true },
  { label: "Created", cell: (k) => when(k.created_at), optional: true },
  { label: "Last used", cell: (k) => (k.last_used_at ? when(k.last_used_at) : "never") },
  { label: "Status", cell: (k) => badge(k.revoked_at ? "revoked" : "active") },
];

export function keysTab(panel) {
  const columns = [...COLUMNS, { label: "Actions", cell: (k) => !k.revoked_at && revokeButton(k) }];
  const load = loader(
    panel,
    (signal) => api("/v1/keys", { signal }),
    (keys, list) => {
      // Active keys first, newest first within each group.
      const sorted = [...keys].sort(
        (a, b) => !!a.revoked_at - !!b.revoked_at || b.created_at.localeCompare(a.created_at),
      );
      list.replaceChildren(table("API keys", columns, sorted, "No keys yet."));
      const active = keys.filter((k) => !k.revoked_at).length;
      return `${plural(active, "active key")}, ${keys.length - active} revoked`;
    },
  );

  function revokeButton(key) {
    return h(
      "button",
      {
        type: "button",
        class: "danger",
        "aria-label": `Revoke key ${key.name}`,
        onclick: () => revoke(key),
      },
      "Revoke",
    );
  }

  async function revoke(key) {
    let message = `Revoke the key “${key.name}”? Anything using it is refused from now on.`;
    if (key.name === ME) message += " It is the key you are signed in with: it signs you out.";
    if (!(await confirmDialog(message, "Revoke key"))) return;
    try {
      await api(`/v1/keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
      toast(`Key ${key.name} revoked.`);
      panel.focus();
      await load();
    } catch (error) {
      report(error);
    }
  }

  const form = panel.querySelector("#key-form");
  const secret = panel.querySelector("#key-secret");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormError(form);
    const fields = form.elements;
    const collections = splitList(fields.collections.value);
    const json = {
      name: fields.name.value.trim(),
      scopes: [...form.querySelectorAll('[name="scopes"]:checked')].map((box) => box.value),
      collections: collections.length ? collections : null,
      groups: splitList(fields.groups.value),
      delegate: fields.delegate.checked,
    };
    if (!json.scopes.length) {
      formError(form, "Choose at least one scope.");
      form.querySelector('[name="scopes"]').focus();
      return;
    }
    let created;
    try {
      created = await busy(form.querySelector('[type="submit"]'), () =>
        api("/v1/keys", { method: "POST", json }),
      );
    } catch (error) {
      formError(form, error);
      return;
    }
    form.reset();
    showSecret(created);
    await load();
  });

  function showSecret(created) {
    secret.querySelector("#key-secret-title").textContent = `New key “${created.name}”`;
    secret.querySelector("#key-secret-value").textContent = created.key;
    secret.hidden = false;
    secret.focus();
  }

  secret.querySelector("#key-copy").addEventListener("click", async () => {
    const value = secret.querySelector("#key-secret-value");
    try {
      await navigator.clipboard.writeText(value.textContent);
      toast("Key copied to the clipboard.");
    } catch {
      // No clipboard access (plain HTTP, or refused): select it for Ctrl+C instead.
      getSelection().selectAllChildren(value);
      toast("Copying is not allowed here: the key is selected, press Ctrl+C.");
    }
  });

  secret.querySelector("#key-secret-done").addEventListener("click", () => {
    secret.querySelector("#key-secret-value").textContent = "";
    secret.hidden = true;
    form.elements.name.focus();
  });

  return load;
}
