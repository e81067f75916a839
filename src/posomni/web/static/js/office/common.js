// Shared by the back-office pages: the store being looked at, tables, forms and the status line.

import { api, signOut } from "../api.js";
import { describe } from "../messages.js";
import { $, el } from "../ui.js";

const body = document.body;
const STORE_KEY = "posomni.office.store";
export const permissions = new Set((body.dataset.permissions || "").split(" "));
export const can = (permission) => permissions.has(permission);

// The store the page works on: the user's own, or (chain-wide accounts) the one chosen in the header.
export function storeId() {
  return Number(body.dataset.userStore) || Number($("#store-select").value) || null;
}

export function storeQuery(prefix = "?") {
  const id = storeId();
  return body.dataset.userStore || !id ? "" : `${prefix}store_id=${id}`;
}

export function notify(text, kind = "info") {
  const status = $("#office-status");
  status.textContent = text;
  status.dataset.kind = kind;
}

export function failed(exc) {
  notify(describe(exc), "error");
}

// A table from rows of plain values: [{label, value: row => text|Node, num?}].
export function table(caption, columns, rows, empty = "Nothing to show.") {
  if (!rows.length) return el("p", { class: "muted" }, empty);
  // A wide table scrolls sideways in its own box, which the keyboard can reach (tabindex) and name.
  return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption }, el(
    "table",
    { class: "plain data" },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.num ? "num" : "" }, c.label)))),
    el(
      "tbody",
      {},
      rows.map((row) => el("tr", {}, columns.map((c) => el("td", { class: c.num ? "num" : "" }, c.value(row))))),
    ),
  ));
}

// Run `handler(values, form)` on submit; a refusal is shown in the form's error line and the status line.
export function onForm(form, handler) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector("[data-error]");
    if (error) error.textContent = "";
    const button = event.submitter;
    if (button) button.disabled = true;
    try {
      await handler(values(form), form, button ? button.value : "");
    } catch (exc) {
      if (error) error.textContent = describe(exc);
      failed(exc);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

export function values(form) {
  const found = {};
  for (const field of form.elements) {
    if (!field.name) continue;
    if (field.type === "radio" && !field.checked) continue;
    found[field.name] = field.type === "checkbox" ? field.checked : field.value.trim();
  }
  return found;
}

export function invalid(message) {
  return { code: "validation_error", message };
}

async function loadStores() {
  const select = $("#store-select");
  if (body.dataset.userStore) return;
  const stores = await api("GET", "/stores");
  select.replaceChildren(...stores.map((s) => el("option", { value: s.id }, `${s.code} · ${s.name}`)));
  const remembered = localStorage.getItem(STORE_KEY);
  if (remembered && stores.some((s) => String(s.id) === remembered)) select.value = remembered;
}

// Every page: sign-out, the store list; then `start()`, again whenever another store is chosen.
export async function boot(start) {
  $("#sign-out").addEventListener("click", signOut);
  try {
    await loadStores();
  } catch (exc) {
    failed(exc);
  }
  $("#store-select").addEventListener("change", () => {
    localStorage.setItem(STORE_KEY, $("#store-select").value);
    start();
  });
  start();
}
