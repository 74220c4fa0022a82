// The admin page: WAI-ARIA tabs (arrow keys, Home/End; the selected tab is kept in the URL's
// hash so reloads and links keep it), each tab's data loaded when it is first shown.

import { auditTab } from "./admin-audit.js";
import { collectionsTab } from "./admin-collections.js";
import { deadLetterTab } from "./admin-dead-letter.js";
import { keysTab } from "./admin-keys.js";
import { modelsTab } from "./admin-models.js";

// Each tab's setup: given its panel, wires it and returns its load function. The template
// leaves out the tabs a key limited to collections may not use (keys, audit).
const TABS = {
  collections: collectionsTab,
  keys: keysTab,
  audit: auditTab,
  "dead-letter": deadLetterTab,
  models: modelsTab,
};

const root = document.getElementById("admin");
const tabs = [...root.querySelectorAll('[role="tab"]')];
const loaded = new Map(); // tab name → its load function, once set up

function panelOf(tab) {
  return document.getElementById(tab.getAttribute("aria-controls"));
}

function select(tab, { focus = false } = {}) {
  for (const other of tabs) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    panelOf(other).hidden = !selected;
  }
  if (focus) tab.focus();
  const name = tab.dataset.tab;
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (loaded.has(name)) {
    loaded.get(name)();
  } else {
    const load = TABS[name](panelOf(tab));
    loaded.set(name, load);
    load();
  }
}

function fromHash() {
  const name = decodeURIComponent(location.hash.slice(1));
  return tabs.find((t) => t.dataset.tab === name) || tabs[0];
}

root.querySelector('[role="tablist"]').addEventListener("keydown", (event) => {
  const at = tabs.indexOf(document.activeElement);
  if (at < 0) return;
  const next = {
    ArrowRight: (at + 1) % tabs.length,
    ArrowLeft: (at - 1 + tabs.length) % tabs.length,
    Home: 0,
    End: tabs.length - 1,
  }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  select(tabs[next], { focus: true });
});

for (const tab of tabs) tab.addEventListener("click", () => select(tab));
window.addEventListener("hashchange", () => select(fromHash()));
select(fromHash());
