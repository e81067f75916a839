// Users and roles: the staff list, editing a user, passwords, PINs, sessions; adding a user.

import { api } from "../api.js";
import { dateTime } from "../format.js";
import { $, $$, el } from "../ui.js";
import { boot, failed, notify, onForm, table } from "./common.js";

let users = [];
let current = null;

async function load() {
  users = await api("GET", "/users");
  $("#user-list").replaceChildren(
    table(
      "Every account",
      [
        { label: "Username", value: (u) => el("button", { type: "button", class: "link", dataset: { userId: u.id } }, u.username) },
        { label: "Name", value: (u) => u.full_name },
        { label: "Role", value: (u) => u.role },
        { label: "Store", value: (u) => u.store_id ?? "all" },
        { label: "Active", value: (u) => (u.is_active ? "yes" : "no") },
        { label: "PIN", value: (u) => (u.pin_locked_until ? "locked" : u.has_pin ? "set" : "") },
        { label: "Last sign-in", value: (u) => dateTime(u.last_login_at) },
      ],
      users,
    ),
  );
}

function edit(user) {
  current = user;
  const form = $("#user-form");
  $("#user-editor-title").textContent = `${user.username} (${user.role})`;
  form.elements.full_name.value = user.full_name;
  form.elements.role.value = user.role;
  form.elements.store_id.value = user.store_id ?? "";
  form.elements.birth_date.value = user.birth_date ?? "";
  $("#user-editor").hidden = false;
  form.elements.full_name.focus();
}

async function refresh(updated, message) {
  notify(message, "ok");
  await load();
  edit(updated);
}

function storeOf(text) {
  return text === "" ? null : Number(text);
}

onForm($("#user-form"), async (values) => {
  const updated = await api("PATCH", `/users/${current.id}`, {
    body: { full_name: values.full_name, role: values.role, store_id: storeOf(values.store_id), birth_date: values.birth_date || null },
  });
  await refresh(updated, `Saved ${updated.username}.`);
});
onForm($("#password-form"), async (values, form) => {
  const updated = await api("POST", `/users/${current.id}/password`, { body: { password: values.password } });
  form.reset();
  await refresh(updated, `New password set for ${updated.username}; their sessions ended.`);
});
onForm($("#pin-form"), async (values, form) => {
  const updated = await api("POST", `/users/${current.id}/pin`, { body: { pin: values.pin } });
  form.reset();
  await refresh(updated, `New PIN set for ${updated.username}.`);
});
onForm($("#create-form"), async (values, form) => {
  const created = await api("POST", "/users", {
    body: {
      username: values.username, full_name: values.full_name, role: values.role, store_id: storeOf(values.store_id),
      password: values.password, pin: values.pin || null, birth_date: values.birth_date || null,
    },
  });
  form.reset();
  await refresh(created, `Added ${created.username}.`);
});
for (const button of $$("[data-user-action]")) {
  button.addEventListener("click", async () => {
    if (!current) return;
    try {
      const updated = await api("POST", `/users/${current.id}/${button.dataset.userAction}`);
      await refresh(updated, `${updated.username}: done.`);
    } catch (exc) {
      failed(exc);
    }
  });
}
$("#user-list").addEventListener("click", (event) => {
  const button = event.target.closest("[data-user-id]");
  if (button) edit(users.find((u) => u.id === Number(button.dataset.userId)));
});

boot(() => load().catch(failed));
