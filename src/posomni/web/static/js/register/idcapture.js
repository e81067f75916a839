// ID capture: takes a licence scan (AAMVA PDF417) typed by a keyboard-wedge scanner as keystrokes, whole.
//
// An AAMVA scan starts "@", LF, RS (0x1E), CR, "ANSI 636…" and holds many LF/CR-separated elements. Typed
// into a page, the LFs and CRs arrive as Enter (which would submit the scan field, once per element) and RS
// as Ctrl+^ or as a bare character without a key. A product barcode never contains "@". So:
//
// 1. Listening on the window in the capture phase (before any field or shortcut sees a key), an "@" that is
//    not typed with Ctrl/Alt/Meta starts a *pending* capture: the "@" is held back, focus moves to a hidden
//    sink, and the next key decides. A control key (Enter, Tab, Ctrl+letter, a bare control character) means
//    a scanner: *capturing*. Anything else within the wait means a person typed "@": it is given back to the
//    field it was meant for, with the key that followed. The decision is the string's own, never the screen's
//    (whether the sale asks for an ID yet, a request in flight): a licence scanned back to back with a bottle
//    is taken whole. Should the keys pause after the "@" (the page busy), an "@" given back that is followed
//    by a control key is taken back from the field and the capture goes on.
// 2. The F9 dialog *arms* the capture explicitly: the next key, whatever it is, starts capturing (Tab, Esc
//    and the function keys instead leave the armed state, to type a manual entry or close the dialog).
// 3. While capturing, every keydown is swallowed (preventDefault + stopImmediatePropagation) and turned into
//    its character (Enter → LF; Ctrl+^ → RS; Ctrl+J/M → LF/CR); characters that arrive without a key
//    (`beforeinput` text, as some wedges and test drivers send RS) are taken from the sink. Nothing reaches
//    the scan field, a dialog's fields or the keyboard shortcuts.
// 4. The scan ends after a quiet period with no key, or at the size limit; the text is handed to `onScan`
//    exactly once. How long the quiet period is comes from the string itself: the AAMVA header declares its
//    subfiles' offsets and lengths, so until the declared end has arrived (or the header itself) a pause is
//    taken for the page or the scanner lagging, not for the end (`incompleteMs`); past it, `quietMs`. Cards
//    that declare more than they hold only take the longer wait. The server parses the text and drops it.
// 5. A product barcode scanned right after the licence, before the quiet period ran out, arrives as a line of
//    digits past the declared end (an AAMVA element always starts with letters): the capture ends before it
//    and the digits go to `onProduct`, after the licence.
const MODIFIERS = new Set(["Shift", "Control", "Alt", "Meta", "CapsLock", "AltGraph", "NumLock"]);
const MAX_LENGTH = 16384;
// "@", the separators (some wedges drop the RS or turn the CR into LF), "ANSI " (or "AAMVA" before 2000), the
// issuer (6 digits), the AAMVA version, the jurisdiction version (not in version 01), the number of subfiles,
// then per subfile its type, offset and length.
const HEADER = /^@[\n\r\x1e\t]{0,4}(?:ANSI |AAMVA)\d{6}(\d{2})(\d{2})?(\d{2})((?:[A-Z]{2}\d{8})+)/;
const HEADER_START = /^@[\n\r\x1e\t]{0,4}(?:ANSI |AAMVA)/;
// A card may declare a little more than it holds (a subfile said to run past the end).
const SLACK = 16;
const PRODUCT_LINE = /^\d{8,14}$/; // EAN-8, UPC-A, EAN-13, GTIN-14

// Where an AAMVA string ends by its own header: a number, null while the header is still arriving, or
// undefined when the text is not an AAMVA string at all.
export function declaredEnd(text) {
  if (!text.startsWith("@")) return undefined;
  const start = HEADER_START.exec(text);
  if (!start) {
    // "@" and separators so far: the header may still come.
    return /^@[\n\r\x1e\t]{0,4}[ANSIAMV ]{0,5}$/.test(text) ? null : undefined;
  }
  const header = HEADER.exec(text);
  if (!header) return text.length < start[0].length + 40 ? null : undefined;
  const count = Number(header[3]);
  const entries = header[4].match(/.{10}/g);
  if (count < 1 || entries.length < count) return text.length < start[0].length + 14 + count * 10 ? null : undefined;
  let end = 0;
  for (const entry of entries.slice(0, count)) {
    end = Math.max(end, Number(entry.slice(2, 6)) + Number(entry.slice(6, 10)));
  }
  return end;
}

export class IdCapture {
  constructor({
    sink,
    onScan,
    onProduct = () => {},
    onState = () => {},
    quietMs = 250,
    incompleteMs = 1200,
    pendingMs = 300,
    lateMs = 2000,
  }) {
    this.sink = sink;
    this.onScan = onScan;
    this.onProduct = onProduct;
    this.onState = onState;
    this.quietMs = quietMs;
    this.incompleteMs = incompleteMs;
    this.pendingMs = pendingMs;
    this.lateMs = lateMs;
    this.state = "idle"; // idle | armed | pending | capturing
    this.buffer = "";
    this.returnTo = null;
    this.timer = null;
    this.explicit = false; // started by the hotkey, not by "@" + a control character
    this.late = null; // an "@" given back after the wait: {target, at, until}
  }

  install(target = window) {
    target.addEventListener("keydown", (event) => this.keydown(event), true);
    target.addEventListener("beforeinput", (event) => this.beforeinput(event), true);
    return this;
  }

  arm() {
    this.setState("armed");
  }

  disarm() {
    if (this.state === "armed") this.setState("idle");
  }

  get busy() {
    return this.state === "pending" || this.state === "capturing";
  }

  setState(state) {
    this.state = state;
    this.onState(state);
  }

  swallow(event) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }

  keydown(event) {
    if (this.state === "idle") {
      if (MODIFIERS.has(event.key)) return;
      if (this.resume(this.charOf(event), event)) return;
      if (event.key === "@" && !event.ctrlKey && !event.altKey && !event.metaKey) {
        this.swallow(event);
        this.begin("pending", event.target);
      }
      return;
    }
    if (this.state === "armed" && (event.key === "Tab" || event.key === "Escape" || /^F\d+$/.test(event.key))) {
      // Moving on (to manual entry, out of the dialog, another function): not a scan.
      this.setState("idle");
      return;
    }
    this.swallow(event);
    if (MODIFIERS.has(event.key)) return;
    const char = this.charOf(event);
    if (this.state === "armed") {
      this.explicit = true;
      this.begin("capturing", document.activeElement);
      if (char !== null) this.append(char);
      return;
    }
    if (this.state === "pending") {
      if (char !== null && !isControl(char)) {
        this.giveBack("@" + char);
        return;
      }
      this.setState("capturing");
    }
    if (char !== null) this.append(char);
  }

  // Characters sent without a key (an RS from some scanners, or a test driver's insertText).
  beforeinput(event) {
    if (this.state === "idle") {
      if (event.data && this.resume(event.data.charAt(0), event)) this.append(event.data.slice(1));
      return;
    }
    if (this.state === "armed") return;
    event.preventDefault();
    event.stopImmediatePropagation();
    if (event.data) {
      if (this.state === "pending") this.setState("capturing");
      this.append(event.data);
    }
  }

  // An "@" given back after the wait, then LF, CR or RS (what follows the "@" of an AAMVA string; not Tab,
  // which a person may press to move on): the scan went on after a pause. The "@" is taken back out of the
  // field and the capture carries on from there.
  resume(char, event) {
    const late = this.late;
    this.late = null;
    if (!late || !/^[\n\r\x1e]$/.test(char ?? "") || performance.now() > late.until) return false;
    const target = late.target;
    if (document.activeElement !== target || target.value.charAt(late.at - 1) !== "@") return false;
    this.swallow(event);
    target.setRangeText("", late.at - 1, late.at, "end");
    target.dispatchEvent(new Event("input", { bubbles: true }));
    this.begin("pending", target);
    this.setState("capturing");
    this.append(char);
    return true;
  }

  charOf(event) {
    if (event.key === "Enter") return "\n";
    if (event.key === "Tab") return "\t";
    if (event.ctrlKey && event.key.length === 1) {
      const key = event.key === "6" ? "^" : event.key.toUpperCase();
      const code = key.charCodeAt(0);
      return code >= 64 && code <= 95 ? String.fromCharCode(code - 64) : null;
    }
    return event.key.length === 1 ? event.key : null;
  }

  begin(state, target) {
    if (state === "pending") this.explicit = false;
    this.late = null;
    this.returnTo = target instanceof HTMLElement ? target : null;
    this.buffer = state === "pending" ? "@" : "";
    this.setState(state);
    this.sink.value = "";
    this.sink.focus({ preventScroll: true });
    this.restartTimer();
  }

  append(text) {
    if (!text) return;
    this.buffer += text;
    if (this.buffer.length >= MAX_LENGTH) {
      this.finish();
      return;
    }
    if (/[\n\r]$/.test(text) && this.productAtEnd()) return;
    this.restartTimer();
  }

  // A line of digits past the licence's declared end is a product barcode scanned right after it.
  productAtEnd() {
    const body = this.buffer.slice(0, -1);
    const start = Math.max(body.lastIndexOf("\n"), body.lastIndexOf("\r")) + 1;
    const line = body.slice(start);
    if (start === 0 || !PRODUCT_LINE.test(line)) return false;
    const end = declaredEnd(this.buffer);
    if (typeof end !== "number" || start < end - SLACK) return false;
    this.buffer = this.buffer.slice(0, start);
    this.finish(line);
    return true;
  }

  // How long a pause ends the scan: longer while the string's own header says more is coming.
  waitMs() {
    if (this.state === "pending") return this.pendingMs;
    const end = declaredEnd(this.buffer);
    return end === null || (typeof end === "number" && this.buffer.length < end) ? this.incompleteMs : this.quietMs;
  }

  restartTimer() {
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => (this.state === "pending" ? this.giveBack("@", { waited: true }) : this.finish()),
      this.waitMs(),
    );
  }

  // Not a scan after all: a person typed "@" (and maybe one more key) into a field.
  giveBack(text, { waited = false } = {}) {
    clearTimeout(this.timer);
    this.buffer = "";
    this.setState("idle");
    const target = this.returnTo;
    this.returnTo = null;
    if (target && typeof target.setRangeText === "function") {
      target.focus();
      target.setRangeText(text, target.selectionStart ?? target.value.length, target.selectionEnd ?? target.value.length, "end");
      target.dispatchEvent(new Event("input", { bubbles: true }));
      if (waited) this.late = { target, at: target.selectionEnd, until: performance.now() + this.lateMs };
    } else if (target) {
      target.focus();
    }
  }

  finish(product = null) {
    clearTimeout(this.timer);
    const raw = this.buffer;
    this.buffer = "";
    this.sink.value = "";
    // Focus goes back where it was before the scan, so that nothing typed next lands in the sink.
    const target = this.returnTo;
    this.returnTo = null;
    if (target && target.isConnected && target !== this.sink) target.focus();
    else this.sink.blur();
    this.setState("idle");
    // Whatever was read is reported, even a scan cut short: the screen never stays on "Reading the ID…".
    if (raw.trim() !== "") this.onScan(raw, { explicit: this.explicit });
    if (product !== null) this.onProduct(product);
  }
}

function isControl(char) {
  return char.charCodeAt(0) < 32;
}
