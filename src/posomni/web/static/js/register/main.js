// The register screen: the scan field, the sale, the keys. Every change goes through the JSON API; after a
// reload the screen picks up the register's sale in progress from the server (GET /sales/current).

import { api, signOut } from "../api.js";
import { money } from "../format.js";
import { $, $$, anyDialogOpen, closeDialog, el, openDialog } from "../ui.js";
import {
  beep,
  can,
  ensureSale,
  fail,
  refreshIdStatus,
  refreshSale,
  refreshStatus,
  say,
  selectedLine,
  serial,
  setSale,
  state,
} from "./context.js";
import { IdCapture } from "./idcapture.js";
import * as idcheck from "./idcheck.js";
import * as operations from "./operations.js";
import * as saleActions from "./sale-actions.js";
import * as tender from "./tender.js";

const scan = $("#scan");

// --- rendering -----------------------------------------------------------------------------------------------

function lineRow(line) {
  const price = line.override_price_cents ?? line.unit_price_cents;
  const notes = [];
  if (line.age_restricted) notes.push(el("span", { class: "badge age" }, `${line.min_age || 21}+`));
  if (line.units_per_pack > 1) notes.push(el("span", { class: "badge" }, `pack of ${line.units_per_pack}`));
  if (line.override_price_cents !== null) notes.push(el("span", { class: "badge warn" }, "price override"));
  if (line.discount_cents) notes.push(el("span", { class: "badge" }, `−${money(line.discount_cents)}`));
  if (line.deposit_cents) notes.push(el("span", { class: "badge" }, `deposit ${money(line.deposit_cents)}`));
  const selected = line.id === state.selected;
  return el(
    "tr",
    { dataset: { lineId: line.id }, class: selected ? "selected" : "", "aria-selected": String(selected) },
    el("td", {}, line.description, " ", notes),
    el("td", { class: "num" }, line.quantity),
    el("td", { class: "num" }, money(price)),
    el("td", { class: "num" }, money(line.line_total_cents)),
  );
}

function render() {
  const sale = state.sale;
  const lines = sale ? sale.lines : [];
  $("#lines-body").replaceChildren(...lines.map(lineRow));
  $("#empty-sale").hidden = lines.length > 0;
  const row = $("#lines-body tr.selected");
  if (row) row.scrollIntoView({ block: "nearest" });
  $("#t-subtotal").textContent = money(sale?.subtotal_cents);
  $("#t-discounts").textContent = money(sale?.discount_cents);
  $("#t-tax").textContent = money(sale?.tax_cents);
  $("#t-deposits").textContent = money(sale?.deposit_cents);
  $("#t-total").textContent = money(sale?.total_cents);
  $("#sale-meta").textContent = sale ? `Receipt ${sale.receipt_number}` : "";
  $("#customer-line").textContent = sale?.customer_id ? `Customer #${sale.customer_id} attached` : "";
  const banner = $("#id-banner");
  const id = state.idStatus;
  banner.hidden = !(sale && sale.needs_id_check && !(id && id.covered));
  const restricted = lines.some((l) => l.age_restricted);
  if (id && id.underage_refused) {
    banner.hidden = false;
    banner.replaceChildren(el("strong", {}, "UNDERAGE"), " — this sale cannot be completed. Cancel it (Alt+C).");
  } else if (restricted && state.status && !state.status.sale_hours.allowed) {
    banner.hidden = false;
    banner.replaceChildren(
      el("strong", {}, "OUT OF HOURS"),
      " — alcohol may not be sold now. Remove the age-restricted items (Del) or cancel the sale (Alt+C).",
    );
  } else if (!banner.hidden) {
    banner.replaceChildren(
      el("strong", {}, "ID REQUIRED"),
      " — scan the customer's licence now, or press ",
      el("kbd", {}, "F9"),
      " for manual entry.",
    );
  }
  $("#t-total").closest(".grand").dataset.idOk = id && id.covered && sale?.needs_id_check ? "true" : "false";
}

state.onSale = render;
state.onStatus = () => {
  renderStatus();
  render();
};

function renderShift() {
  const pill = $("#shift-status");
  pill.textContent = state.shift ? `Shift #${state.shift.id} open` : "No open shift";
  pill.dataset.kind = state.shift ? "ok" : "warn";
}

function renderStatus() {
  const status = state.status;
  if (!status) return;
  $("#store-name").textContent = status.store_name;
  $("#register-name").textContent = status.register_name;
  const hours = $("#hours-status");
  hours.textContent = status.sale_hours.allowed ? "Alcohol: open" : "Alcohol: OUT OF HOURS";
  hours.dataset.kind = status.sale_hours.allowed ? "ok" : "bad";
}

// --- scanning ------------------------------------------------------------------------------------------------

const RECEIPT = /^[A-Z0-9][A-Z0-9-]{0,30}-\d{8}$/i; // store code, "-", 8 digits

async function addItem(code, quantity) {
  await serial(async () => {
    try {
      const sale = await ensureSale();
      const before = sale.lines.length;
      const updated = await api("POST", `/sales/${sale.id}/items`, { body: { code, quantity } });
      const gtin = code.padStart(14, "0");
      const added =
        updated.lines.length > before
          ? updated.lines[updated.lines.length - 1]
          : updated.lines.find((l) => l.gtin === gtin) || updated.lines[updated.lines.length - 1];
      state.selected = added ? added.id : null;
      setSale(updated);
      say(`${added ? added.description : "Item"} — ${money(added ? added.line_total_cents : 0)}`, "ok");
      if (updated.needs_id_check) await refreshIdStatus();
      // Alcohol on the sale: whether it may be sold now, as the server sees it (the banner says so at once).
      if (added && added.age_restricted) await refreshStatus().catch(() => {});
    } catch (exc) {
      fail(exc);
      if (exc.code === "sale_not_open") await refreshSale();
    }
  });
}

async function onScanSubmit(event) {
  event.preventDefault();
  const text = scan.value.trim();
  scan.value = "";
  if (!text) return;
  if (!state.shift) {
    beep();
    say("Open the shift first (count the float).", "error");
    operations.openShiftDialog();
    return;
  }
  const multiplied = /^(\d{1,3})\*(.+)$/.exec(text);
  const quantity = multiplied ? Number(multiplied[1]) : 1;
  const code = multiplied ? multiplied[2].trim() : text;
  if (/^\d+$/.test(code)) {
    if (quantity < 1 || quantity > 999) {
      fail({ code: "validation_error", message: "The quantity must be 1 to 999." });
      return;
    }
    await addItem(code, quantity);
  } else if (RECEIPT.test(code)) {
    operations.openReturns(code);
  } else {
    saleActions.openSearch(code);
  }
}

// --- keys ----------------------------------------------------------------------------------------------------

const ACTIONS = {
  pay: () => tender.open(),
  search: () => saleActions.openSearch(""),
  quantity: () => saleActions.openQuantity(),
  price: () => saleActions.openPrice(),
  discount: () => saleActions.openDiscount(),
  customer: () => saleActions.openCustomer(),
  suspend: () => saleActions.openSuspended(),
  idcheck: () => idcheck.open(),
  remove: () => saleActions.removeLine(),
  cancel: () => saleActions.cancelSale(),
  returns: () => operations.openReturns(""),
  void: () => operations.openVoid(),
  reprint: () => operations.reprint(),
  nosale: () => operations.openNoSale(),
  xreport: () => operations.xReport(),
  closeshift: () => operations.openCloseShift(),
  help: () => openDialog($("#dlg-help")),
  switch: () => switchCashier(),
  signout: () => signOut(),
  office: () => (can("reports.view") ? window.location.assign("/office") : undefined),
};

const FUNCTION_KEYS = {
  F1: "help", F2: "search", F3: "quantity", F4: "price", F6: "discount", F7: "customer", F8: "suspend",
  F9: "idcheck", F10: "pay",
};
const ALT_KEYS = {
  KeyC: "cancel", KeyR: "returns", KeyV: "void", KeyP: "reprint", KeyN: "nosale", KeyX: "xreport",
  KeyZ: "closeshift", KeyS: "switch", KeyQ: "signout", KeyB: "office",
};

function isField(node) {
  return node instanceof HTMLInputElement || node instanceof HTMLTextAreaElement || node instanceof HTMLSelectElement;
}

function moveSelection(step) {
  const lines = state.sale ? state.sale.lines : [];
  if (!lines.length) return;
  const index = Math.max(0, lines.findIndex((l) => l.id === state.selected));
  state.selected = lines[Math.min(lines.length - 1, Math.max(0, index + step))].id;
  render();
}

function onKeydown(event) {
  if (anyDialogOpen()) {
    // Each dialog handles its own keys; the browser's own function keys (help, find, caret browsing,
    // menu …) never fire on the register.
    if (/^F([1-9]|10|12)$/.test(event.key)) event.preventDefault();
    return;
  }
  const name =
    FUNCTION_KEYS[event.key] ||
    (event.altKey && !event.ctrlKey && !event.metaKey ? ALT_KEYS[event.code] : undefined);
  if (name) {
    event.preventDefault();
    ACTIONS[name]();
    return;
  }
  const inScan = event.target === scan;
  if (inScan && scan.value === "") {
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      event.preventDefault();
      moveSelection(event.key === "ArrowUp" ? -1 : 1);
    } else if (event.key === "Delete") {
      event.preventDefault();
      saleActions.removeLine();
    } else if (event.key === "+" || event.key === "-") {
      event.preventDefault();
      saleActions.bumpQuantity(event.key === "+" ? 1 : -1);
    }
    return;
  }
  // A key typed while a button has focus (after a click) belongs to the scan field: a scanner never waits.
  if (!inScan && !isField(event.target) && event.key.length === 1 && !event.ctrlKey && !event.altKey) {
    scan.focus();
  }
}

// The scan field keeps the focus whenever nothing else needs it.
function keepFocus() {
  setTimeout(() => {
    if (!anyDialogOpen() && (document.activeElement === document.body || document.activeElement === null)) {
      scan.focus();
    }
  }, 0);
}

// Back to the scan field after a dialog. Blurring first matters: after a dialog closed by a click, Chromium
// reported the field as focused but dropped typed characters until it was focused anew.
function refocusScan() {
  if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
  scan.focus();
  scan.setSelectionRange(scan.value.length, scan.value.length);
}

async function switchCashier() {
  try {
    await api("POST", "/auth/logout");
  } finally {
    window.location.assign("/?mode=pin");
  }
}

// --- start ---------------------------------------------------------------------------------------------------

async function start() {
  if (!state.registerId) {
    say("This session is not at a register. Sign out and sign in choosing the register.", "error");
    return;
  }
  try {
    await refreshStatus();
    state.shift = await api("GET", `/shifts/current?register_id=${state.registerId}`);
    renderShift();
    await refreshSale();
  } catch (exc) {
    fail(exc);
    return;
  }
  if (!state.shift) {
    operations.openShiftDialog();
  } else if (state.sale) {
    say(`Sale ${state.sale.receipt_number} picked up where it was left.`, "info");
    if (state.sale.status === "completing") tender.resumeCompleting();
  } else {
    say("Ready.", "info");
  }
}

operations.init({ onShift: (shift) => ((state.shift = shift), renderShift()) });
tender.init();
saleActions.init();
idcheck.init();

const capture = new IdCapture({
  sink: $("#id-sink"),
  onScan: (raw, options) => idcheck.submitScan(raw, options),
  // A product barcode scanned right after a licence: scanned as if typed alone (after the ID check).
  onProduct: (code) => {
    scan.value = code;
    $("#scan-form").requestSubmit();
  },
  onState: (captureState) => idcheck.showCaptureState(captureState),
}).install(window);
idcheck.useCapture(capture);
idcheck.passThrough(scan);
// The sink holds the focus only while a scan arrives (a dialog closing may hand it back: not to keep).
$("#id-sink").addEventListener("focus", () => {
  if (!capture.busy) scan.focus();
});

$("#scan-form").addEventListener("submit", onScanSubmit);
window.addEventListener("keydown", onKeydown);
document.addEventListener("focusout", keepFocus);
for (const dialog of $$("dialog")) {
  dialog.addEventListener("close", () => {
    if (!anyDialogOpen()) refocusScan();
  });
  for (const button of $$("[data-close]", dialog)) button.addEventListener("click", () => closeDialog(dialog));
}
for (const button of $$("[data-action]")) {
  button.addEventListener("click", () => ACTIONS[button.dataset.action]());
}
$("#lines-body").addEventListener("click", (event) => {
  const row = event.target.closest("tr[data-line-id]");
  if (row) {
    state.selected = Number(row.dataset.lineId);
    render();
    scan.focus();
  }
});
window.addEventListener("pageshow", () => scan.focus());
scan.focus();
start();
