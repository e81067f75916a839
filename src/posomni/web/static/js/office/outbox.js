// The outbox: what waits for the back office, what fails, and the dead messages (retry one).

import { api } from "../api.js";
import { dateTime } from "../format.js";
import { $, el } from "../ui.js";
import { boot, failed, notify, table } from "./common.js";

async function load() {
  const status = await api("GET", "/web/api/outbox");
  const figures = [
    ["Waiting", status.pending],
    ["Failing (waiting to retry)", status.failing],
    ["Oldest waiting", status.oldest_pending_at ? `${dateTime(status.oldest_pending_at)} (${Math.round(status.oldest_pending_age_seconds)} s)` : "none"],
    ["Delivered", status.delivered ?? "–"],
    ["Dead", status.dead],
  ];
  $("#outbox-figures").replaceChildren(...figures.map(([label, value]) => el("div", {}, el("dt", {}, label), el("dd", {}, String(value)))));
  $("#dead-messages").replaceChildren(
    table(
      "Parked after too many failed attempts",
      [
        { label: "Id", value: (m) => m.id, num: true },
        { label: "Topic", value: (m) => m.topic },
        { label: "About", value: (m) => m.aggregate_id },
        { label: "Attempts", value: (m) => m.attempts, num: true },
        { label: "Last error", value: (m) => m.last_error ?? "" },
        { label: "Created", value: (m) => dateTime(m.created_at) },
        { label: "Action", value: (m) => el("button", { type: "button", class: "small", dataset: { retry: m.id } }, `Retry ${m.id}`) },
      ],
      status.dead_messages,
      "No dead messages.",
    ),
  );
}

$("#outbox-refresh").addEventListener("click", () => load().catch(failed));
$("#dead-messages").addEventListener("click", async (event) => {
  const button = event.target.closest("[data-retry]");
  if (!button) return;
  try {
    await api("POST", `/web/api/outbox/${button.dataset.retry}/retry`);
    notify(`Message ${button.dataset.retry} is queued again.`, "ok");
    await load();
  } catch (exc) {
    failed(exc);
  }
});

boot(() => load().catch(failed));
