// Proof of age: licence scans (see idcapture.js), manual entry, the big result and the manager override.
// The decision is the server's (POST /compliance/id-checks); this shows it so that it cannot be misread.

import { api } from "../api.js";
import { $, closeDialog, openDialog } from "../ui.js";
import {
  beep,
  ensureSale,
  errorIn,
  fail,
  invalid,
  onSubmit,
  refreshIdStatus,
  refreshStatus,
  say,
  serial,
  state,
} from "./context.js";

const dialog = $("#dlg-id");
const resultDialog = $("#dlg-id-result");
const overrideDialog = $("#dlg-override");
let capture = null;
let refusal = null; // {event_id, reason} of the last refusal, for the override

const WORDS = {
  ok: "OF AGE",
  underage: "UNDERAGE",
  expired: "EXPIRED",
  hours: "OUT OF HOURS",
  refused: "ID REFUSED",
};

export function useCapture(idCapture) {
  capture = idCapture;
}

export function showCaptureState(captureState) {
  const line = $("#id-capture-state");
  line.dataset.state = captureState;
  line.textContent = {
    armed: "Ready: scan the licence now. Everything the scanner types goes to the ID check.",
    pending: "Reading the ID…",
    capturing: "Reading the ID…",
    idle: dialog.open ? "Press F9 to scan a licence." : "",
    manual: "Manual entry. Press F9 to scan a licence instead.",
  }[captureState];
  if (captureState === "capturing") say("Reading the ID…", "info");
}

export function open() {
  $("#form-id-manual").reset();
  errorIn(dialog, null);
  openDialog(dialog, "#id-capture-state");
  capture.arm();
  showCaptureState("armed");
}

function showResult(kind, detail, overridable) {
  const word = $("#id-result-word");
  word.textContent = WORDS[kind];
  resultDialog.dataset.kind = kind;
  $("#id-result-detail").textContent = detail;
  $("[data-override]", resultDialog).hidden = !overridable;
  if (kind !== "ok") beep();
  say(`${WORDS[kind]}: ${detail}`, kind === "ok" ? "ok" : "error");
  closeDialog(dialog);
  openDialog(resultDialog, "button[data-close]");
}

// The sale hours forbid alcohol now (the server's decision: the register status or a refused checkout).
export function showOutOfHours(detail) {
  showResult("hours", detail, false);
}

// The check runs after the sale changes already on their way (serial): a licence scanned right after the
// bottle is checked once the server has the bottle, for the age that the bottle needs. `whenNeeded`: only if
// the sale then asks for an ID (the server's `needs_id_check`); otherwise the licence is neither sent nor
// kept, and the screen says that no ID is needed.
async function check(evidence, { whenNeeded = false } = {}) {
  capture.disarm();
  say("Checking the ID…", "info");
  await serial(async () => {
    if (whenNeeded && !(state.sale && state.sale.needs_id_check)) {
      say(
        "No ID needed: nothing in this sale is age-restricted, so the licence was not checked. " +
          "Scan it again when an age-restricted item is in the sale.",
        "info",
      );
      return;
    }
    try {
      const sale = await ensureSale();
      const result = await api("POST", "/compliance/id-checks", { body: { ...evidence, sale_id: sale.id } });
      refusal = null;
      await refreshIdStatus();
      // Of age, but alcohol may still not be sold now: say so before the cashier bags the bottle.
      const status = await refreshStatus();
      if (!status.sale_hours.allowed) {
        showOutOfHours("The customer is of age, but alcohol may not be sold at this time.");
      } else {
        showResult("ok", `Checked for ${result.checked_min_age}+ (${result.method}). You may sell.`, false);
      }
    } catch (exc) {
      await refreshIdStatus().catch(() => {});
      const details = exc.details || {};
      refusal = details.event_id ? { event_id: details.event_id, reason: details.reason } : null;
      const kind = exc.code === "underage" ? "underage" : exc.code === "id_expired" ? "expired" : "refused";
      if (exc.code && exc.code.startsWith("id_") || exc.code === "underage") {
        showResult(kind, exc.message, Boolean(details.overridable));
      } else if (dialog.open) {
        errorIn(dialog, exc);
      } else {
        fail(exc);
      }
    }
  });
}

export function submitScan(raw, { explicit = false } = {}) {
  const isId = /ANSI |AAMVA/.test(raw);
  if (explicit && !isId) {
    // Keys typed into the armed dialog by hand are not an ID: nothing is checked or recorded.
    fail(invalid("That was not an ID barcode. Scan the licence again, or use manual entry."));
    if (dialog.open) capture.arm();
    return;
  }
  if (!isId && raw.replace(/\s/g, "").length <= 1) {
    // "@" and control keys, nothing more: a scan cut short (or "@" then Enter typed by hand).
    fail(invalid("The ID scan was cut short. Scan the licence again, or press F9 for manual entry."));
    return;
  }
  if (!state.shift) {
    fail(invalid("Open the shift first."));
    return;
  }
  // A scan that arrives on its own (not in the F9 dialog) is checked only when the sale needs an ID.
  check({ method: "scan", raw }, { whenNeeded: !explicit });
}

// A key typed over the result (a product scanned next, a name to search) closes it and goes to the scan
// field: the scanner never waits for the cashier to press OK.
export function passThrough(scanField) {
  resultDialog.addEventListener("keydown", (event) => {
    if (event.key.length !== 1 || event.key === " " || event.ctrlKey || event.altKey || event.metaKey) return;
    closeDialog(resultDialog);
    scanField.focus();
  });
}

export function init() {
  onSubmit($("#form-id-manual"), async (values) => {
    if (!values.dob || !values.expires) throw invalid("Enter the date of birth and the expiry date.");
    if (!values.photo_compared) throw invalid("Compare the photo with the customer, then tick the box.");
    await check({
      method: "manual",
      dob: values.dob,
      expires: values.expires,
      document_type: values.document_type,
      photo_compared: true,
    });
  });
  dialog.addEventListener("close", () => capture.disarm());
  // Typing a manual entry: the scanner capture steps back ("@" + a control key is still caught).
  $("#form-id-manual").addEventListener("focusin", () => {
    capture.disarm();
    showCaptureState("manual");
  });
  dialog.addEventListener("keydown", (event) => {
    if (event.key === "F9") {
      event.preventDefault();
      $("#id-capture-state").focus();
      capture.arm();
      showCaptureState("armed");
    }
  });

  const openOverride = () => {
    if (!refusal) return;
    $("#form-override").reset();
    errorIn(overrideDialog, null);
    $("[data-unreadable]", overrideDialog).hidden = refusal.reason !== "unreadable";
    closeDialog(resultDialog);
    openDialog(overrideDialog, "#override-manager");
  };
  $("[data-override]", resultDialog).addEventListener("click", openOverride);
  resultDialog.addEventListener("keydown", (event) => {
    if (event.altKey && event.code === "KeyO" && !$("[data-override]", resultDialog).hidden) {
      event.preventDefault();
      openOverride();
    }
  });

  onSubmit($("#form-override"), async (values) => {
    const secret = values.manager_secret;
    const body = { manager_username: values.manager_username, reason: values.reason };
    if (/^\d{4,8}$/.test(secret)) body.manager_pin = secret;
    else body.manager_password = secret;
    if (refusal.reason === "unreadable") {
      Object.assign(body, { dob: values.dob || null, expires: values.expires || null, document_type: "driver_license" });
    }
    await api("POST", `/compliance/id-checks/${refusal.event_id}/override`, { body });
    refusal = null;
    closeDialog(overrideDialog);
    await refreshIdStatus();
    showResult("ok", "A manager approved the ID. You may sell.", false);
  });
}
