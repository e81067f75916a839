// The audit log: entries (newest first) and the hash-chain verification.

import { api } from "../api.js";
import { $, el } from "../ui.js";
import { boot, failed, notify, onForm, table } from "./common.js";

// An entry: one row for when, what, who and on what, and under it a row with its details as a compact
// key/value list across the page's width (long values wrap). Nested objects and lists are indented inside a
// disclosure (<details>: the keyboard opens it, no script needed).

function scalar(value) {
  if (value === null || value === undefined) return el("span", { class: "muted" }, "null");
  if (typeof value === "string") return value === "" ? el("span", { class: "muted" }, "(empty)") : value;
  return String(value);
}

function isNested(value) {
  return value !== null && typeof value === "object";
}

const count = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

function nested(value) {
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    if (!value.some(isNested)) return value.map((v) => (v === null ? "null" : String(v))).join(", ");
    // Each item of a list of objects (a sale's lines, its tenders) as its own key/value list.
    const item = (v) => (!isNested(v) ? scalar(v) : Array.isArray(v) ? nested(v) : pairs(v));
    const items = el("ol", { class: "kv-items" }, value.map((v) => el("li", {}, item(v))));
    return el("details", { class: "kv-nested" }, el("summary", {}, count(value.length, "item")), items);
  }
  const keys = Object.keys(value);
  if (!keys.length) return "{}";
  return el("details", { class: "kv-nested" }, el("summary", {}, count(keys.length, "field")), pairs(value));
}

// Scalars first (they share the lines), then the nested values, each on a line of its own.
function pairs(object) {
  const entries = Object.entries(object);
  const ordered = [...entries.filter(([, v]) => !isNested(v)), ...entries.filter(([, v]) => isNested(v))];
  return el(
    "dl",
    { class: "kv" },
    ordered.map(([key, value]) =>
      el(
        "div",
        { class: isNested(value) ? "kv-wide" : "" },
        el("dt", {}, key),
        el("dd", {}, isNested(value) ? nested(value) : scalar(value)),
      ),
    ),
  );
}

function details(found) {
  if (found === null || found === undefined) return el("span", { class: "muted" }, "no details");
  if (!isNested(found)) return scalar(found);
  if (Array.isArray(found)) return nested(found);
  return Object.keys(found).length ? pairs(found) : el("span", { class: "muted" }, "no details");
}

function when(iso) {
  const at = new Date(iso);
  const part = (text) => el("span", { class: "nowrap" }, text);
  return [part(at.toLocaleDateString("en-US")), " ", part(at.toLocaleTimeString("en-US"))];
}

function entryRows(e) {
  return [
    el(
      "tr",
      { class: "audit-entry" },
      el("td", { class: "audit-when" }, when(e.occurred_at)),
      el("td", { class: "audit-what" }, el("strong", {}, e.action), " ", el("span", { class: "audit-seq muted" }, `${e.chain} #${e.seq}`)),
      el("td", {}, e.actor_id ? `#${e.actor_id} (${e.actor_role})` : "system"),
      el("td", { class: "audit-target" }, e.target_type ? `${e.target_type} ${e.target_id ?? ""}` : ""),
    ),
    el("tr", { class: "audit-details" }, el("td", { colspan: "4" }, details(e.details))),
  ];
}

async function entries(action = "") {
  const query = new URLSearchParams({ limit: "100" });
  if (action) query.set("action", action);
  const rows = await api("GET", `/audit/entries?${query}`);
  const caption = "The latest entries";
  if (!rows.length) {
    $("#audit-entries").replaceChildren(el("p", { class: "muted" }, "No entries."));
    return;
  }
  const head = ["When", "Action and chain #", "Who", "Target"].map((label) => el("th", { scope: "col" }, label));
  $("#audit-entries").replaceChildren(
    el(
      "div",
      { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
      el(
        "table",
        { class: "plain data audit-log" },
        el("caption", {}, caption, el("span", { class: "muted" }, " (each entry's details under it)")),
        el("thead", {}, el("tr", {}, head)),
        el("tbody", {}, rows.flatMap(entryRows)),
      ),
    ),
  );
}

$("#verify").addEventListener("click", async () => {
  try {
    const result = await api("GET", "/audit/verify");
    $("#verify-result").replaceChildren(
      el("p", { class: result.ok ? "ok-text" : "error" }, result.ok ? "Every chain is intact." : "A chain is broken: see below."),
      table(
        "Chains",
        [
          { label: "Chain", value: (c) => c.chain },
          { label: "Entries checked", value: (c) => c.entries_checked, num: true },
          { label: "Intact", value: (c) => (c.ok ? "yes" : "NO") },
          { label: "First broken entry", value: (c) => c.first_broken_seq ?? "" },
          { label: "Problem", value: (c) => c.problem ?? "" },
        ],
        result.chains,
      ),
    );
    notify(result.ok ? "Audit chains verified." : "Audit chain broken.", result.ok ? "ok" : "error");
  } catch (exc) {
    failed(exc);
  }
});
onForm($("#audit-filter"), (values) => entries(values.action));

boot(() => entries().catch(failed));
