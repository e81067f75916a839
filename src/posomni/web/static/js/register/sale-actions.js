// Changing the sale: search, quantity, remove, price override, discounts, customer, suspend/resume, cancel.

import { api } from "../api.js";
import { money, parseCents } from "../format.js";
import { $, closeDialog, el, openDialog } from "../ui.js";
import {
  ensureSale,
  errorIn,
  fail,
  invalid,
  managerOf,
  onSubmit,
  prepareManager,
  refreshIdStatus,
  say,
  selectedLine,
  serial,
  setSale,
  state,
} from "./context.js";

const dialogs = {
  search: $("#dlg-search"),
  quantity: $("#dlg-quantity"),
  price: $("#dlg-price"),
  discount: $("#dlg-discount"),
  customer: $("#dlg-customer"),
  suspended: $("#dlg-suspended"),
  confirm: $("#dlg-confirm"),
};

function needLine() {
  const line = selectedLine();
  if (!line) fail(invalid("Select a line first (↑/↓)."));
  return line;
}

// --- search --------------------------------------------------------------------------------------------------

let results = [];
let active = -1;
let searched = null; // the query the results are for

function renderResults() {
  const list = $("#search-results");
  list.replaceChildren(
    ...results.map((product, index) =>
      el(
        "li",
        {},
        el(
          "button",
          { type: "button", class: index === active ? "pick active" : "pick", dataset: { index } },
          `${product.name} ${product.size}`,
          el("span", { class: "muted" }, ` ${product.units_per_pack > 1 ? `pack of ${product.units_per_pack} · ` : ""}`),
          el("strong", {}, money(product.price_cents)),
          product.age_restricted ? el("span", { class: "badge age" }, "21+") : null,
        ),
      ),
    ),
  );
  const current = list.querySelector(".active");
  if (current) current.scrollIntoView({ block: "nearest" });
}

async function runSearch(q) {
  errorIn(dialogs.search, null);
  const page = await api("GET", `/catalog/products?q=${encodeURIComponent(q)}&limit=20`);
  results = page.items;
  active = results.length ? 0 : -1;
  renderResults();
  if (!results.length) errorIn(dialogs.search, invalid(`Nothing found for “${q}”.`));
}

async function addProduct(product) {
  closeDialog(dialogs.search);
  await serial(async () => {
    try {
      const sale = await ensureSale();
      const updated = await api("POST", `/sales/${sale.id}/items`, { body: { product_id: product.id } });
      const added = updated.lines.find((l) => l.product_id === product.id);
      state.selected = added ? added.id : state.selected;
      setSale(updated);
      say(`${product.name} — ${money(product.price_cents)}`, "ok");
      if (updated.needs_id_check) await refreshIdStatus();
    } catch (exc) {
      fail(exc);
    }
  });
}

export function openSearch(q) {
  $("#search-q").value = q;
  results = [];
  active = -1;
  searched = q || null;
  renderResults();
  openDialog(dialogs.search, "#search-q");
  if (q) runSearch(q).catch((exc) => errorIn(dialogs.search, exc));
}

// --- quantity, remove ----------------------------------------------------------------------------------------

async function setQuantity(line, quantity) {
  const updated = await api("PATCH", `/sales/${state.sale.id}/lines/${line.id}`, { body: { quantity } });
  setSale(updated);
}

export function openQuantity() {
  const line = needLine();
  if (!line) return;
  $("[data-line-name]", dialogs.quantity).textContent = line.description;
  $("#quantity-value").value = String(line.quantity);
  openDialog(dialogs.quantity, "#quantity-value");
}

export function bumpQuantity(step) {
  const line = needLine();
  if (!line) return;
  if (line.quantity + step < 1) {
    removeLine();
    return;
  }
  serial(() => setQuantity(line, line.quantity + step)).catch(fail);
}

export function removeLine() {
  const line = needLine();
  if (!line) return;
  serial(async () => {
    const updated = await api("DELETE", `/sales/${state.sale.id}/lines/${line.id}`);
    state.selected = null;
    setSale(updated);
    say(`Removed ${line.description}.`, "info");
    await refreshIdStatus();
  }).catch(fail);
}

// --- price override and discounts (a manager approves) -------------------------------------------------------

export function openPrice() {
  const line = needLine();
  if (!line) return;
  $("[data-line-name]", dialogs.price).textContent =
    `${line.description} — now ${money(line.override_price_cents ?? line.unit_price_cents)}`;
  $("#form-price").reset();
  prepareManager(dialogs.price);
  openDialog(dialogs.price, "#price-value");
}

export function openDiscount() {
  if (!state.sale || !state.sale.lines.length) {
    fail(invalid("Scan an item first."));
    return;
  }
  $("#form-discount").reset();
  prepareManager(dialogs.discount);
  openDialog(dialogs.discount, "#discount-value");
}

// --- customer ------------------------------------------------------------------------------------------------

function showCustomer(customer) {
  $("[data-customer]", dialogs.customer).textContent = customer
    ? `${customer.name || "Customer"} #${customer.id} · ${customer.loyalty_points} points`
    : "";
}

export async function openCustomer() {
  $("#form-customer").reset();
  showCustomer(null);
  openDialog(dialogs.customer, "#customer-phone");
  if (state.sale && state.sale.customer_id) {
    try {
      showCustomer(await api("GET", `/customers/${state.sale.customer_id}`));
    } catch (exc) {
      errorIn(dialogs.customer, exc);
    }
  }
}

function lookupQuery(text) {
  const digits = text.replace(/[\s()-]/g, "");
  return /^\+?\d{7,15}$/.test(digits) ? `phone=${encodeURIComponent(digits)}` : `card=${encodeURIComponent(text)}`;
}

async function attach(customerId) {
  const sale = await ensureSale();
  setSale(await api("PUT", `/sales/${sale.id}/customer`, { body: { customer_id: customerId } }));
}

// --- suspend / resume ----------------------------------------------------------------------------------------

export async function openSuspended() {
  const list = $("#suspended-list");
  list.replaceChildren();
  $("[data-suspend]", dialogs.suspended).disabled = !(state.sale && state.sale.lines.length);
  openDialog(dialogs.suspended);
  try {
    const sales = await api("GET", "/sales/suspended");
    list.replaceChildren(
      ...sales.map((sale) =>
        el(
          "li",
          {},
          el(
            "button",
            { type: "button", class: "pick", dataset: { saleId: sale.id } },
            `${sale.receipt_number} · ${sale.lines.length} line(s) · `,
            el("strong", {}, money(sale.total_cents)),
          ),
        ),
      ),
    );
    if (!sales.length) list.append(el("li", { class: "muted" }, "No suspended sales."));
  } catch (exc) {
    errorIn(dialogs.suspended, exc);
  }
}

async function suspend() {
  if (!state.sale) return;
  const number = state.sale.receipt_number;
  await api("POST", `/sales/${state.sale.id}/suspend`);
  setSale(null);
  closeDialog(dialogs.suspended);
  say(`Sale ${number} suspended.`, "info");
}

async function resume(saleId) {
  if (state.sale && state.sale.lines.length) {
    throw invalid("Suspend or finish the current sale first.");
  }
  if (state.sale) await api("POST", `/sales/${state.sale.id}/cancel`);
  setSale(await api("POST", `/sales/${saleId}/resume`));
  await refreshIdStatus();
  closeDialog(dialogs.suspended);
  say(`Sale ${state.sale.receipt_number} resumed.`, "ok");
}

// --- cancel --------------------------------------------------------------------------------------------------

export function confirm(text) {
  return new Promise((resolve) => {
    $("[data-text]", dialogs.confirm).textContent = text;
    dialogs.confirm.returnValue = "no";
    dialogs.confirm.addEventListener("close", () => resolve(dialogs.confirm.returnValue === "yes"), { once: true });
    openDialog(dialogs.confirm, "button[value=yes]");
  });
}

export async function cancelSale() {
  if (!state.sale) {
    say("No sale to cancel.", "info");
    return;
  }
  if (!(await confirm(`Cancel sale ${state.sale.receipt_number}? Its items are removed.`))) return;
  try {
    await api("POST", `/sales/${state.sale.id}/cancel`);
    setSale(null);
    state.idStatus = null;
    say("Sale cancelled.", "info");
  } catch (exc) {
    fail(exc);
  }
}

// --- wiring --------------------------------------------------------------------------------------------------

export function init() {
  onSubmit($("#form-search"), async (values) => {
    // Enter searches a new query; Enter again adds the highlighted product.
    if (values.q !== searched) {
      searched = values.q;
      await runSearch(values.q);
    } else if (results[active]) {
      await addProduct(results[active]);
    }
  });
  dialogs.search.addEventListener("keydown", (event) => {
    if ((event.key === "ArrowDown" || event.key === "ArrowUp") && results.length) {
      event.preventDefault();
      active = Math.min(results.length - 1, Math.max(0, active + (event.key === "ArrowDown" ? 1 : -1)));
      renderResults();
    }
  });
  $("#search-results").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-index]");
    if (button) addProduct(results[Number(button.dataset.index)]);
  });

  onSubmit($("#form-quantity"), async (values) => {
    const quantity = Number(values.quantity);
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > 999) throw invalid("Enter 1 to 999.");
    await setQuantity(selectedLine(), quantity);
    closeDialog(dialogs.quantity);
  });

  onSubmit($("#form-price"), async (values) => {
    const cents = parseCents(values.price);
    if (cents === null) throw invalid("Enter the new price, e.g. 19.99.");
    const line = selectedLine();
    const updated = await api("POST", `/sales/${state.sale.id}/lines/${line.id}/price`, {
      body: { price_cents: cents, reason: values.reason, manager: managerOf(values) },
    });
    setSale(updated);
    closeDialog(dialogs.price);
    say(`Price of ${line.description} set to ${money(cents)}.`, "ok");
  });

  onSubmit($("#form-discount"), async (values) => {
    const percent = /^(\d{1,3}(\.\d{1,2})?)\s*%$/.exec(values.value);
    const cents = percent ? null : parseCents(values.value);
    if (!percent && cents === null) throw invalid("Enter an amount (5.00) or a percent (10%).");
    const body = { reason: values.reason, manager: managerOf(values) };
    if (percent) body.percent = percent[1];
    else body.amount_cents = cents;
    const line = selectedLine();
    const path =
      values.scope === "sale" || !line
        ? `/sales/${state.sale.id}/discount`
        : `/sales/${state.sale.id}/lines/${line.id}/discount`;
    setSale(await api("POST", path, { body }));
    closeDialog(dialogs.discount);
    say("Discount applied.", "ok");
  });

  onSubmit($("#form-customer"), async (values) => {
    if (!values.lookup) throw invalid("Enter the phone number or the loyalty card.");
    const customer = await api("GET", `/customers/lookup?${lookupQuery(values.lookup)}`);
    await attach(customer.id);
    showCustomer(customer);
    say(`Customer #${customer.id} attached: ${customer.loyalty_points} points.`, "ok");
  });
  $("[data-create]", dialogs.customer).addEventListener("click", async () => {
    errorIn(dialogs.customer, null);
    const text = $("#customer-phone").value.trim().replace(/[\s()-]/g, "");
    try {
      if (!/^\+?\d{7,15}$/.test(text)) throw invalid("Enter the new customer's phone number first.");
      const customer = await api("POST", "/customers", { body: { phone: text } });
      await attach(customer.id);
      showCustomer(customer);
    } catch (exc) {
      errorIn(dialogs.customer, exc);
    }
  });
  $("[data-detach]", dialogs.customer).addEventListener("click", async () => {
    try {
      if (state.sale) setSale(await api("PUT", `/sales/${state.sale.id}/customer`, { body: { customer_id: null } }));
      showCustomer(null);
    } catch (exc) {
      errorIn(dialogs.customer, exc);
    }
  });

  $("[data-suspend]", dialogs.suspended).addEventListener("click", () =>
    suspend().catch((exc) => errorIn(dialogs.suspended, exc)),
  );
  dialogs.suspended.addEventListener("keydown", (event) => {
    if (event.altKey && event.code === "KeyU") {
      event.preventDefault();
      suspend().catch((exc) => errorIn(dialogs.suspended, exc));
    }
  });
  $("#suspended-list").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-sale-id]");
    if (button) resume(Number(button.dataset.saleId)).catch((exc) => errorIn(dialogs.suspended, exc));
  });
  // The list is a column of buttons: arrows move between them.
  dialogs.suspended.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const buttons = Array.from(dialogs.suspended.querySelectorAll("#suspended-list button"));
    if (!buttons.length) return;
    event.preventDefault();
    const index = buttons.indexOf(document.activeElement);
    buttons[Math.min(buttons.length - 1, Math.max(0, index + (event.key === "ArrowDown" ? 1 : -1)))].focus();
  });
}
