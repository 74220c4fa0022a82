// The source panel: a cited document's text (only what this key may read, from /v1) with the
// supporting passage highlighted and scrolled to; for a PDF, the cited page as rendered from
// the stored file, the passage's words marked on it.
import { api, h, report } from "./ui.js";

const panel = document.getElementById("source");
const layout = document.getElementById("ask");
const title = document.getElementById("source-title");
const meta = document.getElementById("source-meta");
const pageImage = document.getElementById("source-page");
const body = document.getElementById("source-text");
const texts = new Map(); // document text per collection/id: a second click needs no request

document.getElementById("source-close").addEventListener("click", close);
panel.addEventListener("keydown", (event) => {
  if (event.key === "Escape") close();
});

function close() {
  panel.classList.add("hidden");
  layout.classList.add("no-source");
}

/** Where `snippet` is in `text`: exact, else ignoring differences in white space. */
function locate(text, snippet) {
  const exact = text.indexOf(snippet);
  if (exact >= 0) return [exact, exact + snippet.length];
  const words = snippet.trim().split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const match = new RegExp(words.join("\\s+")).exec(text);
  return match ? [match.index, match.index + match[0].length] : null;
}

async function documentText(collection, id) {
  const key = `${collection}/${id}`;
  if (!texts.has(key)) {
    const path = `/v1/collections/${encodeURIComponent(collection)}/documents/${encodeURIComponent(id)}/text`;
    texts.set(key, api(path));
  }
  try {
    return await texts.get(key);
  } catch (error) {
    texts.delete(key);
    throw error;
  }
}

function showPage(citation, collection) {
  const isPdf = /\.pdf$/i.test(citation.source);
  pageImage.classList.toggle("hidden", !(isPdf && citation.page));
  if (!isPdf || !citation.page) {
    pageImage.removeAttribute("src");
    return;
  }
  const base = `/v1/collections/${encodeURIComponent(collection)}/documents/`;
  const query = new URLSearchParams({ chunk_id: citation.chunk_id });
  pageImage.alt = `Page ${citation.page} of ${citation.title || citation.source}, the passage highlighted`;
  pageImage.onerror = () => pageImage.classList.add("hidden");
  pageImage.src = `${base}${encodeURIComponent(citation.document_id)}/pages/${citation.page}?${query}`;
}

export async function openSource(citation, selected) {
  const collection = citation.collection || selected;
  panel.classList.remove("hidden");
  layout.classList.remove("no-source");
  title.textContent = `[${citation.marker}] ${citation.title || citation.source}`;
  meta.textContent = [citation.source, citation.section, citation.page && `page ${citation.page}`]
    .filter(Boolean).join(" · ");
  body.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  showPage(citation, collection);
  panel.focus({ preventScroll: true });
  if (matchMedia("(max-width: 900px)").matches) panel.scrollIntoView(); // stacked below
  try {
    const doc = await documentText(collection, citation.document_id);
    const span = locate(doc.text, citation.snippet);
    if (!span) {
      body.replaceChildren(h("mark", {}, citation.snippet), "\n\n", doc.text);
    } else {
      const [start, end] = span;
      body.replaceChildren(doc.text.slice(0, start), h("mark", {}, doc.text.slice(start, end)),
        doc.text.slice(end));
    }
    // The passage a third of the way down the panel; the page itself does not move.
    const mark = body.querySelector("mark");
    panel.scrollTop = Math.max(0, mark.offsetTop - panel.clientHeight / 3);
  } catch (error) {
    body.replaceChildren(h("p", { class: "error" }, error.message));
    report(error);
  }
}
