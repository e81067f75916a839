// Register work around the sales: the shift (open with a float, X report, close with the Z report), returns
// by receipt number, post-void, reprint, and the no-sale drawer open.

import { api, newKey } from "../api.js";
import { money, parseCents } from "../format.js";
import { $, closeDialog, el, openDialog } from "../ui.js";
import { errorIn, fail, invalid, managerOf, onSubmit, prepareManager, printNow, rememberLastSale, say, showPrintable, state } from "./context.js";

const dialogs = {
  shift: $("#dlg-shift"),
  document: $("#dlg-document"),
  returns: $("#dlg-returns"),
  void: $("#dlg-void"),
  nosale: $("#dlg-nosale"),
  closeshift: $("#dlg-closeshift"),
};
let onShift = () => {};
let original = null; // the sale being returned

function needShift() {
  if (!state.shift) {
    fail(invalid("Open the shift first."));
    openShiftDialog();
    return false;
  }
  return true;
}

// --- shift ---------------------------------------------------------------------------------------------------

export function openShiftDialog() {
  $("#form-shift").reset();
  openDialog(dialogs.shift, "#shift-float");
}

async function showDocument(title, path) {
  $("#document-title").textContent = title;
  const body = $("#document-body");
  body.replaceChildren(el("p", {}, "Loading…"));
  openDialog(dialogs.document, "button[data-print]");
  try {
    showPrintable(body, await api("GET", path, { as: "text" }));
  } catch (exc) {
    body.replaceChildren();
    errorIn(dialogs.document, exc);
  }
}

export function xReport() {
  if (!needShift()) return;
  showDocument(`X report — shift ${state.shift.id}`, `/shifts/${state.shift.id}/x-report?format=html`);
}

export function openCloseShift() {
  if (!needShift()) return;
  $("#form-closeshift").reset();
  errorIn(dialogs.closeshift, null);
  openDialog(dialogs.closeshift, "#closeshift-counted");
}

// --- receipts ------------------------------------------------------------------------------------------------

export function reprint() {
  if (!state.lastSaleId) {
    fail(invalid("No receipt to reprint yet on this register."));
    return;
  }
  // Shown first; Alt+P (or Print) prints it, marked COPY.
  showDocument("Receipt copy", `/sales/${state.lastSaleId}/receipt?format=html&copy=true`);
}

// --- returns -------------------------------------------------------------------------------------------------

function renderReturnLines() {
  const holder = $("#returns-lines");
  if (!original) {
    holder.replaceChildren();
    return;
  }
  const rows = original.lines.map((line) => {
    const left = line.quantity - line.returned_quantity;
    return el(
      "tr",
      {},
      el("td", {}, line.description),
      el("td", { class: "num" }, `${left} of ${line.quantity}`),
      el("td", { class: "num" }, money(line.line_total_cents)),
      el(
        "td",
        {},
        el("label", { class: "visually-hidden", for: `ret-${line.id}` }, `Quantity to return of ${line.description}`),
        el("input", {
          id: `ret-${line.id}`, class: "qty", inputmode: "numeric", value: String(left), dataset: { lineId: line.id, max: left },
          disabled: left === 0,
        }),
      ),
      el(
        "td",
        {},
        el("label", { class: "check" }, el("input", { type: "checkbox", checked: true, dataset: { restock: line.id } }), " restock"),
      ),
    );
  });
  holder.replaceChildren(
    el("p", {}, `Sale ${original.receipt_number} of ${original.business_date}: ${money(original.total_cents)}`),
    el(
      "table",
      { class: "plain" },
      el("caption", { class: "visually-hidden" }, "Lines of the receipt"),
      el("thead", {}, el("tr", {}, ...["Item", "Left to return", "Paid", "Return", "Stock"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows),
    ),
  );
}

export function openReturns(receipt) {
  if (!needShift()) return;
  original = null;
  $("#form-returns").reset();
  errorIn(dialogs.returns, null);
  renderReturnLines();
  $("#returns-receipt").value = receipt;
  openDialog(dialogs.returns, "#returns-receipt");
  if (receipt) lookUpReturn(receipt).catch((exc) => errorIn(dialogs.returns, exc));
}

async function lookUpReturn(number) {
  original = await api("GET", `/receipts/${encodeURIComponent(number.toUpperCase())}`);
  renderReturnLines();
  const first = $("#returns-lines input.qty:not([disabled])");
  if (first) first.focus();
}

async function refund(values) {
  const lines = [];
  for (const input of dialogs.returns.querySelectorAll("input.qty")) {
    const quantity = Number(input.value || 0);
    if (!Number.isInteger(quantity) || quantity < 0 || quantity > Number(input.dataset.max)) {
      throw invalid("Each quantity must be between 0 and what is left to return.");
    }
    if (quantity > 0) {
      const restock = dialogs.returns.querySelector(`[data-restock="${input.dataset.lineId}"]`).checked;
      lines.push({ original_line_id: Number(input.dataset.lineId), quantity, restock });
    }
  }
  if (!lines.length) throw invalid("Enter a quantity to return.");
  if ((values.reason || "").length < 3) throw invalid("Give the reason for the return.");
  const made = await api("POST", "/returns", {
    body: { receipt_number: original.receipt_number, lines, reason: values.reason, register_id: state.registerId },
    idempotencyKey: newKey(),
  });
  closeDialog(dialogs.returns);
  rememberLastSale(made.id);
  say(`Return ${made.receipt_number}: refund ${money(made.total_cents)}.`, "ok");
  await showDocument(`Return ${made.receipt_number} — refund ${money(made.total_cents)}`, `/sales/${made.id}/receipt?format=html`);
}

// --- void, no sale -------------------------------------------------------------------------------------------

export function openVoid() {
  $("#form-void").reset();
  errorIn(dialogs.void, null);
  prepareManager(dialogs.void);
  openDialog(dialogs.void, "#void-receipt");
  if (state.lastSaleId) {
    api("GET", `/sales/${state.lastSaleId}`)
      .then((sale) => {
        if (sale.kind === "sale" && sale.status === "completed") $("#void-receipt").value = sale.receipt_number;
        $("#void-receipt").select();
      })
      .catch(() => {});
  }
}

export function openNoSale() {
  if (!needShift()) return;
  $("#form-nosale").reset();
  errorIn(dialogs.nosale, null);
  openDialog(dialogs.nosale, "#nosale-reason");
}

// --- wiring --------------------------------------------------------------------------------------------------

export function init(callbacks) {
  onShift = callbacks.onShift;

  onSubmit($("#form-shift"), async (values) => {
    const cents = parseCents(values.float);
    if (cents === null) throw invalid("Enter the counted float, e.g. 150.00.");
    const shift = await api("POST", "/shifts", { body: { register_id: state.registerId, opening_float_cents: cents } });
    onShift(shift);
    closeDialog(dialogs.shift);
    say(`Shift #${shift.id} open with a float of ${money(cents)}.`, "ok");
  });

  onSubmit($("#form-closeshift"), async (values) => {
    const cents = parseCents(values.counted);
    if (cents === null) throw invalid("Enter the counted cash, e.g. 412.35.");
    const shift = state.shift;
    const report = await api("POST", `/shifts/${shift.id}/close`, { body: { counted_cash_cents: cents } });
    closeDialog(dialogs.closeshift);
    onShift(null);
    say(`Shift #${shift.id} closed. Over/short: ${money(report.over_short_cents)}.`, "ok");
    await showDocument(`Z report — shift ${shift.id}`, `/shifts/${shift.id}/z-report?format=html`);
  });

  onSubmit($("#form-returns"), async (values) => {
    const number = values.receipt.toUpperCase();
    if (!original || original.receipt_number !== number) {
      if (!number) throw invalid("Scan or type the receipt number.");
      await lookUpReturn(number);
      return;
    }
    await refund(values);
  });

  onSubmit($("#form-void"), async (values) => {
    const sale = await api("GET", `/receipts/${encodeURIComponent(values.receipt.toUpperCase())}`);
    const voided = await api("POST", `/sales/${sale.id}/void`, {
      body: { reason: values.reason, manager: managerOf(values) },
      idempotencyKey: newKey(),
    });
    closeDialog(dialogs.void);
    say(`Sale ${voided.receipt_number} voided; the money goes back to its tenders.`, "ok");
    await showDocument(`Voided ${voided.receipt_number}`, `/sales/${voided.id}/receipt?format=html&copy=true`);
  });

  onSubmit($("#form-nosale"), async (values) => {
    await api("POST", `/shifts/${state.shift.id}/no-sale`, { body: { reason: values.reason } });
    closeDialog(dialogs.nosale);
    say("Drawer opened (no sale), recorded.", "ok");
  });

  dialogs.document.addEventListener("keydown", (event) => {
    if (event.altKey && event.code === "KeyP") {
      event.preventDefault();
      printNow();
    }
  });
  $("[data-print]", dialogs.document).addEventListener("click", printNow);
}
