// Models: the catalog (pinned versions, prices, circuit breakers, measured scores) and the
// routing policies.

import { api, badge, h } from "./ui.js";
import { join, loader, number, plural, table, yesNo } from "./admin-common.js";

const usd = (value) => `$${number(value)}`;
/** `format(value)`, or nothing (the table shows "—") when the value is unset. */
const unlessNull = (value, format) => (value == null ? null : format(value));
const ms = (value) => `${Math.round(value)} ms`;

function breaker({ state, retry_in_s: retry, consecutive_failures: failures }) {
  const notes = [];
  if (state !== "closed" && retry > 0) notes.push(`retry in ${Math.ceil(retry)} s`);
  if (failures) notes.push(plural(failures, "failure"));
  return h("span", {}, badge(state), notes.length ? ` ${notes.join(", ")}` : "");
}

function score(measured) {
  if (!measured || measured.quality === null) return "unscored";
  const { quality, lower, upper, n } = measured;
  const range = lower === null ? "" : ` (${number(lower)}–${number(upper)})`;
  return `${number(quality)}${range}, n=${n}`;
}

const MODELS = [
  { label: "Name", cell: (m) => h("strong", {}, m.name) },
  { label: "Backend", cell: (m) => m.backend },
  { label: "Pinned version", cell: (m) => unlessNull(m.model, (v) => h("code", {}, v)) },
  { label: "Self-hosted", cell: (m) => yesNo(m.self_hosted) },
  { label: "Max sensitivity", cell: (m) => m.max_sensitivity, optional: true },
  { label: "Quality", cell: (m) => m.quality },
  { label: "Context", cell: (m) => m.context_window.toLocaleString(), num: true, optional: true },
  { label: "Input $/Mtok", cell: (m) => usd(m.input_usd_per_mtok), num: true },
  { label: "Output $/Mtok", cell: (m) => usd(m.output_usd_per_mtok), num: true },
  { label: "Latency", cell: (m) => unlessNull(m.latency_ms, ms), num: true, optional: true },
  { label: "Breaker", cell: (m) => breaker(m.breaker) },
  { label: "Measured score", cell: (m) => score(m.score) },
];

function policyColumns(defaultPolicy) {
  return [
    {
      label: "Name",
      cell: ([name]) =>
        h("span", {}, h("strong", {}, name), name === defaultPolicy && [" ", badge("default")]),
    },
    { label: "Sensitivity", cell: ([, p]) => p.sensitivity },
    { label: "Lowest quality", cell: ([, p]) => p.quality },
    { label: "Max cost", cell: ([, p]) => unlessNull(p.max_cost_usd, usd), num: true },
    { label: "Max latency", cell: ([, p]) => unlessNull(p.max_latency_ms, ms), num: true },
    { label: "Models", cell: ([, p]) => join(p.models, "any eligible") },
    { label: "Prefer", cell: ([, p]) => p.prefer },
    { label: "Verifier", cell: ([, p]) => p.verifier || "service default", optional: true },
  ];
}

export function modelsTab(panel) {
  const policies = panel.querySelector("[data-policies]");
  return loader(
    panel,
    (signal) => api("/v1/models", { signal }),
    (catalog, list) => {
      list.replaceChildren(table("Models", MODELS, catalog.models, "The catalog has no models."));
      const named = Object.entries(catalog.policies);
      policies.replaceChildren(
        h("p", {}, "Requests naming no policy use ", h("strong", {}, catalog.default_policy), "."),
        table("Policies", policyColumns(catalog.default_policy), named, "No policies are defined."),
      );
      const open = catalog.models.filter((m) => m.breaker.state !== "closed").length;
      const count = plural(catalog.models.length, "model");
      return open ? `${count}, ${open} with an open or half-open breaker` : count;
    },
  );
}
