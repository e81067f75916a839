// Payment: cash with quick amounts and the change in large type, cards (a test payment method, or the
// register's reader with its status and cancel), loyalty points, and any mix of them (split tender).
// The tenders are collected here and sent together to POST /sales/{id}/complete with an Idempotency-Key;
// the server checks that they cover the total and computes the change.

import { api, newKey } from "../api.js";
import { money, parseCents } from "../format.js";
import { $, closeDialog, el, openDialog } from "../ui.js";
import {
  errorIn,
  fail,
  invalid,
  printNow,
  refreshIdStatus,
  refreshSale,
  refreshStatus,
  rememberLastSale,
  say,
  serial,
  setSale,
  showPrintable,
  state,
} from "./context.js";
import { showOutOfHours } from "./idcheck.js";

const dialog = $("#dlg-tender");
const done = $("#dlg-done");
const amountInput = $("#tender-amount");
let tenders = [];
let reader = null; // {payment_id, timer} while a card waits on the reader
let busy = false;

const LABELS = { cash: "Cash", card: "Card", loyalty: "Points" };

function paidCents() {
  return tenders.reduce((sum, t) => sum + (t.kind === "cash" ? t.tendered_cents : t.amount_cents), 0);
}

function nonCashCents() {
  return tenders.filter((t) => t.kind !== "cash").reduce((sum, t) => sum + t.amount_cents, 0);
}

function dueCents() {
  return Math.max(0, state.sale.total_cents - paidCents());
}

function render() {
  $("#tender-total").textContent = money(state.sale.total_cents);
  $("#tender-due").textContent = money(dueCents());
  $("#tender-list").replaceChildren(
    ...tenders.map((t) =>
      el("li", {}, `${LABELS[t.kind]}${t.label ? ` (${t.label})` : ""}`, el("strong", {}, money(t.tendered_cents || t.amount_cents))),
    ),
  );
  amountInput.value = (dueCents() / 100).toFixed(2);
  amountInput.select();
}

function storageKey() {
  return `posomni.complete.${state.sale.id}`;
}

// After the scans still on their way: the total must be the final one.
export function open() {
  return serial(openNow);
}

const OUT_OF_HOURS = "Alcohol may not be sold at this time. Remove the age-restricted items or cancel the sale.";

async function openNow() {
  if (!state.sale || !state.sale.lines.length) {
    fail(invalid("Scan an item first."));
    return;
  }
  if (state.sale.needs_id_check && !(state.idStatus && state.idStatus.covered)) {
    fail({ code: "age_verification_required", message: "Scan the customer's ID (F9) before taking payment." });
    return;
  }
  // Before any card is touched: may alcohol be sold now? The server says (its checkout refuses it anyway).
  if (state.sale.lines.some((l) => l.age_restricted)) {
    const status = await refreshStatus().catch(() => state.status);
    if (status && !status.sale_hours.allowed) {
      showOutOfHours(OUT_OF_HOURS);
      return;
    }
  }
  tenders = [];
  errorIn(dialog, null);
  const status = state.status || { card_mode: "none", card_methods: [] };
  const select = $("#card-method");
  select.replaceChildren(...status.card_methods.map((m) => el("option", { value: m.payment_method }, m.name)));
  for (const node of dialog.querySelectorAll("[data-card-methods]")) node.hidden = status.card_mode !== "methods";
  $("[data-card]", dialog).disabled = status.card_mode === "none";
  $("[data-loyalty]", dialog).disabled = !state.sale.customer_id;
  $("#reader-panel").hidden = true;
  render();
  openDialog(dialog, "#tender-amount");
}

function enteredCents() {
  const cents = parseCents(amountInput.value);
  if (cents === null || cents <= 0) throw invalid("Enter an amount, e.g. 20 or 12.50.");
  return cents;
}

async function addTender(tender) {
  tenders.push(tender);
  render();
  if (paidCents() >= state.sale.total_cents) await complete();
}

async function cash(cents) {
  await addTender({ kind: "cash", tendered_cents: cents });
}

async function card() {
  const cents = Math.min(enteredCents(), dueCents());
  if (cents <= 0) throw invalid("Nothing is left to pay by card.");
  if (state.status.card_mode === "reader") {
    await startReader(cents);
    return;
  }
  const select = $("#card-method");
  await addTender({
    kind: "card",
    amount_cents: cents,
    payment_method: select.value,
    label: select.options[select.selectedIndex]?.text,
  });
}

async function points() {
  const cents = Math.min(enteredCents(), dueCents());
  await addTender({ kind: "loyalty", amount_cents: cents });
}

// --- the reader ----------------------------------------------------------------------------------------------

function readerStatus(text) {
  $("#reader-status").textContent = text;
}

async function startReader(cents) {
  const payment = await api("POST", `/sales/${state.sale.id}/card-payments`, { body: { amount_cents: cents } });
  reader = { sale_id: state.sale.id, payment_id: payment.id, amount_cents: cents, timer: null };
  $("#reader-panel").hidden = false;
  $("[data-reader-tap]", dialog).hidden = !state.status.test_reader;
  readerStatus(`Waiting for the customer's card on reader ${state.status.card_reader_id} (${money(cents)})…`);
  $("[data-reader-cancel]", dialog).focus();
  poll();
}

function poll() {
  if (!reader) return;
  reader.timer = setTimeout(async () => {
    if (!reader) return;
    try {
      const payment = await api("GET", `/sales/${reader.sale_id}/card-payments/${reader.payment_id}`);
      await readerUpdate({ ...payment, payment_id: payment.id });
    } catch (exc) {
      errorIn(dialog, exc);
      poll();
    }
  }, 1000);
}

async function readerUpdate(payment) {
  if (!reader || payment.payment_id !== reader.payment_id) return;
  if (payment.status === "pending") {
    poll();
    return;
  }
  clearTimeout(reader.timer);
  reader = null;
  $("#reader-panel").hidden = true;
  amountInput.focus();
  if (payment.status === "authorized" || payment.status === "captured") {
    const label = [payment.card_brand, payment.card_last4 && `•••• ${payment.card_last4}`].filter(Boolean).join(" ");
    await addTender({ kind: "card", amount_cents: payment.amount_cents, payment_id: payment.payment_id, label });
  } else if (payment.status === "failed") {
    throw { code: "card_declined", message: payment.failure_message || "The card was declined." };
  } else {
    say("Card payment cancelled.", "info");
  }
}

async function cancelReader() {
  if (!reader) return;
  const id = reader.payment_id;
  clearTimeout(reader.timer);
  readerStatus("Cancelling…");
  const payment = await api("POST", `/sales/${reader.sale_id}/card-payments/${id}/cancel`);
  await readerUpdate({ ...payment, payment_id: id });
  reader = null;
  $("#reader-panel").hidden = true;
}

async function simulateTap() {
  if (!reader) return;
  await api("POST", `/payments/dev/readers/${encodeURIComponent(state.status.card_reader_id)}/present`, {
    body: { card: "visa" },
  });
}

// --- completing ----------------------------------------------------------------------------------------------

async function complete() {
  if (busy) return;
  busy = true;
  const sale = state.sale;
  const body = { tenders: tenders.map(({ label, ...tender }) => tender) };
  const saved = JSON.parse(sessionStorage.getItem(storageKey()) || "null");
  // The same key for the same tenders: a retry after a lost answer returns the sale, never charges twice.
  const key = saved && JSON.stringify(saved.body) === JSON.stringify(body) ? saved.key : newKey();
  sessionStorage.setItem(storageKey(), JSON.stringify({ key, body }));
  say("Completing the sale…", "info");
  try {
    const completed = await api("POST", `/sales/${sale.id}/complete`, { body, idempotencyKey: key });
    sessionStorage.removeItem(storageKey());
    await finished(completed);
  } catch (exc) {
    // Nothing was charged: the checkout voids what it authorised. Start the tenders again.
    tenders = [];
    errorIn(dialog, exc);
    fail(exc);
    await refreshSale().catch(() => {});
    if (state.sale) render();
    else closeDialog(dialog);
    if (exc.code === "age_verification_required" || exc.code === "underage") {
      closeDialog(dialog);
      await refreshIdStatus().catch(() => {});
    } else if (exc.code === "outside_sale_hours") {
      closeDialog(dialog);
      await refreshStatus().catch(() => {});
      showOutOfHours(OUT_OF_HOURS);
    }
  } finally {
    busy = false;
  }
}

async function finished(sale) {
  closeDialog(dialog);
  rememberLastSale(sale.id);
  setSale(null);
  state.idStatus = null;
  $("#done-change").textContent = money(sale.change_cents);
  $("#done-title").textContent = `Sale ${sale.receipt_number} complete`;
  say(sale.change_cents ? `Change due: ${money(sale.change_cents)}` : "Sale complete.", "ok");
  openDialog(done, "button[data-close]");
  try {
    showPrintable($("#done-receipt"), await api("GET", `/sales/${sale.id}/receipt?format=html`, { as: "text" }));
  } catch (exc) {
    errorIn(done, exc);
  }
}

// After a reload while the sale was completing: send the same request again (same key), or pick up the result.
export async function resumeCompleting() {
  const saved = JSON.parse(sessionStorage.getItem(storageKey()) || "null");
  if (!saved) {
    say("This sale was being completed. Wait a moment, then press F10 to pay again if it is still open.", "info");
    return;
  }
  try {
    const completed = await api("POST", `/sales/${state.sale.id}/complete`, { body: saved.body, idempotencyKey: saved.key });
    sessionStorage.removeItem(storageKey());
    await finished(completed);
  } catch (exc) {
    fail(exc);
    await refreshSale().catch(() => {});
  }
}

// --- wiring --------------------------------------------------------------------------------------------------

function guarded(work) {
  return async () => {
    errorIn(dialog, null);
    try {
      await work();
    } catch (exc) {
      errorIn(dialog, exc);
    }
  };
}

export function init() {
  $("#form-tender").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(() => cash(enteredCents()))();
  });
  for (const button of dialog.querySelectorAll("[data-quick]")) {
    button.addEventListener("click", guarded(() => cash(button.dataset.quick === "exact" ? dueCents() : Number(button.dataset.quick))));
  }
  $("[data-card]", dialog).addEventListener("click", guarded(card));
  $("[data-loyalty]", dialog).addEventListener("click", guarded(points));
  $("[data-reader-cancel]", dialog).addEventListener("click", guarded(cancelReader));
  $("[data-reader-tap]", dialog).addEventListener("click", guarded(simulateTap));
  const keys = { F2: "[data-quick=exact]", F3: "[data-quick='2000']", F4: "[data-quick='5000']", F6: "[data-quick='10000']", F7: "[data-card]", F8: "[data-loyalty]" };
  dialog.addEventListener("keydown", (event) => {
    const selector = keys[event.key];
    if (!selector) return;
    event.preventDefault();
    const button = $(selector, dialog);
    if (!button.disabled && !reader) button.click();
  });
  // Esc while the reader waits cancels the card, not the payment screen.
  dialog.addEventListener("cancel", (event) => {
    if (reader) {
      event.preventDefault();
      guarded(cancelReader)();
    }
  });
  dialog.addEventListener("close", () => {
    tenders = [];
  });
  done.addEventListener("keydown", (event) => {
    if (event.altKey && event.code === "KeyP") {
      event.preventDefault();
      printNow();
    }
  });
  $("[data-print]", done).addEventListener("click", printNow);
}
