import { api } from "./api.js";
import { describe } from "./messages.js";
import { $ } from "./ui.js";

// The terminal remembers which register it is (set at the first sign-in on it).
const REGISTER_KEY = "posomni.register";
const body = document.body;
const error = $("#signin-error");

function home(user) {
  const next = body.dataset.next;
  if (next) return next;
  return user.register_id && user.permissions.includes("sell") ? "/register" : "/office";
}

function selectTab(name) {
  for (const tab of ["password", "pin"]) {
    const selected = tab === name;
    $(`#tab-${tab}`).setAttribute("aria-selected", String(selected));
    $(`#tab-${tab}`).tabIndex = selected ? 0 : -1;
    $(`#form-${tab}`).hidden = !selected;
  }
  $(name === "pin" ? "#pin-username" : "#username").focus();
}

async function submit(event, path, fields) {
  event.preventDefault();
  error.textContent = "";
  const registerId = fields.register ? Number(fields.register) : null;
  try {
    const session = await api("POST", path, { body: { ...fields.credentials, register_id: registerId } });
    if (registerId) localStorage.setItem(REGISTER_KEY, String(registerId));
    if (!registerId && !session.user.permissions.includes("reports.view")) {
      // A cashier has nothing to do outside a register: sign out again and ask for it.
      await api("POST", "/auth/logout");
      error.textContent = "Choose this terminal's register to sell.";
      return;
    }
    window.location.assign(home(session.user));
  } catch (exc) {
    error.textContent = describe(exc);
  }
}

$("#form-password").addEventListener("submit", (event) =>
  submit(event, "/auth/login", {
    credentials: { username: $("#username").value.trim(), password: $("#password").value },
    register: $("#register").value,
  }),
);
$("#form-pin").addEventListener("submit", (event) =>
  submit(event, "/auth/pin", {
    credentials: { username: $("#pin-username").value.trim(), pin: $("#pin").value },
    register: $("#pin-register").value,
  }),
);
$("#tab-password").addEventListener("click", () => selectTab("password"));
$("#tab-pin").addEventListener("click", () => selectTab("pin"));
document.querySelector("[role=tablist]").addEventListener("keydown", (event) => {
  if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
    selectTab($("#tab-password").getAttribute("aria-selected") === "true" ? "pin" : "password");
  }
});

const remembered = localStorage.getItem(REGISTER_KEY);
if (remembered) {
  for (const select of [$("#register"), $("#pin-register")]) {
    if (Array.from(select.options).some((o) => o.value === remembered)) select.value = remembered;
  }
}
const params = new URLSearchParams(window.location.search);
if (params.get("mode") === "pin") selectTab("pin");
else $("#username").focus();

// Already signed in (a reload, the back button): go straight on.
api("GET", "/auth/me")
  .then((user) => {
    if (params.get("mode") !== "pin") window.location.assign(home(user));
  })
  .catch(() => {});
