// What the admin tabs share: a table builder, a panel's load-and-show cycle, inline form errors,
// a confirmation that makes the user type a name, and small formatters.

import { ApiError, h, modal, report } from "./ui.js";

const cls = (column) =>
  [column.num && "num", column.optional && "optional"].filter(Boolean).join(" ") || null;

const header = (column) => h("th", { scope: "col", class: cls(column) }, column.label);
const cell = (column, row) => h("td", { class: cls(column) }, column.cell(row) ?? "—");

/**
 * A scrollable table, or `empty` when there are no rows. Each column is
 * {label, cell: (row) => string|Node, num?: true, optional?: true (hidden below 480 px)}.
 */
export function table(caption, columns, rows, empty) {
  if (!rows.length) return h("p", { class: "empty muted" }, empty);
  return h(
    "div",
    { class: "table-wrap", role: "region", "aria-label": caption, tabindex: "0" },
    h(
      "table",
      {},
      h("caption", { class: "sr-only" }, caption),
      h("thead", {}, h("tr", {}, columns.map(header))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => cell(c, row))))),
    ),
  );
}

/**
 * A tab's data cycle: `request(signal)` then `render(data)` into the panel's [data-list], with
 * [data-status] announcing progress (it is a role=status region) and [data-refresh] reloading.
 * Returns the load function; a failure keeps what was shown and says why.
 */
export function loader(panel, request, render) {
  const status = panel.querySelector("[data-status]");
  const list = panel.querySelector("[data-list]");
  let running = null;
  async function load() {
    running?.abort();
    const mine = (running = new AbortController());
    list.setAttribute("aria-busy", "true");
    status.textContent = "Loading…";
    try {
      const data = await request(mine.signal);
      if (mine.signal.aborted) return;
      status.textContent = render(data, list) || "";
    } catch (error) {
      if (error?.name === "AbortError") return;
      status.textContent = `Could not load: ${error.message}`;
      report(error);
    } finally {
      if (running === mine) list.removeAttribute("aria-busy");
    }
  }
  panel.querySelector("[data-refresh]")?.addEventListener("click", load);
  return load;
}

/**
 * Show an API error (or a message of ours) inside its form, whose inputs keep their values;
 * any other error goes to report().
 */
export function formError(form, error) {
  const box = form.querySelector(".form-error");
  if (typeof error === "string") box.textContent = error;
  else if (error instanceof ApiError) box.textContent = error.message;
  else report(error);
}

export function clearFormError(form) {
  const box = form.querySelector(".form-error");
  if (box) box.textContent = "";
}

/** Run `action` with `button` disabled (no double submit), resolving to its result. */
export async function busy(button, action) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** A modal confirmation that is enabled only once `expected` is typed; resolves true if done. */
export function typedConfirm(message, expected, confirm) {
  const input = h("input", {
    id: "typed-confirm",
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "typed-confirm-text",
  });
  const ok = h("button", { value: "ok", class: "danger", disabled: true }, confirm);
  input.addEventListener("input", () => {
    ok.disabled = input.value !== expected;
  });
  input.addEventListener("keydown", (event) => {
    // Enter would press the form's first button (Cancel): confirm instead once it matches.
    if (event.key !== "Enter") return;
    event.preventDefault();
    if (input.value === expected) dialog.close("ok");
  });
  const dialog = h(
    "dialog",
    { "aria-labelledby": "typed-confirm-text" },
    h("form", { method: "dialog", class: "stack" },
      h("p", { id: "typed-confirm-text" }, message),
      h("label", { for: "typed-confirm" }, "Type ", h("code", {}, expected), " to confirm"),
      input,
      h("div", { class: "row" }, h("button", { value: "cancel" }, "Cancel"), ok),
    ),
  );
  const done = modal(dialog, () => dialog.returnValue === "ok" && input.value === expected);
  input.focus();
  return done;
}

/** "a, b ,,c" → ["a", "b", "c"]. */
export const splitList = (text) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

export const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export const yesNo = (value) => (value ? "yes" : "no");

export const join = (items, none = "—") => (items && items.length ? items.join(", ") : none);

export function number(value, digits = 2) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
}
