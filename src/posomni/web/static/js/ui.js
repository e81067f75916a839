// Small DOM helpers shared by the screens (no framework: the pages are server-rendered shells).

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function $$(selector, root = document) {
  return Array.from(root.querySelectorAll(selector));
}

// el("td", {class: "amount"}, "text", child…): build an element; strings become text, never HTML.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function openDialog(dialog, focus) {
  if (!dialog.open) dialog.showModal();
  const target = focus ? $(focus, dialog) : dialog.querySelector("[autofocus], input, select, textarea, button");
  if (target) {
    target.focus();
    if (target.select && target.type !== "checkbox") target.select();
  }
}

export function closeDialog(dialog) {
  if (dialog.open) dialog.close();
}

export function anyDialogOpen() {
  return $$("dialog").some((d) => d.open);
}

export function setStatus(node, text, kind = "info") {
  node.textContent = text;
  node.dataset.kind = kind;
}

// Values of a form's named fields, trimmed; checkboxes as booleans.
export function formValues(form) {
  const values = {};
  for (const field of form.elements) {
    if (!field.name) continue;
    values[field.name] = field.type === "checkbox" ? field.checked : field.value.trim();
  }
  return values;
}

// The server's receipt or report HTML (a full document from the same origin, escaped by the server), shown
// inside the page: the body's nodes are adopted, never run (no scripts in it, and CSP forbids inline ones).
export function showDocument(container, html) {
  const parsed = new DOMParser().parseFromString(html, "text/html");
  container.replaceChildren(...Array.from(parsed.body.childNodes).map((n) => document.adoptNode(n)));
}
