// Shared by every page: /v1 calls as the signed-in session, Server-Sent Events over fetch,
// a DOM builder that only ever sets text (never HTML), toasts and a confirmation dialog.

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const UNREACHABLE = () =>
  new ApiError(0, "unreachable", "The service could not be reached. Is it running?");

function signIn() {
  const next = encodeURIComponent(location.pathname + location.search);
  location.assign(`/ui/login?next=${next}`);
}

async function failure(response) {
  let code = "http_error";
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    code = body.error?.code || code;
    message = body.error?.message || message;
  } catch {
    /* not our JSON error: keep the status line */
  }
  if (response.status === 401) signIn();
  return new ApiError(response.status, code, message);
}

/** A /v1 call; resolves to the parsed JSON (or the Response when `raw`), else throws ApiError. */
export async function api(path, { method = "GET", json, body, signal, raw = false } = {}) {
  const headers = { "X-CSRF-Token": CSRF, Accept: "application/json" };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal, credentials: "same-origin" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw UNREACHABLE();
  }
  if (!response.ok) throw await failure(response);
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** A multipart POST with upload progress (fetch has none): `onProgress(0..1)`; resolves to
 * the JSON, else rejects with an ApiError, as api() does. */
export function upload(path, form, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("X-CSRF-Token", CSRF);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      const response = new Response(xhr.responseText, {
        status: xhr.status,
        statusText: xhr.statusText,
      });
      if (response.ok) resolve(response.json());
      else failure(response).then(reject);
    });
    xhr.addEventListener("error", () => reject(UNREACHABLE()));
    xhr.send(form);
  });
}

/** `task` made safe to call often: one run at a time; calls during a run make one more run,
 * `pauseMs` after it. Errors go to report(). */
export function oneAtATime(task, pauseMs) {
  let running = false;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await task();
    } catch (error) {
      report(error);
    } finally {
      running = false;
      if (again) {
        again = false;
        setTimeout(run, pauseMs);
      }
    }
  };
  return run;
}

/** Each Server-Sent Event of a fetch response, as {event, data} with data parsed as JSON. */
export async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue;
      const text = data.join("\n");
      let parsed = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* a plain-text event */
      }
      yield { event, data: parsed };
    }
  }
}

/** An element: h("a", {href, class: "x", onclick}, "text", child). Strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : null }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 9000 : 4000);
}

/** Show an error from a failed call; AbortError (we cancelled) is silent. */
export function report(error) {
  if (error?.name === "AbortError") return;
  toast(error?.message || String(error), "error");
}

/** A modal question; resolves true when confirmed. */
export function confirmDialog(message, confirm = "Confirm", dismiss = "Cancel") {
  const dialog = h(
    "dialog",
    { "aria-labelledby": "confirm-text" },
    h("p", { id: "confirm-text" }, message),
    h(
      "form",
      { method: "dialog", class: "row" },
      h("button", { value: "cancel", autofocus: true }, dismiss),
      h("button", { value: "ok", class: "danger" }, confirm),
    ),
  );
  return modal(dialog, () => dialog.returnValue === "ok");
}

/** Show `dialog` as a modal; resolves to `result()` once it closes, and removes it. */
export function modal(dialog, result) {
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(result());
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

const BADGES = {
  indexed: "ok", succeeded: "ok", done: "ok", closed: "ok",
  failed: "bad", cancelled: "bad", dead: "bad", open: "bad",
  queued: "warn", paused: "warn", skipped: "warn", duplicate: "warn", half_open: "warn",
  revoked: "bad", active: "ok", rejected: "bad", completed_with_errors: "warn",
};

export function badge(status) {
  return h("span", { class: `badge ${BADGES[status] || "busy"}` }, status.replaceAll("_", " "));
}

/** The collections this key may use, for pickers: [{name, ...}]. */
export async function collections() {
  return api("/v1/collections");
}

/** Fill a <select> with the collections, keeping `chosen` (or the last used) selected. */
export async function collectionPicker(select, chosen) {
  const names = (await collections()).map((c) => c.name);
  const keep = chosen || localStorage.getItem("rag-collection");
  select.replaceChildren(...names.map((n) => h("option", { value: n, selected: n === keep }, n)));
  select.addEventListener("change", () => localStorage.setItem("rag-collection", select.value));
  return names;
}
