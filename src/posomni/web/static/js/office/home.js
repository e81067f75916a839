import { api } from "../api.js";
import { money, today } from "../format.js";
import { $ } from "../ui.js";
import { boot, failed, storeQuery } from "./common.js";

async function start() {
  try {
    const day = today();
    const report = await api("GET", `/web/api/reports/sales?from=${day}&to=${day}${storeQuery("&")}`);
    $("#fig-sales").textContent = String(report.total_sales);
    $("#fig-net").textContent = money(report.total_net_cents);
    const low = await api("GET", `/inventory/low-stock${storeQuery()}`);
    $("#fig-low").textContent = String(low.length);
  } catch (exc) {
    failed(exc);
  }
}

boot(start);
