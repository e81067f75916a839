// The audit log: entries (newest first) and the hash-chain verification.

import { api } from "../api.js";
import { dateTime } from "../format.js";
import { $, el } from "../ui.js";
import { boot, failed, notify, onForm, table } from "./common.js";

async function entries(action = "") {
  const query = new URLSearchParams({ limit: "100" });
  if (action) query.set("action", action);
  const rows = await api("GET", `/audit/entries?${query}`);
  $("#audit-entries").replaceChildren(
    table(
      "The latest entries",
      [
        { label: "When", value: (e) => dateTime(e.occurred_at) },
        { label: "Chain / seq", value: (e) => `${e.chain} #${e.seq}` },
        { label: "Who", value: (e) => (e.actor_id ? `#${e.actor_id} (${e.actor_role})` : "system") },
        { label: "Action", value: (e) => e.action },
        { label: "Target", value: (e) => (e.target_type ? `${e.target_type} ${e.target_id ?? ""}` : "") },
        { label: "Details", value: (e) => el("code", {}, JSON.stringify(e.details ?? {})) },
      ],
      rows,
      "No entries.",
    ),
  );
}

$("#verify").addEventListener("click", async () => {
  try {
    const result = await api("GET", "/audit/verify");
    $("#verify-result").replaceChildren(
      el("p", { class: result.ok ? "ok-text" : "error" }, result.ok ? "Every chain is intact." : "A chain is broken: see below."),
      table(
        "Chains",
        [
          { label: "Chain", value: (c) => c.chain },
          { label: "Entries checked", value: (c) => c.entries_checked, num: true },
          { label: "Intact", value: (c) => (c.ok ? "yes" : "NO") },
          { label: "First broken entry", value: (c) => c.first_broken_seq ?? "" },
          { label: "Problem", value: (c) => c.problem ?? "" },
        ],
        result.chains,
      ),
    );
    notify(result.ok ? "Audit chains verified." : "Audit chain broken.", result.ok ? "ok" : "error");
  } catch (exc) {
    failed(exc);
  }
});
onForm($("#audit-filter"), (values) => entries(values.action));

boot(() => entries().catch(failed));
