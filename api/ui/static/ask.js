// Ask: a conversation over one collection. Answers stream in as their sentences pass
// verification (POST /v1/query, stream_mode "verified"); citations are chips that open the
// source with the supporting passage highlighted (a PDF's page too); ratings are stored.
import { api, collectionPicker, events, h, report, toast } from "./ui.js";
import { openSource } from "./source.js";

const form = document.getElementById("composer");
const input = document.getElementById("question");
const select = document.getElementById("collection");
const turns = document.getElementById("turns");
const stop = document.getElementById("stop");
const send = document.getElementById("send");
const also = document.getElementById("also");
let history = [];
let conversationOf = null; // the collections the conversation's questions went to
let running = null;
// Browser-side timings a test or bench can read: when the first verified text was shown.
window.ragTimings = [];

/** When the first verified text of an answer was on screen (two frames: painted). */
function mark(question, started) {
  const timing = { question, started, shown: performance.now() };
  window.ragTimings.push(timing);
  requestAnimationFrame(() => requestAnimationFrame(() => {
    timing.painted = performance.now();
  }));
}

function busy(controller) {
  running = controller;
  send.disabled = Boolean(controller);
  stop.classList.toggle("hidden", !controller);
}

/** The answer text with its [n] markers as buttons opening citation n. */
function withMarkers(text, citations, collection) {
  const byMarker = new Map(citations.map((c) => [String(c.marker), c]));
  const parts = text.split(/(\[\d+\])/);
  return parts.map((part) => {
    const citation = byMarker.get(part.slice(1, -1));
    if (!/^\[\d+\]$/.test(part) || !citation) return part;
    const label = `Source ${citation.marker}: ${citation.title || citation.source}`;
    return h("button", { type: "button", class: "chip marker", "aria-label": label,
      onclick: () => openSource(citation, collection) }, part);
  });
}

function chip(citation, collection) {
  const where = citation.page ? `, p. ${citation.page}` : "";
  const other = citation.collection && citation.collection !== collection;
  return h("button", { type: "button", class: "chip",
    title: citation.snippet, onclick: () => openSource(citation, collection) },
    `[${citation.marker}] ${citation.title || citation.source}${where}`,
    other ? ` · ${citation.collection}` : "");
}

/** The collections ticked under "Also search", besides the one selected. */
function alsoSearched() {
  return [...also.querySelectorAll("input:checked")].map((i) => i.value)
    .filter((name) => name !== select.value);
}

/** A checkbox per collection but the selected one. */
function offerOthers(names) {
  const ticked = new Set(alsoSearched());
  also.querySelectorAll("label").forEach((label) => label.remove());
  for (const name of names.filter((n) => n !== select.value)) {
    also.append(h("label", { class: "check" },
      h("input", { type: "checkbox", value: name, checked: ticked.has(name) }), name));
  }
  document.getElementById("more").classList.toggle("hidden", names.length < 2);
}

function meta(answer) {
  const route = answer.route;
  const parts = [];
  if (answer.model) parts.push(`Model: ${answer.model}${route ? ` (${route.model})` : ""}`);
  else parts.push("No model answered");
  if (route && route.cost_usd) parts.push(`cost $${route.cost_usd.toFixed(5)}`);
  const t = answer.timings;
  parts.push(`${Math.round(t.total_ms)} ms (search ${Math.round(t.retrieval_ms)}, ` +
    `model ${Math.round(t.generation_ms)}, checks ${Math.round(t.verification_ms)})`);
  return parts.join(" · ");
}

function feedback(answerId) {
  const box = h("div", { class: "feedback", role: "group", "aria-label": "Rate this answer" });
  const rate = async (value, button) => {
    try {
      await api("/v1/feedback", { method: "POST", json: { answer_id: answerId, value } });
      for (const b of box.querySelectorAll("button")) b.setAttribute("aria-pressed", b === button);
      toast("Thanks: your rating is saved.");
    } catch (error) {
      report(error);
    }
  };
  const up = h("button", { type: "button", "aria-pressed": "false", onclick: () => rate(1, up) },
    "Good answer");
  const down = h("button", { type: "button", "aria-pressed": "false",
    onclick: () => rate(-1, down) }, "Bad answer");
  box.append(up, down);
  return box;
}

function finish(view, answer, collection) {
  const { text, chips, info } = view;
  text.classList.remove("cursor");
  text.setAttribute("aria-busy", "false");
  if (answer.answerable) {
    text.replaceChildren(...withMarkers(answer.cited_answer || answer.answer, answer.citations,
      collection));
  } else {
    text.classList.add("abstain");
    text.textContent = answer.answer || "The documents do not answer this question.";
  }
  chips.replaceChildren(...answer.citations.map((c) => chip(c, collection)));
  info.textContent = meta(answer);
  if (answer.answer_id) info.after(feedback(answer.answer_id));
}

async function ask(question) {
  const collection = select.value;
  const others = alsoSearched();
  const searched = [collection, ...others].join(",");
  const text = h("div", { class: "answer cursor", "aria-live": "polite", "aria-busy": "true" });
  const chips = h("div", { class: "chips", "aria-label": "Sources" });
  const info = h("p", { class: "meta" });
  const turn = h("li", { class: "turn card" }, h("p", { class: "question" }, question), text,
    chips, info);
  turns.append(turn);
  document.getElementById("empty")?.remove();
  turn.scrollIntoView({ block: "nearest" });
  const controller = new AbortController();
  busy(controller);
  if (searched !== conversationOf) history = []; // a follow-up never spans other collections
  const body = { collection, collections: others, question, history, stream: true,
    stream_mode: "verified" };
  const started = performance.now();
  let shown = false;
  try {
    const response = await api("/v1/query", { method: "POST", json: body, raw: true,
      signal: controller.signal });
    for await (const { event, data } of events(response)) {
      if (event === "verified") {
        text.append(data.cited || data.text);
        if (!shown) mark(question, started);
        shown = true;
      } else if (event === "answer") {
        finish({ text, chips, info }, data, collection);
      } else if (event === "error") {
        throw new Error(data.message);
      }
    }
    history = [...history, question].slice(-10);
    conversationOf = searched;
  } catch (error) {
    text.classList.remove("cursor");
    text.setAttribute("aria-busy", "false");
    if (error.name === "AbortError") {
      text.append(h("span", { class: "muted" }, shown ? " (stopped)" : "Stopped."));
    } else {
      text.append(h("span", { class: "error", role: "alert" }, error.message));
      input.value = input.value || question; // nothing typed is lost
    }
  } finally {
    busy(null);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question || running) return;
  input.value = "";
  ask(question);
});
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});
stop.addEventListener("click", () => running?.abort());
document.getElementById("new-conversation").addEventListener("click", () => {
  running?.abort();
  history = [];
  turns.replaceChildren();
  input.focus();
});

try {
  const chosen = new URLSearchParams(location.search).get("collection");
  const names = await collectionPicker(select, chosen);
  offerOthers(names);
  select.addEventListener("change", () => offerOthers(names));
  if (!names.length) {
    form.querySelector("fieldset, textarea").disabled = true;
    send.disabled = true;
    toast("No collection to ask yet: upload documents first.", "error");
  }
} catch (error) {
  report(error);
}
