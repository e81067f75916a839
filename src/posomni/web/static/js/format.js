// Display helpers. Amounts are integer cents everywhere; these only turn them into text and back.

const currency = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

export function money(cents) {
  return currency.format((cents || 0) / 100);
}

// "20" → 2000, "20.5" → 2050, "$1,234.56" → 123456; null when it is not an amount.
export function parseCents(text) {
  const cleaned = String(text).replace(/[$,\s]/g, "");
  if (!/^\d{1,7}(\.\d{0,2})?$/.test(cleaned)) return null;
  const [whole, fraction = ""] = cleaned.split(".");
  return Number(whole) * 100 + Number((fraction + "00").slice(0, 2));
}

export function dateTime(iso) {
  return iso ? new Date(iso).toLocaleString("en-US") : "";
}

export function today() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

export function daysAgo(days) {
  const then = new Date(Date.now() - days * 86400000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${then.getFullYear()}-${pad(then.getMonth() + 1)}-${pad(then.getDate())}`;
}
