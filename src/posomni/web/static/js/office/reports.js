// Reports: sales by day, category or hour; the Z history; the compliance summary.

import { api } from "../api.js";
import { daysAgo, dateTime, money, today } from "../format.js";
import { $, el } from "../ui.js";
import { boot, can, failed, onForm, storeQuery, table, values } from "./common.js";

async function sales(period) {
  const report = await api("GET", `/web/api/reports/sales?from=${period.from}&to=${period.to}&by=${period.by}${storeQuery("&")}`);
  $("#sales-report").replaceChildren(
    el("p", {}, `${report.total_sales} sale(s), net ${money(report.total_net_cents)}.`),
    table(
      `Sales by ${report.by}`,
      [
        { label: report.by === "day" ? "Day" : report.by === "hour" ? "Hour" : "Category", value: (b) => b.key },
        { label: "Sales", value: (b) => b.sales, num: true },
        { label: "Sold", value: (b) => money(b.sales_cents), num: true },
        { label: "Returns", value: (b) => b.returns, num: true },
        { label: "Returned", value: (b) => money(b.returns_cents), num: true },
        { label: "Net", value: (b) => money(b.net_cents), num: true },
      ],
      report.buckets,
      "No sales in this period.",
    ),
  );
}

async function zHistory(period) {
  const shifts = await api("GET", `/web/api/shifts?from=${period.from}&to=${period.to}${storeQuery("&")}`);
  $("#z-history").replaceChildren(
    table(
      "Shifts, newest first",
      [
        { label: "Shift", value: (s) => s.id, num: true },
        { label: "Register", value: (s) => s.register_name },
        { label: "Day", value: (s) => s.business_date },
        { label: "Opened", value: (s) => `${dateTime(s.opened_at)} by ${s.opened_by}` },
        { label: "Closed", value: (s) => (s.closed_at ? `${dateTime(s.closed_at)} by ${s.closed_by}` : "open") },
        { label: "Expected", value: (s) => (s.expected_cash_cents === null ? "" : money(s.expected_cash_cents)), num: true },
        { label: "Counted", value: (s) => (s.counted_cash_cents === null ? "" : money(s.counted_cash_cents)), num: true },
        { label: "Over / short", value: (s) => (s.over_short_cents === null ? "" : money(s.over_short_cents)), num: true },
        {
          label: "Z report",
          value: (s) =>
            s.status === "closed" && can("drawer.close")
              ? el("a", { href: `/shifts/${s.id}/z-report?format=html`, target: "_blank", rel: "noopener" }, `Z report ${s.id}`)
              : "",
        },
      ],
      shifts,
      "No shifts in this period.",
    ),
  );
}

async function compliance(period) {
  if (!can("compliance.reports")) return;
  const report = await api("GET", `/compliance/reports/summary?from=${period.from}&to=${period.to}${storeQuery("&")}`);
  const totals = report.totals;
  $("#compliance-report").replaceChildren(
    el(
      "p",
      { class: report.unverified_sales ? "error" : "ok-text" },
      `${totals.checks} check(s): ${totals.passed} passed, ${totals.refused} refused, ${totals.overridden} overridden. ` +
        `Age-restricted sales without a passing check: ${report.unverified_sales}.`,
    ),
    table(
      "Refusals",
      [
        { label: "When", value: (r) => dateTime(r.occurred_at) },
        { label: "Clerk", value: (r) => r.clerk },
        { label: "Method", value: (r) => r.method },
        { label: "Reason", value: (r) => r.reason ?? "" },
        { label: "Overridden", value: (r) => (r.overridden_by_event_id ? "yes" : "") },
      ],
      report.refusals,
      "No refusals.",
    ),
    table(
      "Overrides",
      [
        { label: "When", value: (o) => dateTime(o.occurred_at) },
        { label: "Clerk", value: (o) => o.clerk },
        { label: "Manager", value: (o) => o.manager ?? "" },
        { label: "Refused for", value: (o) => o.reason ?? "" },
        { label: "Why", value: (o) => o.override_reason ?? "" },
      ],
      report.overrides,
      "No overrides.",
    ),
  );
}

async function show(period) {
  await Promise.all([sales(period), zHistory(period), compliance(period)]);
}

const form = $("#period-form");
form.elements.from.value = daysAgo(6);
form.elements.to.value = today();
onForm(form, show);
boot(() => show(values(form)).catch(failed));
