// The API's stable error codes in plain words: a short headline for the screen; the server's own message
// (already written for people) is shown under it.

const HEADLINES = {
  unknown_barcode: "Unknown barcode: not in the catalog",
  invalid_check_digit: "Barcode misread: scan it again",
  invalid_length: "Not a product barcode",
  invalid_characters: "Not a product barcode",
  coupon_not_a_product: "That is a coupon, not a product",
  product_inactive: "This product is not for sale",
  insufficient_stock: "Not enough stock",
  no_open_shift: "Open the shift first",
  shift_already_open: "The shift is already open",
  shift_has_open_sales: "Finish or suspend the open sales first",
  sale_not_open: "This sale can no longer be changed",
  sale_completing: "The sale is being completed",
  empty_sale: "Scan an item first",
  tenders_do_not_cover_total: "Not enough paid yet",
  tender_invalid: "Check the tender",
  card_declined: "Card declined",
  processor_unavailable: "Card payments unavailable: take cash",
  card_payments_disabled: "Card payments are not set up",
  card_payment_not_ready: "The card is not authorised yet",
  card_reader_offline: "Card reader offline",
  card_reader_busy: "Card reader busy",
  no_card_reader: "No card reader on this register",
  amount_out_of_range: "Card amount out of range",
  age_verification_required: "ID check needed",
  underage: "UNDERAGE: do not sell",
  id_expired: "ID EXPIRED",
  id_not_yet_issued: "ID not valid yet",
  id_missing_expiry: "No expiry date on the ID",
  id_missing_dob: "No date of birth on the ID",
  id_unreadable: "ID could not be read",
  outside_sale_hours: "OUT OF HOURS: no alcohol now",
  clerk_too_young: "Cashier too young: a manager must approve",
  manager_approval_failed: "Manager approval failed",
  pin_locked: "PIN locked",
  invalid_credentials: "Wrong username or password",
  invalid_pin: "Wrong user or PIN",
  too_many_attempts: "Too many attempts: wait a moment",
  permission_denied: "Not allowed for your role",
  not_authenticated: "Please sign in",
  csrf_failed: "Session check failed: reload the page",
  validation_error: "Some fields are not valid",
  manual_entry_incomplete: "Manual entry incomplete",
  override_not_allowed: "This refusal cannot be overridden",
  already_overridden: "Already overridden",
  return_invalid: "This return is not possible",
  void_not_allowed: "This sale cannot be voided",
  sale_not_found: "No such sale",
  not_found: "Not found",
  not_enough_points: "Not enough loyalty points",
  weak_password: "Password too weak",
  weak_pin: "PIN too easy to guess",
  duplicate_invoice: "Invoice already received",
  invalid_settings: "Some settings are not valid",
  rate_limited: "Too many requests: wait a moment",
  network_error: "Server unreachable",
  service_unavailable: "Service unavailable: try again shortly",
  idempotency_key_in_use: "Still working on it",
  checkout_failed: "The sale could not be completed",
  checkout_interrupted: "The last attempt was interrupted",
};

export function headline(error) {
  return HEADLINES[error.code] || "Something went wrong";
}

// The full sentence for a status line: "Headline. What the server says."
export function describe(error) {
  const title = headline(error);
  const fields = error.details && Array.isArray(error.details.fields)
    ? error.details.fields.map((f) => `${f.location.slice(1).join(".")}: ${f.message}`).join("; ")
    : "";
  const message = fields ? `${error.message} ${fields}` : error.message;
  return message && message !== title ? `${title}. ${message}` : title;
}
