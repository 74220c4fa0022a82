// One job, live: status, counts per state, progress, rate and time left from its events
// stream; rejected inputs, failed documents and a page of its documents from GET /v1/jobs/{id};
// the actions that apply to its status (pause, resume, retry failed, cancel).

import { api, badge, confirmDialog, h, oneAtATime, report, toast, when } from "./ui.js";
import {
  ACTIVE,
  countsList,
  eta,
  finished,
  rate,
  watchJob,
} from "./jobs-common.js";

const $ = (id) => document.getElementById(id);
const ID = $("job").dataset.job;
const BASE = `/v1/jobs/${encodeURIComponent(ID)}`;
const PAGE = 100;
const FAILED_SHOWN = 50;
const ANNOUNCE_MS = 5000; // the live summary speaks at most this often while the job runs
let job = null;
let offset = 0;
let stop = null; // stops watching the events stream
let failedSeen = -1;

function fact(term, ...value) {
  return [h("dt", {}, term), h("dd", {}, ...value)];
}

let spoken = 0;
let pending = null;
function announce(text, now) {
  const region = $("job-summary");
  clearTimeout(pending);
  const wait = now ? 0 : spoken + ANNOUNCE_MS - Date.now();
  if (wait <= 0) {
    region.textContent = text;
    spoken = Date.now();
  } else {
    pending = setTimeout(() => announce(text, true), wait);
  }
}

/** The job's summary: everything but its documents (which `loadDocuments` shows). */
function render(next) {
  const changed = !job || job.status !== next.status;
  job = next;
  document.title = `Job ${ID.slice(0, 8)} · ${job.status} · RAG`;
  $("job-status").replaceChildren(badge(job.status));
  const collection = `/ui/documents?collection=${encodeURIComponent(job.collection)}`;
  $("back").href = collection;
  $("facts").replaceChildren(
    ...fact("Collection", h("a", { href: collection }, job.collection)),
    ...fact("From", job.origin),
    ...fact("Started", when(job.created_at)),
    ...fact("Finished", job.finished_at ? when(job.finished_at) : "—"),
    ...fact("Documents", String(job.total)),
    ...fact("Rate", rate(job)),
    ...fact("Time left", eta(job)),
    ...(job.pruned ? fact("Pruned", `${job.pruned} documents gone from the source`) : []),
  );
  $("job-progress").value = job.progress;
  $("counts").replaceChildren(countsList(job));
  announce(`${job.status.replaceAll("_", " ")}: ${finished(job)}`, changed);
  showActions();
  showRejected();
}

function showActions() {
  const active = ACTIVE.has(job.status);
  $("pause").classList.toggle("hidden", !["queued", "running"].includes(job.status));
  $("resume").classList.toggle("hidden", job.status !== "paused");
  $("cancel").classList.toggle("hidden", !active);
  $("retry").classList.toggle("hidden", !(job.counts.failed > 0));
}

function showRejected() {
  $("rejected-section").classList.toggle("hidden", !job.rejected.length);
  $("rejected").replaceChildren(
    ...job.rejected.map((r) =>
      h(
        "li",
        {},
        h("span", { class: "source-name" }, r.name),
        ": ",
        h("span", { class: "reason" }, r.reason),
      ),
    ),
  );
}

async function loadFailed() {
  const failed = job.counts.failed || 0;
  if (failed === failedSeen) return;
  failedSeen = failed;
  $("failed-section").classList.toggle("hidden", !failed);
  if (!failed) return;
  const { documents } = await api(
    `${BASE}?documents_status=failed&documents_limit=${FAILED_SHOWN}`,
  );
  const rest = failed - documents.length;
  const more = rest > 0 ? [h("li", { class: "muted" }, `and ${rest} more`)] : [];
  $("failed").replaceChildren(
    ...documents.map((d) =>
      h(
        "li",
        {},
        h("span", { class: "source-name" }, d.source),
        ": ",
        h("span", { class: "reason" }, d.error || "failed"),
        h("span", { class: "muted" }, ` (${d.attempts} attempt${d.attempts === 1 ? "" : "s"})`),
      ),
    ),
    ...more,
  );
}

function docRow(d) {
  return h(
    "tr",
    {},
    h("td", { class: "source-name" }, d.source),
    h("td", {}, badge(d.status)),
    h("td", { class: "num" }, String(d.chunks)),
    h("td", { class: "num optional" }, String(d.attempts)),
    h("td", { class: d.error ? "error" : "muted" }, d.error || "—"),
  );
}

/** A page of the job's documents, with the summary that came with it. */
async function loadDocuments() {
  const params = new URLSearchParams({
    documents_limit: String(PAGE + 1),
    documents_offset: String(offset),
  });
  const state = $("doc-status").value;
  if (state) params.set("documents_status", state);
  const next = await api(`${BASE}?${params}`);
  render(next);
  const shown = next.documents.slice(0, PAGE);
  $("docs").replaceChildren(...shown.map(docRow));
  $("docs-empty").classList.toggle("hidden", shown.length > 0);
  $("prev-page").disabled = offset === 0;
  $("next-page").disabled = next.documents.length <= PAGE;
  $("page-info").textContent = shown.length ? `${offset + 1}–${offset + shown.length}` : "";
  await loadFailed();
}

// Documents are fetched again as the stream reports changes, one call at a time.
const refresh = oneAtATime(loadDocuments, 1000);

function follow() {
  if (stop || !ACTIVE.has(job.status)) return;
  stop = watchJob(ID, {
    onProgress: (next) => {
      render(next);
      refresh();
    },
    onDone: (next) => {
      stop = null;
      render(next);
      refresh();
    },
    onError: (error) => {
      stop = null;
      report(error);
    },
  });
}

/** An action button: its call, then the job as it answers (and live again if it runs). */
function action(id, run) {
  const button = $(id);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const next = await run();
      if (next) {
        render(next);
        follow();
        refresh();
      }
    } catch (error) {
      report(error);
    } finally {
      button.disabled = false;
    }
  });
}

action("pause", async () => {
  const next = await api(`${BASE}/pause`, { method: "POST" });
  toast("Paused: documents under way finish their current step.");
  return next;
});
action("resume", () => api(`${BASE}/resume`, { method: "POST" }));
action("retry", async () => {
  const next = await api(`${BASE}/retry`, { method: "POST" });
  failedSeen = -1;
  toast("The failed documents are queued again.");
  return next;
});
action("cancel", async () => {
  const sure = await confirmDialog(
    "Cancel this job? Queued documents are dropped; those under way stop at their next step.",
    "Cancel job",
    "Keep it",
  );
  return sure ? api(`${BASE}`, { method: "DELETE" }) : null;
});

$("doc-status").addEventListener("change", () => {
  offset = 0;
  refresh();
});
$("prev-page").addEventListener("click", () => {
  offset = Math.max(0, offset - PAGE);
  refresh();
});
$("next-page").addEventListener("click", () => {
  offset += PAGE;
  refresh();
});

async function start() {
  try {
    await loadDocuments();
  } catch (error) {
    $("job-error").textContent = error.message;
    $("job-error").classList.remove("hidden");
    for (const id of ["job-body", "documents-section"]) $(id).classList.add("hidden");
    return;
  }
  follow();
}

start();
