// Uploads: files go to the collection in batches (one job), each archive to a job of its own.
// Every file is a row of the list: its upload progress, then its state in the job, live.

import { api, badge, bytes, h, oneAtATime, report, upload } from "./ui.js";
import { finished, jobUrl, watchJob } from "./jobs-common.js";

const ARCHIVE = /\.(zip|tar|tar\.gz|tgz)$/i;
// Several files per request, under the server's request limit (api.max_upload_mb, 50 MB).
const BATCH_FILES = 100;
const BATCH_BYTES = 20 * 1024 * 1024;
const enc = encodeURIComponent;

/** One uploaded file (or archive) in the list. */
class Row {
  constructor(file, path, list, onChange) {
    this.file = file;
    this.path = path;
    this.onChange = onChange;
    this.state = "waiting";
    this.badge = h("span", { class: "state" });
    this.bar = h("progress", { max: 1, value: 0, "aria-label": `Upload of ${path}` });
    this.note = h("p", { class: "note muted" });
    this.item = h(
      "li",
      { class: "upload" },
      h(
        "span",
        { class: "name", title: path },
        path,
        h("span", { class: "muted" }, ` · ${bytes(file.size)}`),
      ),
      this.badge,
      this.bar,
      this.note,
    );
    list.prepend(this.item);
    this.set("waiting");
  }

  /** Its state (a badge), with an optional reason or note under it. */
  set(state, note = "", ...extra) {
    this.state = state;
    this.badge.replaceChildren(badge(state));
    this.note.replaceChildren(...(note ? [note] : []), ...extra);
    this.note.classList.toggle("error", ["failed", "rejected"].includes(state) && Boolean(note));
    const working = ["queued", "parsing", "embedding", "running", "paused"].includes(state);
    if (working) this.bar.removeAttribute("value"); // under way, no measure: indeterminate
    else if (state !== "uploading" && state !== "waiting") this.bar.value = 1;
    this.bar.classList.toggle("hidden", ["failed", "rejected"].includes(state));
    this.onChange();
  }
}

function appendAccess(form, access) {
  if (access.groups.trim()) form.append("allowed_groups", access.groups);
  if (access.users.trim()) form.append("allowed_users", access.users);
}

function batches(rows) {
  const out = [];
  let current = [];
  let size = 0;
  for (const row of rows) {
    if (current.length && (current.length >= BATCH_FILES || size + row.file.size > BATCH_BYTES)) {
      out.push(current);
      current = [];
      size = 0;
    }
    current.push(row);
    size += row.file.size;
  }
  if (current.length) out.push(current);
  return out;
}

/** Each row's bar gets its share of the request's progress. */
function spread(batch, fraction) {
  const total = batch.reduce((n, row) => n + row.file.size, 0) || 1;
  let start = 0;
  for (const row of batch) {
    const share = row.file.size / total;
    row.bar.value = Math.min(1, Math.max(0, (fraction - start) / (share || 1)));
    start += share;
  }
}

/**
 * The upload part of the page: `upload(files)` queues [{file, path}] for the current collection
 * with the "who may read" fields as they are now; `onJob()` when a job starts or finishes.
 */
export function uploader({ list, status, collection, access, onJob }) {
  const rows = [];
  let queue = Promise.resolve();
  let said = "";

  const summarize = () => {
    const by = {};
    for (const row of rows) by[row.state] = (by[row.state] || 0) + 1;
    const parts = Object.entries(by).map(([state, n]) => `${n} ${state}`);
    const files = `${rows.length} file${rows.length > 1 ? "s" : ""}`;
    const text = rows.length ? `${files}: ${parts.join(", ")}` : "";
    if (text !== said) status.textContent = said = text; // a live region: only real changes
  };

  /** The job's documents, to give each of our rows its state (throttled: one call at a time). */
  const follow = (jobId, mine) => {
    const byPath = new Map(mine.map((row) => [row.path, row]));
    const refresh = oneAtATime(async () => {
      const limit = Math.min(10000, Math.max(1, byPath.size * 2));
      const job = await api(`/v1/jobs/${enc(jobId)}?documents_limit=${limit}`);
      for (const doc of job.documents) {
        const row = byPath.get(doc.source);
        if (row && row.state !== doc.status) row.set(doc.status, doc.error || "");
      }
    }, 500);
    watchJob(jobId, {
      onProgress: refresh,
      onDone: (job) => refresh().then(() => onJob(job)),
      onError: report,
    });
  };

  const sendFiles = async (target, who, mine) => {
    let jobId = null;
    for (const batch of batches(mine)) {
      const form = new FormData();
      for (const row of batch) form.append("files", row.file, row.path);
      appendAccess(form, who);
      const query = jobId ? `?job_id=${enc(jobId)}` : "";
      batch.forEach((row) => row.set("uploading"));
      try {
        const url = `/v1/collections/${enc(target)}/documents${query}`;
        const job = await upload(url, form, (f) => spread(batch, f));
        jobId = job.id;
        const rejected = new Map(job.rejected.map((r) => [r.name, r.reason]));
        for (const row of batch) {
          if (rejected.has(row.path)) row.set("rejected", rejected.get(row.path));
          else row.set("queued");
        }
        onJob(job);
      } catch (error) {
        failed(error, batch, () => sendFiles(target, who, batch));
      }
    }
    if (jobId) follow(jobId, mine.filter((row) => row.state === "queued"));
  };

  const sendArchive = async (target, who, row) => {
    const form = new FormData();
    form.append("collection", target);
    form.append("archive", row.file, row.path);
    appendAccess(form, who);
    row.set("uploading");
    try {
      const job = await upload("/v1/jobs/archive", form, (f) => (row.bar.value = f));
      const link = () => h("a", { href: jobUrl(job.id) }, "Open the job");
      const show = (j) => {
        const rejected = j.rejected.length ? `, ${j.rejected.length} rejected` : "";
        row.set(j.status, `${finished(j)}${rejected} · `, link());
        row.bar.value = j.progress; // an archive's bar: its job's documents finished
      };
      show(job);
      onJob(job);
      watchJob(job.id, {
        onProgress: show,
        onDone: (j) => {
          show(j);
          onJob(j);
        },
        onError: report,
      });
    } catch (error) {
      failed(error, [row], () => sendArchive(target, who, row));
    }
  };

  /** The rows keep their files: "Send again" retries them as they were (collection, access). */
  const failed = (error, batch, again) => {
    const kind = error.status === 415 ? "rejected" : "failed";
    if (kind === "failed") report(error);
    let sent = false;
    const once = () => {
      if (!sent) run(again);
      sent = true;
    };
    for (const row of batch) {
      const label = `Send ${row.path} again`;
      const attrs = { type: "button", class: "ghost", onclick: once, "aria-label": label };
      const retry = h("button", attrs, "Send again");
      row.set(kind, error.message, ...(kind === "failed" ? [" ", retry] : []));
    }
  };

  const run = (task) => {
    queue = queue.then(task).catch(report);
    return queue;
  };

  return function upload(files) {
    const target = collection();
    if (!target) {
      report(new Error("Choose a collection first."));
      return;
    }
    const who = access();
    const made = files.map(({ file, path }) => new Row(file, path, list, summarize));
    rows.push(...made);
    const archives = made.filter((row) => ARCHIVE.test(row.path));
    const plain = made.filter((row) => !ARCHIVE.test(row.path));
    if (plain.length) run(() => sendFiles(target, who, plain));
    for (const row of archives) run(() => sendArchive(target, who, row));
  };
}
