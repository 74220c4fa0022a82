// The Documents page: pick a collection, upload to it (drop or choose files, folders and
// archives), watch its recent jobs, and manage its documents. All data goes through /v1.

import { api, badge, collectionPicker, h, report, when } from "./ui.js";
import { ACTIVE, eta, finished, jobProgress, jobUrl, rate } from "./jobs-common.js";
import { wireDrop } from "./documents-drop.js";
import { documentList } from "./documents-list.js";
import { uploader } from "./documents-upload.js";

const $ = (id) => document.getElementById(id);
const picker = $("collection");
const JOBS_SHOWN = 10;
const POLL_MS = 3000;

const list = documentList({
  body: $("docs"),
  empty: $("docs-empty"),
  heading: $("docs-title"),
  filter: $("status-filter"),
  size: $("page-size"),
  prev: $("prev-page"),
  next: $("next-page"),
  info: $("page-info"),
  dialog: $("access-dialog"),
  collection: () => picker.value,
});

function jobRow(job) {
  const short = job.id.slice(0, 8);
  return h(
    "tr",
    {},
    h(
      "td",
      {},
      h("a", { href: jobUrl(job.id), "aria-label": `Job ${short}: ${job.origin}` }, job.origin),
      h("div", { class: "muted small" }, short),
    ),
    h("td", {}, badge(job.status)),
    h(
      "td",
      { class: "job-progress" },
      jobProgress(job, `Progress of job ${short}`),
      h("div", { class: "muted small" }, finished(job)),
    ),
    h("td", { class: "num optional" }, rate(job)),
    h("td", { class: "num optional" }, eta(job)),
    h("td", { class: "optional" }, when(job.created_at)),
  );
}

// The jobs table polls while one of its jobs is active (jobs started elsewhere, e.g. by the
// CLI, show up too); when an active one ends, the documents are listed again.
let active = new Set();
let timer = null;
let loadingJobs = false;
let again = false;

async function loadJobs() {
  const target = picker.value;
  if (!target) return;
  if (loadingJobs) return void (again = true); // once more when this one is back
  clearTimeout(timer);
  loadingJobs = true;
  let jobs;
  try {
    jobs = await api(`/v1/jobs?collection=${encodeURIComponent(target)}&limit=${JOBS_SHOWN}`);
  } catch (error) {
    report(error);
    return;
  } finally {
    loadingJobs = false;
    if (again) {
      again = false;
      setTimeout(loadJobs);
    }
  }
  if (picker.value !== target) return;
  $("jobs").replaceChildren(...jobs.map(jobRow));
  $("jobs-empty").classList.toggle("hidden", jobs.length > 0);
  const now = new Set(jobs.filter((job) => ACTIVE.has(job.status)).map((job) => job.id));
  const ended = [...active].some((id) => !now.has(id));
  active = now;
  if (ended) list.load();
  if (now.size) timer = setTimeout(loadJobs, POLL_MS);
}

const upload = uploader({
  list: $("uploads"),
  status: $("upload-status"),
  collection: () => picker.value,
  access: () => ({ groups: $("upload-groups").value, users: $("upload-users").value }),
  onJob: (job) => {
    loadJobs();
    if (!ACTIVE.has(job.status)) list.load();
  },
});
wireDrop($("dropzone"), [$("file-input"), $("folder-input")], upload);
$("jobs-refresh").addEventListener("click", loadJobs);

function show() {
  active = new Set();
  localStorage.setItem("rag-collection", picker.value);
  const url = new URL(location.href);
  url.searchParams.set("collection", picker.value);
  history.replaceState(null, "", url);
  list.reset();
  loadJobs();
}

async function start() {
  const chosen = new URLSearchParams(location.search).get("collection");
  let names;
  try {
    names = await collectionPicker(picker, chosen);
  } catch (error) {
    $("no-collection").textContent = `The collections could not be listed: ${error.message}.`;
    $("no-collection").classList.remove("hidden");
    for (const part of document.querySelectorAll(".documents > section")) {
      part.classList.add("hidden");
    }
    return;
  }
  const none = names.length === 0;
  $("no-collection").classList.toggle("hidden", !none);
  for (const part of document.querySelectorAll(".documents > section")) {
    part.classList.toggle("hidden", none);
  }
  if (none) return;
  picker.addEventListener("change", show);
  show();
}

start();
