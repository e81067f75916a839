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

// When and by whom a shift opened or closed, on two short lines (the date, then the time and the user).
function stamp(iso, by) {
  const at = new Date(iso);
  const time = at.toLocaleTimeString("en-US", { hour: "numeric", minute: "2-digit" });
  return [el("span", { class: "nowrap" }, at.toLocaleDateString("en-US")), el("br"), `${time}, ${by}`];
}

const zLink = (id) => el("a", { href: `/shifts/${id}/z-report?format=html`, target: "_blank", rel: "noopener" }, `Z report ${id}`);
const cents = (value) => (value === null ? "" : money(value));

// The Z history fits 1024 px without scrolling: the shift, its register and business day in one cell,
// opened and closed as date / time and user, the cash figures in narrow number columns.
async function zHistory(period) {
  const shifts = await api("GET", `/web/api/shifts?from=${period.from}&to=${period.to}${storeQuery("&")}`);
  $("#z-history").replaceChildren(
    table(
      "Shifts, newest first",
      [
        {
          label: "Shift",
          value: (s) => [
            el("strong", {}, `#${s.id} ${s.register_name}`),
            el("br"),
            el("span", { class: "muted" }, `day ${s.business_date}`),
            ...(s.status === "closed" && can("drawer.close") ? [el("br"), zLink(s.id)] : []),
          ],
        },
        { label: "Opened", value: (s) => stamp(s.opened_at, s.opened_by) },
        { label: "Closed", value: (s) => (s.closed_at ? stamp(s.closed_at, s.closed_by) : el("strong", {}, "open")) },
        { label: "Expected", value: (s) => cents(s.expected_cash_cents), num: true },
        { label: "Counted", value: (s) => cents(s.counted_cash_cents), num: true },
        { label: "Over / short", value: (s) => cents(s.over_short_cents), num: true },
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
