// Stock: low stock, receiving an invoice, adjustments and counts (all through the inventory API).

import { api } from "../api.js";
import { dateTime, money, parseCents } from "../format.js";
import { $, $$, el } from "../ui.js";
import { boot, can, failed, invalid, notify, onForm, storeId, storeQuery, table } from "./common.js";

let count = null; // the count in progress (CountOut)

async function lowStock() {
  const rows = await api("GET", `/inventory/low-stock${storeQuery()}`);
  $("#low-stock").replaceChildren(
    table(
      "Products at or below their reorder point",
      [
        { label: "SKU", value: (r) => r.sku },
        { label: "Product", value: (r) => `${r.name} ${r.size}` },
        { label: "Available", value: (r) => r.available, num: true },
        { label: "Reorder point", value: (r) => r.reorder_point, num: true },
        { label: "Suggested", value: (r) => (r.suggested_cases ? `${r.suggested_cases} case(s) of ${r.case_size}` : `${r.suggested_units} unit(s)`) },
      ],
      rows,
      "Nothing is below its reorder point.",
    ),
  );
}

async function invoices() {
  const rows = await api("GET", `/inventory/receipts?limit=20${storeQuery("&")}`);
  $("#invoices").replaceChildren(
    table(
      "The latest invoices received",
      [
        { label: "Received", value: (r) => dateTime(r.received_at) },
        { label: "Supplier", value: (r) => r.supplier },
        { label: "Invoice", value: (r) => r.invoice_number },
        { label: "Lines", value: (r) => r.lines.length, num: true },
        { label: "Cost", value: (r) => money(r.total_cost_cents), num: true },
      ],
      rows,
      "No invoice received yet.",
    ),
  );
}

function addReceiveLine() {
  const body = $("#receive-lines tbody");
  const n = body.children.length + 1;
  body.append(
    el(
      "tr",
      {},
      el("td", {}, el("label", { class: "visually-hidden", for: `rl-code-${n}` }, `Barcode, line ${n}`), el("input", { id: `rl-code-${n}`, name: "code", inputmode: "numeric" })),
      el("td", {}, el("label", { class: "visually-hidden", for: `rl-qty-${n}` }, `Quantity, line ${n}`), el("input", { id: `rl-qty-${n}`, name: "quantity", inputmode: "numeric", class: "qty" })),
      el("td", {}, el("label", { class: "visually-hidden", for: `rl-cost-${n}` }, `Cost each, line ${n}`), el("input", { id: `rl-cost-${n}`, name: "cost", inputmode: "decimal" })),
    ),
  );
  $(`#rl-code-${n}`).focus();
}

async function receive(values, form) {
  const lines = [];
  for (const row of $$("#receive-lines tbody tr")) {
    const code = $("[name=code]", row).value.trim();
    if (!code) continue;
    const quantity = Number($("[name=quantity]", row).value);
    if (!Number.isInteger(quantity) || quantity < 1) throw invalid(`Enter the quantity for ${code}.`);
    const costText = $("[name=cost]", row).value.trim();
    const cost = costText ? parseCents(costText) : null;
    if (costText && cost === null) throw invalid(`The cost of ${code} is not an amount.`);
    lines.push({ barcode: code, quantity, cost_cents: cost });
  }
  if (!lines.length) throw invalid("Add at least one line.");
  const invoice = await api("POST", "/inventory/receipts", {
    body: { store_id: storeId(), supplier: values.supplier, invoice_number: values.invoice_number, note: values.note, lines },
  });
  notify(`Received invoice ${invoice.invoice_number}: ${invoice.lines.length} line(s), ${money(invoice.total_cost_cents)}.`, "ok");
  form.reset();
  $("#receive-lines tbody").replaceChildren();
  addReceiveLine();
  await Promise.all([invoices(), lowStock()]);
}

async function adjust(values, form) {
  const quantity = Number(values.quantity);
  if (!Number.isInteger(quantity) || quantity === 0) throw invalid("Enter a whole number of units, + or −.");
  const product = await api("GET", `/catalog/lookup/${encodeURIComponent(values.code)}`);
  const level = await api("POST", "/inventory/adjustments", {
    body: { store_id: storeId(), product_id: product.id, quantity, reason: values.reason, note: values.note },
  });
  $("#adjust-result").textContent = `${product.name} ${product.size}: ${level.on_hand} on hand, ${level.available} available.`;
  notify("Stock adjusted (recorded with your name and the note).", "ok");
  form.reset();
  await lowStock();
}

function renderCount() {
  const form = $("#count-form");
  form.hidden = !count || count.status !== "open";
  if (!count) return;
  $("#count-lines").replaceChildren(
    table(
      `Count #${count.id}: ${count.counted_lines} counted, ${count.uncounted_lines} to count`,
      [
        { label: "SKU", value: (l) => l.sku },
        { label: "Product", value: (l) => l.name },
        { label: "Expected", value: (l) => l.expected, num: true },
        {
          label: "Counted",
          value: (l) =>
            el(
              "span",
              {},
              el("label", { class: "visually-hidden", for: `cl-${l.product_id}` }, `Counted ${l.name}`),
              el("input", { id: `cl-${l.product_id}`, class: "qty", inputmode: "numeric", value: l.counted ?? "", dataset: { productId: l.product_id } }),
            ),
        },
        { label: "Variance", value: (l) => l.variance ?? "", num: true },
      ],
      count.lines,
    ),
  );
}

async function countAction(values, form, action) {
  if (action === "cancel") {
    count = await api("POST", `/inventory/counts/${count.id}/cancel`);
    $("#count-result").textContent = `Count #${count.id} cancelled.`;
  } else {
    const entries = $$("input[data-product-id]", form)
      .filter((i) => i.value.trim() !== "")
      .map((i) => ({ product_id: Number(i.dataset.productId), counted: Number(i.value) }));
    if (entries.length) count = await api("PUT", `/inventory/counts/${count.id}/entries`, { body: { entries } });
    if (action === "post") {
      count = await api("POST", `/inventory/counts/${count.id}/post`);
      $("#count-result").textContent = `Count #${count.id} posted: ${count.units_over} over, ${count.units_short} short (${money(count.net_cost_cents)}).`;
      await lowStock();
    } else {
      notify("Counts saved.", "ok");
    }
  }
  renderCount();
}

async function start() {
  try {
    await lowStock();
    if (can("stock.manage")) {
      await invoices();
      const categories = await api("GET", "/catalog/categories");
      $("#count-category").replaceChildren(el("option", { value: "" }, "Every product"), ...categories.map((c) => el("option", { value: c.id }, c.name)));
    }
  } catch (exc) {
    failed(exc);
  }
}

if (can("stock.manage")) {
  addReceiveLine();
  $("#receive-add").addEventListener("click", addReceiveLine);
  onForm($("#receive-form"), receive);
  onForm($("#adjust-form"), adjust);
  onForm($("#count-start"), async (values) => {
    count = await api("POST", "/inventory/counts", {
      body: { store_id: storeId(), category_id: values.category_id ? Number(values.category_id) : null, note: values.note },
    });
    $("#count-result").textContent = "";
    renderCount();
  });
  onForm($("#count-form"), countAction);
}
boot(start);
