// Products: search, edit (price with its reason, pack structure, barcodes), price history, CSV import.

import { api } from "../api.js";
import { dateTime, money, parseCents } from "../format.js";
import { $, el } from "../ui.js";
import { boot, can, failed, invalid, notify, onForm, storeId, table } from "./common.js";

const editor = $("#product-editor");
const form = $("#product-form");
let product = null; // the product being edited (ProductOut), or null for a new one
let categories = [];

const dollars = (cents) => (cents === null || cents === undefined ? "" : (cents / 100).toFixed(2));

async function search(values) {
  const query = new URLSearchParams({ q: values.q || "", limit: "50", include_inactive: String(Boolean(values.include_inactive)) });
  const page = await api("GET", `/catalog/products?${query}`);
  $("#product-results").replaceChildren(
    table(
      "Products found",
      [
        { label: "SKU", value: (p) => p.sku },
        {
          label: "Product",
          value: (p) =>
            el("button", { type: "button", class: "link", dataset: { productId: p.id } }, `${p.name} ${p.size}`),
        },
        { label: "Pack", value: (p) => (p.units_per_pack > 1 ? `${p.units_per_pack} × #${p.base_product_id}` : "single") },
        { label: "21+", value: (p) => (p.age_restricted ? "yes" : "") },
        { label: "Active", value: (p) => (p.is_active ? "yes" : "no") },
        { label: "Price", value: (p) => money(p.price_cents), num: true },
      ],
      page.items,
      "No product matches.",
    ),
  );
}

function fill(found) {
  product = found;
  $("#editor-title").textContent = found ? `${found.name} ${found.size}` : "New product";
  const set = (name, value) => {
    const field = form.elements[name];
    if (field.type === "checkbox") field.checked = Boolean(value);
    else field.value = value ?? "";
  };
  set("sku", found?.sku);
  set("name", found?.name);
  set("brand", found?.brand);
  set("size", found?.size);
  set("category_id", found?.category_id ?? categories[0]?.id);
  set("price", dollars(found?.price_cents));
  set("price_reason", "");
  set("cost", dollars(found?.cost_cents));
  set("tax_class", found?.tax_class);
  set("deposit_class", found?.deposit_class);
  set("age_restricted", found ? found.age_restricted : false);
  set("min_age", found?.min_age);
  set("base_product_id", found?.base_product_id);
  set("units_per_pack", found?.units_per_pack ?? 1);
  set("is_active", found ? found.is_active : true);
  $("[data-error]", form).textContent = "";
  $("#barcode-list").replaceChildren(
    ...(found?.barcodes || []).map((b) =>
      el(
        "li",
        {},
        b.display,
        can("catalog.edit")
          ? el("button", { type: "button", class: "small", dataset: { removeBarcode: b.gtin }, "aria-label": `Remove barcode ${b.display}` }, "Remove")
          : null,
      ),
    ),
  );
  editor.hidden = false;
}

async function showPackStructure(found) {
  const line = $("#pack-structure");
  line.textContent = "";
  if (found && found.base_product_id) {
    const base = await api("GET", `/catalog/products/${found.base_product_id}`);
    line.textContent = `A pack of ${found.units_per_pack} × ${base.name} ${base.size} (#${base.id}, ${money(base.price_cents)} each). Stock is kept on the base unit.`;
  } else if (found) {
    line.textContent = "A base unit: its stock is counted in these units; packs and cases point at it.";
  }
}

async function showHistory(found) {
  const holder = $("#price-history");
  if (!found || !can("reports.view")) {
    holder.replaceChildren();
    return;
  }
  const rows = await api("GET", `/catalog/products/${found.id}/price-history`);
  holder.replaceChildren(
    table(
      "Price changes, newest first",
      [
        { label: "When", value: (r) => dateTime(r.changed_at) },
        { label: "Old", value: (r) => (r.old_price_cents === null ? "" : money(r.old_price_cents)), num: true },
        { label: "New", value: (r) => money(r.new_price_cents), num: true },
        { label: "By (user id)", value: (r) => r.changed_by ?? "" },
        { label: "Source", value: (r) => r.source },
        { label: "Reason", value: (r) => r.reason },
      ],
      rows,
      "No price changes yet.",
    ),
  );
}

async function open(productId) {
  const found = await api("GET", `/catalog/products/${productId}`);
  fill(found);
  // Focus first: moving it after the slower loads below could take keys already being typed elsewhere.
  $("#p-name").focus();
  await showPackStructure(found);
  await showHistory(found);
}

function bodyOf(values) {
  const price = parseCents(values.price);
  if (price === null) throw invalid("Enter the price in dollars, e.g. 21.99.");
  const cost = values.cost === "" ? null : parseCents(values.cost);
  if (values.cost !== "" && cost === null) throw invalid("Enter the cost in dollars, e.g. 14.10.");
  const number = (text) => (text === "" ? null : Number(text));
  return {
    sku: values.sku,
    name: values.name,
    brand: values.brand,
    size: values.size,
    category_id: Number(values.category_id),
    price_cents: price,
    cost_cents: cost,
    tax_class: values.tax_class || null,
    deposit_class: values.deposit_class || null,
    age_restricted: values.age_restricted,
    min_age: number(values.min_age),
    base_product_id: number(values.base_product_id),
    units_per_pack: number(values.units_per_pack) || 1,
    is_active: values.is_active,
  };
}

async function save(values) {
  const wanted = bodyOf(values);
  if (!product) {
    if (wanted.cost_cents === null) wanted.cost_cents = 0;
    const created = await api("POST", "/catalog/products", { body: wanted });
    notify(`Created ${created.name}.`, "ok");
    await open(created.id);
    return;
  }
  // Only what changed is sent: the server keeps the rest (and records a price change with its reason).
  const changes = {};
  for (const [key, value] of Object.entries(wanted)) {
    if (value !== (product[key] ?? null)) changes[key] = value;
  }
  if ("price_cents" in changes) changes.price_reason = values.price_reason;
  if (!Object.keys(changes).length) {
    notify("Nothing changed.", "info");
    return;
  }
  const saved = await api("PATCH", `/catalog/products/${product.id}`, { body: changes });
  notify(`Saved ${saved.name}${"price_cents" in changes ? `: now ${money(saved.price_cents)}` : ""}.`, "ok");
  await open(saved.id);
}

function importReport(report) {
  const summary = report.imported
    ? `Imported ${report.rows - report.skipped} of ${report.rows} rows: ${report.created} created, ${report.updated} updated, ${report.unchanged} unchanged, ${report.skipped} skipped; ${report.price_changes} price changes.`
    : report.error_count
      ? `${report.error_count} problem(s) in ${report.rows} rows: nothing imported.`
      : `All ${report.rows} rows are valid${report.dry_run ? " (dry run: nothing imported)" : ""}.`;
  $("#import-report").replaceChildren(
    el("p", { class: report.error_count && !report.imported ? "error" : "ok-text" }, summary),
    ...report.warnings.map((w) => el("p", { class: "muted" }, `Warning: ${w}`)),
    report.errors.length
      ? table("Row errors (the header is line 1)", [
          { label: "Line", value: (e) => e.line, num: true },
          { label: "SKU", value: (e) => e.sku },
          { label: "Column", value: (e) => e.field },
          { label: "Problem", value: (e) => e.code },
          { label: "What to fix", value: (e) => e.message },
        ], report.errors)
      : "",
  );
  notify(summary, report.error_count && !report.imported ? "error" : "ok");
}

async function start() {
  try {
    categories = await api("GET", "/catalog/categories");
    $("#p-category").replaceChildren(...categories.map((c) => el("option", { value: c.id }, c.name)));
  } catch (exc) {
    failed(exc);
  }
}

onForm($("#product-search"), search);
onForm(form, save);
$("#product-results").addEventListener("click", (event) => {
  const button = event.target.closest("[data-product-id]");
  if (button) open(Number(button.dataset.productId)).catch(failed);
});
const newButton = $("#new-product");
if (newButton) {
  newButton.addEventListener("click", () => {
    fill(null);
    showPackStructure(null);
    showHistory(null);
    $("#p-sku").focus();
  });
}
const barcodeForm = $("#barcode-form");
if (barcodeForm) {
  onForm(barcodeForm, async (values) => {
    if (!product) throw invalid("Save the product first.");
    fill(await api("POST", `/catalog/products/${product.id}/barcodes`, { body: { code: values.code } }));
    barcodeForm.reset();
    notify("Barcode added.", "ok");
  });
}
$("#barcode-list").addEventListener("click", async (event) => {
  const button = event.target.closest("[data-remove-barcode]");
  if (!button || !product) return;
  try {
    fill(await api("DELETE", `/catalog/products/${product.id}/barcodes/${button.dataset.removeBarcode}`));
    notify("Barcode removed.", "ok");
  } catch (exc) {
    failed(exc);
  }
});
const importForm = $("#import-form");
if (importForm) {
  onForm(importForm, async (values) => {
    const data = new FormData();
    const file = $("#import-file").files[0];
    if (!file) throw invalid("Choose the CSV file.");
    data.append("file", file);
    data.append("dry_run", String(values.dry_run));
    data.append("skip_invalid", String(values.skip_invalid));
    if (storeId()) data.append("store_id", String(storeId()));
    importReport(await api("POST", "/web/api/catalog/import", { form: data }));
  });
}

boot(start);
