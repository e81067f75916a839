// Stores and settings: the store's details and tax rates, its policies (sale hours …), its registers.

import { api } from "../api.js";
import { $ } from "../ui.js";
import { boot, can, failed, invalid, notify, onForm, storeId, table } from "./common.js";

let settings = null;

function fillStore(store) {
  const form = $("#store-form");
  for (const name of ["name", "address", "county", "timezone", "state_tax_rate", "local_tax_rate"]) {
    form.elements[name].value = store[name] ?? "";
  }
  $("#store-title").textContent = `Store ${store.code}: ${store.name}`;
}

function fillSettings(document) {
  settings = document;
  const form = $("#settings-form");
  const window = (document.sale_hours?.default || [])[0];
  form.elements.opens.value = window ? window.opens : "";
  form.elements.closes.value = window ? window.closes : "";
  form.elements.min_clerk_age.value = document.min_clerk_age ?? "";
  form.elements.allow_negative_stock.checked = Boolean(document.allow_negative_stock);
  form.elements.keep_id_details.checked = Boolean(document.keep_id_details);
  form.elements.document.value = JSON.stringify(document, null, 2);
}

async function registers(id) {
  const rows = await api("GET", `/stores/${id}/registers`);
  $("#register-list").replaceChildren(
    table(
      "Registers of the store",
      [
        { label: "Id", value: (r) => r.id, num: true },
        { label: "Code", value: (r) => r.code },
        { label: "Name", value: (r) => r.name },
        { label: "Card reader", value: (r) => r.card_reader_id ?? "none" },
        { label: "Active", value: (r) => (r.is_active ? "yes" : "no") },
      ],
      rows,
    ),
  );
}

async function start() {
  const id = storeId();
  if (!id) return;
  try {
    fillStore(await api("GET", `/stores/${id}`));
    fillSettings((await api("GET", `/stores/${id}/settings`)).settings);
    await registers(id);
  } catch (exc) {
    failed(exc);
  }
}

onForm($("#store-form"), async (values) => {
  const store = await api("PATCH", `/stores/${storeId()}`, { body: values });
  fillStore(store);
  notify(`Saved store ${store.code}.`, "ok");
});

onForm($("#settings-form"), async (values) => {
  let document;
  try {
    document = JSON.parse(values.document);
  } catch {
    throw invalid("The JSON of the policies is not valid.");
  }
  // The simple fields win over the JSON when they were changed.
  const before = settings.sale_hours?.default?.[0];
  if (values.opens && values.closes && (!before || before.opens !== values.opens || before.closes !== values.closes)) {
    document.sale_hours = { ...(document.sale_hours || {}), default: [{ opens: values.opens, closes: values.closes }] };
  }
  if (values.min_clerk_age) document.min_clerk_age = Number(values.min_clerk_age);
  document.allow_negative_stock = values.allow_negative_stock;
  document.keep_id_details = values.keep_id_details;
  const saved = await api("PUT", `/stores/${storeId()}/settings`, { body: document });
  fillSettings(saved.settings);
  notify("Policies saved.", "ok");
});

if (can("stores.manage")) {
  onForm($("#register-form"), async (values, form) => {
    const register = await api("POST", `/stores/${storeId()}/registers`, {
      body: { code: values.code, name: values.name, card_reader_id: values.card_reader_id || null },
    });
    form.reset();
    notify(`Added register ${register.code}.`, "ok");
    await registers(storeId());
  });
}

boot(start);
