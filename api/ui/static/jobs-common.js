// What the documents page and the job page both show of a job: its status, counts per state,
// rate and time left, and its live progress over the job's Server-Sent Events.

import { api, h } from "./ui.js";

/** A job in one of these states may still change. */
export const ACTIVE = new Set(["queued", "running", "paused"]);
/** A job item's states, in the order a document goes through them. */
export const STATES = ["queued", "parsing", "embedding", "done", "failed", "skipped"];

export function jobUrl(id) {
  return `/ui/jobs/${encodeURIComponent(id)}`;
}

export function rate(job) {
  const n = job.docs_per_s;
  return n == null ? "—" : `${n.toFixed(n < 10 ? 1 : 0)} docs/s`;
}

/** Seconds left, readable: "40 s", "3 min", "1 h 5 min"; "—" when unknown or finished. */
export function eta(job) {
  const s = job.eta_s;
  if (s == null || !ACTIVE.has(job.status)) return "—";
  if (s < 60) return `${Math.max(1, Math.round(s))} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** "12 of 40 finished". */
export function finished(job) {
  const n = (job.counts.done || 0) + (job.counts.failed || 0) + (job.counts.skipped || 0);
  return `${n} of ${job.total} finished`;
}

/** A progress bar for the job, named by `label` for screen readers. */
export function jobProgress(job, label) {
  return h("progress", { max: 1, value: job.progress, "aria-label": label });
}

/** The counts per state as a list of "state n" pairs (zeros dimmed). */
export function countsList(job) {
  return h(
    "dl",
    { class: "counts" },
    STATES.map((state) =>
      h(
        "div",
        { class: job.counts[state] ? state : `${state} zero` },
        h("dt", {}, state),
        h("dd", {}, String(job.counts[state] || 0)),
      ),
    ),
  );
}

// Browsers keep about six connections per server: a page watching many jobs at once would
// leave none for its other calls. Streams past this many wait for one to end.
const MAX_STREAMS = 3;
let open = 0;
const waiting = [];

function release() {
  open -= 1;
  waiting.shift()?.();
}

/**
 * Follow a job live: `onProgress(job)` on each change (the job without its documents), then
 * `onDone(job)` once when it has finished or was cancelled; `onError(error)` when the stream
 * is refused (its reason asked of the API). Returns a function that stops watching.
 */
export function watchJob(id, { onProgress = () => {}, onDone = () => {}, onError = () => {} }) {
  let source = null;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    if (source) {
      source.close();
      release();
    }
  };
  const start = () => {
    if (stopped) {
      waiting.shift()?.();
      return;
    }
    open += 1;
    source = new EventSource(`/v1/jobs/${encodeURIComponent(id)}/events`);
    source.addEventListener("progress", (event) => onProgress(JSON.parse(event.data)));
    source.addEventListener("done", (event) => {
      stop();
      onDone(JSON.parse(event.data));
    });
    source.addEventListener("error", () => {
      // A dropped connection is retried by the browser; a refused one closes the source.
      if (source.readyState !== EventSource.CLOSED) return;
      stop();
      api(`/v1/jobs/${encodeURIComponent(id)}?documents_limit=0`).then((job) => {
        if (!ACTIVE.has(job.status)) onDone(job);
        else onError(new Error("Lost the job's progress stream: reload the page to follow it."));
      }, onError);
    });
  };
  if (open < MAX_STREAMS) start();
  else waiting.push(start);
  return stop;
}
