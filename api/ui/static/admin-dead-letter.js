// Dead letter: documents whose ingestion failed for good, with the last error; retry them all.

import { api, collections, confirmDialog, h, report, toast, when } from "./ui.js";
import { busy, loader, plural, table } from "./admin-common.js";

const COLUMNS = [
  { label: "Source", cell: (d) => h("span", { class: "wrap" }, d.source) },
  { label: "Collection", cell: (d) => d.collection },
  { label: "Error", cell: (d) => h("span", { class: "wrap error-text" }, d.error || "unknown") },
  { label: "Attempts", cell: (d) => String(d.attempts), num: true },
  { label: "Failed", cell: (d) => when(d.failed_at), optional: true },
  {
    label: "Job",
    cell: (d) => h("a", { href: `/ui/jobs/${encodeURIComponent(d.job_id)}` }, d.job_id),
    optional: true,
  },
];

export function deadLetterTab(panel) {
  const picker = panel.querySelector("#dead-collection");
  const retry = panel.querySelector("#dead-retry");
  let count = 0;

  const scope = () => (picker.value ? `?collection=${encodeURIComponent(picker.value)}` : "");

  const load = loader(
    panel,
    (signal) => api(`/v1/dead-letter${scope()}`, { signal }),
    (items, list) => {
      count = items.length;
      retry.disabled = count === 0;
      const empty = "No documents failed for good: nothing to retry.";
      list.replaceChildren(table("Failed documents", COLUMNS, items, empty));
      return count ? `${plural(count, "document")} failed for good` : "";
    },
  );

  picker.addEventListener("change", load);

  retry.addEventListener("click", async () => {
    const where = picker.value ? ` of ${picker.value}` : "";
    const message = `Send the ${plural(count, "failed document")}${where} to ingestion again?`;
    if (!(await confirmDialog(message, "Retry all"))) return;
    try {
      const { retried } = await busy(retry, () =>
        api(`/v1/dead-letter/retry${scope()}`, { method: "POST" }),
      );
      toast(`${plural(retried, "document")} sent to ingestion again.`);
    } catch (error) {
      report(error);
    }
    await load();
  });

  collections()
    .then((found) => picker.append(...found.map((c) => h("option", { value: c.name }, c.name))))
    .catch(report);

  return load;
}
