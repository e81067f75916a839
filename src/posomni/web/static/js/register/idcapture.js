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
//    field it was meant for, with the key that followed.
// 2. The F9 dialog *arms* the capture explicitly: the next key, whatever it is, starts capturing (Tab, Esc
//    and the function keys instead leave the armed state, to type a manual entry or close the dialog).
// 3. While capturing, every keydown is swallowed (preventDefault + stopImmediatePropagation) and turned into
//    its character (Enter → LF; Ctrl+^ → RS; Ctrl+J/M → LF/CR); characters that arrive without a key
//    (`beforeinput` text, as some wedges and test drivers send RS) are taken from the sink. Nothing reaches
//    the scan field, a dialog's fields or the keyboard shortcuts.
// 4. The scan ends after a quiet period with no key (scanners type a whole card in well under a second), or
//    at the size limit; the text is handed to `onScan` exactly once. The server parses it and drops it.

const MODIFIERS = new Set(["Shift", "Control", "Alt", "Meta", "CapsLock", "AltGraph", "NumLock"]);
const MAX_LENGTH = 16384;

export class IdCapture {
  constructor({ sink, onScan, onState = () => {}, quietMs = 250, pendingMs = 300 }) {
    this.sink = sink;
    this.onScan = onScan;
    this.onState = onState;
    this.quietMs = quietMs;
    this.pendingMs = pendingMs;
    this.state = "idle"; // idle | armed | pending | capturing
    this.buffer = "";
    this.returnTo = null;
    this.timer = null;
    this.explicit = false; // started by the hotkey, not by "@" + a control character
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
    if (this.state === "idle" || this.state === "armed") return;
    event.preventDefault();
    event.stopImmediatePropagation();
    if (event.data) {
      if (this.state === "pending") this.setState("capturing");
      this.append(event.data);
    }
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
    this.returnTo = target instanceof HTMLElement ? target : null;
    this.buffer = state === "pending" ? "@" : "";
    this.setState(state);
    this.sink.value = "";
    this.sink.focus({ preventScroll: true });
    this.restartTimer();
  }

  append(text) {
    this.buffer += text;
    if (this.buffer.length >= MAX_LENGTH) {
      this.finish();
      return;
    }
    this.restartTimer();
  }

  restartTimer() {
    clearTimeout(this.timer);
    const wait = this.state === "pending" ? this.pendingMs : this.quietMs;
    this.timer = setTimeout(() => (this.state === "pending" ? this.giveBack("@") : this.finish()), wait);
  }

  // Not a scan after all: a person typed "@" (and maybe one more key) into a field.
  giveBack(text) {
    clearTimeout(this.timer);
    this.buffer = "";
    this.setState("idle");
    const target = this.returnTo;
    this.returnTo = null;
    if (target && typeof target.setRangeText === "function") {
      target.focus();
      target.setRangeText(text, target.selectionStart ?? target.value.length, target.selectionEnd ?? target.value.length, "end");
      target.dispatchEvent(new Event("input", { bubbles: true }));
    } else if (target) {
      target.focus();
    }
  }

  finish() {
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
    if (raw.replace(/\s/g, "").length > 1) this.onScan(raw, { explicit: this.explicit });
  }
}

function isControl(char) {
  return char.charCodeAt(0) < 32;
}
