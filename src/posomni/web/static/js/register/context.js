// The register's shared state and the helpers every part of the screen uses.
// The sale itself lives on the server: this is only what the screen shows of it.

import { api } from "../api.js";
import { describe } from "../messages.js";
import { $, $$, showDocument } from "../ui.js";

const body = document.body;

export const state = {
  registerId: Number(body.dataset.registerId) || null,
  userId: Number(body.dataset.userId),
  username: body.dataset.username,
  permissions: new Set((body.dataset.permissions || "").split(" ")),
  development: body.dataset.development === "true",
  status: null, // GET /web/api/registers/{id}/status
  shift: null, // the open shift, or null
  sale: null, // the sale in progress (SaleOut), or null
  selected: null, // the selected line's id
  idStatus: null, // GET /web/api/sales/{id}/id-status
  lastSaleId: Number(sessionStorage.getItem("posomni.lastSale")) || null,
  onSale: () => {},
  onStatus: () => {},
};

export const can = (permission) => state.permissions.has(permission);

// Sale changes run one after another: a scanner can send the next code before the last answer arrives.
let chain = Promise.resolve();
export function serial(work) {
  const next = chain.then(work, work);
  chain = next.catch(() => {});
  return next;
}

export function say(text, kind = "info") {
  const message = $("#message");
  message.textContent = text;
  message.dataset.kind = kind;
}

// The "beep": the scan field flashes red (and a short tone where the browser allows sound).
export function beep() {
  const scan = $("#scan");
  scan.classList.remove("beep");
  void scan.offsetWidth; // restart the animation
  scan.classList.add("beep");
  try {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    tone.frequency.value = 330;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.18);
    tone.onended = () => audio.close();
  } catch {
    // No sound device: the flash is the cue.
  }
}

export function fail(exc) {
  beep();
  say(describe(exc), "error");
}

export function errorIn(dialog, exc) {
  const slot = $("[data-error]", dialog);
  if (slot) slot.textContent = exc ? describe(exc) : "";
}

export function setSale(sale) {
  state.sale = sale && (sale.status === "open" || sale.status === "completing") ? sale : null;
  if (state.sale && !state.sale.lines.some((l) => l.id === state.selected)) {
    const last = state.sale.lines[state.sale.lines.length - 1];
    state.selected = last ? last.id : null;
  }
  if (!state.sale) state.selected = null;
  state.onSale();
}

export async function refreshSale() {
  if (!state.registerId) return;
  setSale(await api("GET", `/sales/current?register_id=${state.registerId}`));
  await refreshIdStatus();
}

// The register's status from the server, among it whether alcohol may be sold at this moment (sale hours).
export async function refreshStatus() {
  state.status = await api("GET", `/web/api/registers/${state.registerId}/status`);
  state.onStatus();
  return state.status;
}

export async function refreshIdStatus() {
  const sale = state.sale;
  state.idStatus = sale && sale.needs_id_check ? await api("GET", `/web/api/sales/${sale.id}/id-status`) : null;
  state.onSale();
}

export async function ensureSale() {
  if (state.sale && state.sale.status === "open") return state.sale;
  setSale(await api("POST", "/sales", { body: { register_id: state.registerId } }));
  return state.sale;
}

export function selectedLine() {
  return state.sale ? state.sale.lines.find((l) => l.id === state.selected) || null : null;
}

// A manager approval block: hidden when the signed-in user may approve themselves (the server then
// records them as the approver); otherwise {username, secret} of the manager at the register.
export function prepareManager(dialog) {
  const block = $("[data-manager]", dialog);
  if (block) block.hidden = can("override");
}

export function managerOf(values) {
  if (can("override") || !values.manager_username) return undefined;
  return { username: values.manager_username, secret: values.manager_secret };
}

export function rememberLastSale(id) {
  state.lastSaleId = id;
  sessionStorage.setItem("posomni.lastSale", String(id));
}

// Show a receipt or report (server HTML) in a preview and in the print area, which is what gets printed.
export function showPrintable(preview, html) {
  showDocument(preview, html);
  showDocument($("#print-area"), html);
}

export function printNow() {
  window.print();
}

export function openDialogs() {
  return $$("dialog").filter((d) => d.open);
}

// A dialog's form: on submit, clear its error, run `handler(values)`; a refusal is shown in the dialog.
export function onSubmit(form, handler) {
  const dialog = form.closest("dialog");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorIn(dialog, null);
    const submitter = event.submitter;
    if (submitter) submitter.disabled = true;
    try {
      await handler(formValuesOf(form), submitter ? submitter.value : "");
    } catch (exc) {
      errorIn(dialog, exc);
      if (exc && exc.code !== "validation_error") beep();
    } finally {
      if (submitter) submitter.disabled = false;
    }
  });
}

function formValuesOf(form) {
  const values = {};
  for (const field of form.elements) {
    if (!field.name) continue;
    if (field.type === "radio") {
      if (field.checked) values[field.name] = field.value;
    } else {
      values[field.name] = field.type === "checkbox" ? field.checked : field.value.trim();
    }
  }
  return values;
}

export function invalid(message) {
  return { code: "validation_error", message };
}
