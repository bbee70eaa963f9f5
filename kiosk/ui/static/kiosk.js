/* Kiosk screens: idle timeout, on-screen keypad and keyboard, common phrases,
   card reader / scanner input. Works with touch, mouse or a keyboard. */
(function () {
  "use strict";
  var body = document.body;
  var locale = body.getAttribute("data-locale") || "zh-CN";
  var home = body.getAttribute("data-home") || "/kiosk/";

  /* ---------------------------------------------------------------- idle timeout */
  var idleSeconds = parseInt(body.getAttribute("data-idle") || "90", 10);
  var warnSeconds = Math.min(10, Math.max(1, Math.floor(idleSeconds / 3)));
  var last = Date.now();
  var overlay = document.getElementById("idle");
  var count = document.getElementById("idle-count");
  var onHome = location.pathname === home && !location.search;
  function touched() {
    last = Date.now();
    if (overlay && !overlay.hidden) overlay.hidden = true;
  }
  ["pointerdown", "keydown", "input", "touchstart", "wheel"].forEach(function (e) {
    document.addEventListener(e, touched, { capture: true, passive: true });
  });
  function wipe() {
    document.querySelectorAll("form").forEach(function (f) { f.reset(); });
    location.replace(home);
  }
  setInterval(function () {
    if (onHome) return;
    var left = idleSeconds - Math.floor((Date.now() - last) / 1000);
    if (left <= 0) { wipe(); return; }
    if (left <= warnSeconds && overlay) {
      overlay.hidden = false;
      count.textContent = String(left);
    }
  }, 250);

  /* ---------------------------------------------------------------- keypad */
  var pad = document.getElementById("pad");
  var target = null;
  var LETTERS = "QWERTYUIOPASDFGHJKLZXCVBNM".split("");
  function key(label, value, cls) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "key" + (cls ? " " + cls : "");
    b.textContent = label;
    b.setAttribute("data-key", value);
    return b;
  }
  function build(kind) {
    var clearLabel = pad.getAttribute("data-clear") || "C";
    pad.innerHTML = "";
    var rows = document.createElement("div");
    rows.className = "keys " + (kind === "text" ? "letters" : "digits");
    var digits = "123456789".split("");
    if (kind === "text") {
      "1234567890".split("").concat(LETTERS).forEach(function (c) {
        rows.appendChild(key(c, c));
      });
      rows.appendChild(key(pad.getAttribute("data-space") || "␣", " ", "wide"));
      rows.appendChild(key(",", locale === "zh-CN" ? "，" : ","));
      rows.appendChild(key(".", locale === "zh-CN" ? "。" : "."));
    } else {
      digits.forEach(function (c) { rows.appendChild(key(c, c)); });
      rows.appendChild(kind === "reference" ? key("K", "K") : key(clearLabel, "\u0018", "action"));
      rows.appendChild(key("0", "0"));
      rows.appendChild(key("⌫", "\b", "action"));
    }
    if (kind === "text") {
      rows.appendChild(key("⌫", "\b", "action wide"));
      rows.appendChild(key(clearLabel, "\u0018", "action wide"));
    }
    if (kind === "reference") rows.appendChild(key(clearLabel, "\u0018", "action"));
    pad.appendChild(rows);
    pad.hidden = false;
    pad.setAttribute("aria-hidden", "false");
  }
  function insert(el, text) {
    var start = el.selectionStart == null ? el.value.length : el.selectionStart;
    var end = el.selectionEnd == null ? el.value.length : el.selectionEnd;
    var max = el.maxLength > 0 ? el.maxLength : 100000;
    if (text === "\b") {
      if (start === end && start > 0) start -= 1;
      el.value = el.value.slice(0, start) + el.value.slice(end);
      el.setSelectionRange(start, start);
    } else if (text === "\u0018") {
      el.value = "";
    } else {
      var next = el.value.slice(0, start) + text + el.value.slice(end);
      if (next.length > max) return;
      el.value = next;
      el.setSelectionRange(start + text.length, start + text.length);
    }
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function open(el) {
    if (target === el && !pad.hidden) return;
    target = el;
    build(el.getAttribute("data-pad"));
  }
  if (pad) {
    document.querySelectorAll("[data-pad]").forEach(function (el) {
      el.addEventListener("focus", function () { open(el); });
      // A field already focused gets no focus event when tapped: the tap opens it too.
      el.addEventListener("click", function () { open(el); });
    });
    // A field the page focused (autofocus, for the scanner) before this script ran.
    var focused = document.activeElement;
    if (focused && focused.hasAttribute && focused.hasAttribute("data-pad")) open(focused);
    pad.addEventListener("pointerdown", function (e) { e.preventDefault(); });
    pad.addEventListener("click", function (e) {
      var b = e.target.closest("[data-key]");
      if (!b || !target) return;
      insert(target, b.getAttribute("data-key"));
      target.focus();
    });
  }

  /* ---------------------------------------------------------------- phrases */
  document.querySelectorAll("[data-append]").forEach(function (b) {
    b.addEventListener("click", function () {
      var el = document.getElementById(b.getAttribute("data-target"));
      if (!el) return;
      var sep = el.value.trim() ? (locale === "zh-CN" ? "，" : ". ") : "";
      var text = el.value.replace(/\s+$/, "") + sep + b.getAttribute("data-append");
      if (el.maxLength > 0 && text.length > el.maxLength) return;
      el.value = text;
      el.dispatchEvent(new Event("input", { bubbles: true }));
    });
  });

  /* ---------------------------------------------------------------- one submit */
  document.querySelectorAll("form").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (f.getAttribute("data-sent")) { e.preventDefault(); return; }
      f.setAttribute("data-sent", "1");
      setTimeout(function () { f.removeAttribute("data-sent"); }, 8000);
    });
  });

  /* ---------------------------------------------------------------- cards and codes */
  function trackRef(code) {
    var text = code.trim();
    var m = /[?&]ref=([^&#]+)/.exec(text);
    if (m) text = decodeURIComponent(m[1]);
    text = text.replace(/[\s-]/g, "").toUpperCase();
    if (/^[0-9]{14}$/.test(text) || /^K[0-9]{6,20}$/.test(text)) return text;
    return null;
  }
  function showCard(card) {
    var digest = document.querySelector('[data-card="digest"]');
    var last4 = document.querySelector('[data-card="last4"]');
    var state = document.querySelector('[data-card="state"]');
    if (!digest || !last4) return false;
    digest.value = card.digest;
    last4.value = card.last4;
    if (state) state.textContent = state.getAttribute("data-template").replace("{masked}", card.masked);
    return true;
  }
  function scanned(code) {
    var ref = trackRef(code);
    if (ref) {
      var field = document.getElementById("ref");
      if (field && document.getElementById("last4")) {
        field.value = ref;
        document.getElementById("last4").focus();
      } else {
        location.href = body.getAttribute("data-track") + "&ref=" + encodeURIComponent(ref);
      }
      return;
    }
    var digits = code.replace(/\D/g, "");
    if (digits.length >= 8 && digits.length <= 19 && document.querySelector('[data-card="digest"]')) {
      var data = new URLSearchParams();
      data.set("number", digits);
      fetch("/kiosk/card", { method: "POST", body: data, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (card) { if (card) showCard(card); });
    }
  }
  /* A keyboard-wedge reader types fast and ends with Enter. */
  var buffer = "", lastKey = 0;
  document.addEventListener("keydown", function (e) {
    var now = Date.now();
    if (now - lastKey > 80) buffer = "";
    lastKey = now;
    var active = document.activeElement;
    var inField = active && (active.tagName === "INPUT" || active.tagName === "TEXTAREA");
    if (e.key === "Enter") {
      if (active && active.getAttribute("data-scan") === "track") {
        var ref = trackRef(active.value);
        if (ref) active.value = ref;
        if (!document.getElementById("last4").value) {
          e.preventDefault();
          document.getElementById("last4").focus();
        }
        buffer = "";
        return;
      }
      if (buffer.length >= 8 && !inField) {
        e.preventDefault();
        scanned(buffer);
      }
      buffer = "";
      return;
    }
    if (e.key.length === 1 && !inField) buffer += e.key;
  }, true);
  /* A serial reader's codes come from the kiosk runtime. */
  var inputUrl = body.getAttribute("data-input");
  if (inputUrl && window.fetch) {
    (function poll() {
      fetch(inputUrl + "?timeout=20", { cache: "no-store" })
        .then(function (r) { return r.status === 200 ? r.json() : null; })
        .then(function (got) {
          if (got && got.kind === "track") scanned(got.value);
          else if (got && got.kind === "card") showCard(got);
          setTimeout(poll, 50);
        })
        .catch(function () { setTimeout(poll, 3000); });
    })();
  }
})();
