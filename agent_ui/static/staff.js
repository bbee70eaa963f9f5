// Shared by the staff pages: the REST client (session cookie + CSRF token), the live
// connection to /ws (backoff, catch-up from the last event id, a visible state),
// DOM building that never parses citizen text as HTML, and keyboard shortcuts.
"use strict";

const Staff = (() => {
  const T = JSON.parse(document.getElementById("i18n").textContent);
  const meNode = document.getElementById("me");
  const me = meNode ? JSON.parse(meNode.textContent) : null;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  // ------------------------------------------------------------ DOM
  // Every piece of text goes in as a text node: citizen text can never become markup.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function toast(text, isError) {
    const box = document.getElementById("toast");
    box.textContent = text;
    box.className = isError ? "toast error" : "toast";
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, isError ? 6000 : 2500);
  }

  const fmt = new Intl.DateTimeFormat(me ? me.locale : "zh-CN", {
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  });
  function when(iso) {
    return iso ? fmt.format(new Date(iso)) : "—";
  }
  function pct(x) {
    return x === null || x === undefined ? "—" : (x * 100).toFixed(1) + "%";
  }
  function word(prefix, key) {
    return T[prefix + "." + key] || key;
  }

  // ------------------------------------------------------------ REST
  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.detail) || String(status));
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, path, body) {
    const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET") init.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    if (r.status === 401) {
      location.href = "/signin?next=" + encodeURIComponent(location.pathname);
      throw new ApiError(401, null);
    }
    const data = (r.headers.get("content-type") || "").includes("json") ? await r.json() : null;
    if (!r.ok) throw new ApiError(r.status, data);
    return data;
  }

  async function act(reference, action, body) {
    try {
      const t = await api("POST", `/api/v1/tickets/${reference}/actions/${action}`, body || {});
      toast(`${T[action] || action}: ${T.done}`);
      return t;
    } catch (e) {
      toast(`${T.error}: ${e.message}`, true);
      throw e;
    }
  }

  // Codes → names in this user's language (services, departments, districts).
  let NAMES = { service: {}, dept: {}, district: {} };
  const namesReady = me ? api("GET", "/api/v1/names").then((n) => { NAMES = n; }).catch(() => {}) : Promise.resolve();
  function nameOf(kind, code) {
    if (!code) return "—";
    return NAMES[kind][code] || code;
  }

  // Files go up one by one as multipart, with the same CSRF header as every change.
  async function upload(reference, file, isPublic) {
    const data = new FormData();
    data.append("file", file);
    data.append("public", isPublic ? "true" : "false");
    const r = await fetch(`/api/v1/tickets/${reference}/attachments`, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
    });
    const body = (r.headers.get("content-type") || "").includes("json") ? await r.json() : null;
    if (!r.ok) throw new ApiError(r.status, body);
    return body;
  }

  // ------------------------------------------------------------ live events
  // One connection per page. Each event has an increasing id; the page remembers the
  // last one it handled and asks the server for what came after it on every reconnect,
  // so nothing is missed and nothing is handled twice.
  class Live {
    constructor(onEvent, onReconnect) {
      this.onEvent = onEvent;
      this.onReconnect = onReconnect || (() => {});
      this.key = "live:last:" + location.pathname;
      this.lastId = Number(sessionStorage.getItem(this.key) || 0) || null;
      this.delay = 500;
      this.opened = 0;
      this.badge = document.getElementById("conn");
    }

    start() {
      this.connect();
      window.addEventListener("online", () => this.retryNow());
    }

    state(name) {
      if (!this.badge) return;
      this.badge.dataset.state = name;
      this.badge.className = "conn conn-" + name;
      this.badge.textContent = { live: T.live, connecting: T.connecting, offline: T.offline }[name];
    }

    connect() {
      this.state("connecting");
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const since = this.lastId === null ? "" : `?since=${this.lastId}`;
      const ws = new WebSocket(`${scheme}//${location.host}/ws${since}`);
      this.ws = ws;
      ws.onopen = () => {
        this.delay = 500;
        this.state("live");
        if (this.opened++ > 0) this.onReconnect();
      };
      ws.onmessage = (ev) => {
        let msg;
        try { msg = JSON.parse(ev.data); } catch (_) { return; }
        if (msg.type === "hello") {  // where the log stood when this page began listening
          if (this.lastId === null) this.lastId = msg.id;
          return;
        }
        if (this.lastId !== null && msg.id <= this.lastId) return;  // already handled
        this.lastId = msg.id;
        sessionStorage.setItem(this.key, String(msg.id));
        this.onEvent(msg);
      };
      ws.onclose = (ev) => {
        if (this.ws !== ws) return;
        if (ev.code === 4401) {
          location.href = "/signin?next=" + encodeURIComponent(location.pathname);
          return;
        }
        this.state("offline");
        // Exponential backoff with jitter, capped: a restarted server is not stampeded.
        const wait = this.delay * (0.75 + Math.random() / 2);
        this.delay = Math.min(this.delay * 2, 15000);
        this.timer = setTimeout(() => this.connect(), wait);
      };
    }

    retryNow() {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) return;
      clearTimeout(this.timer);
      this.delay = 500;
      this.connect();
    }
  }

  // ------------------------------------------------------------ keyboard
  const keys = [];
  function shortcut(key, label, fn) {
    keys.push({ key, label, fn });
  }
  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "Escape") {
      const open = document.querySelector("form.action-form");
      if (open) { open.remove(); ev.preventDefault(); }
      return;
    }
    if (typing(ev.target)) return;
    if (ev.key === "?") {
      const list = clear(document.getElementById("help-keys"));
      for (const k of keys) list.append(el("dt", {}, el("kbd", {}, k.key)), el("dd", {}, k.label));
      document.getElementById("help").showModal();
      ev.preventDefault();
      return;
    }
    const hit = keys.find((k) => k.key === ev.key);
    if (hit) { ev.preventDefault(); hit.fn(ev); }
  });

  // The catalogue's services as options of a select, in their groups; the ticket's
  // own service chosen. Dispatching sends it: the dispatcher confirms or corrects it.
  async function serviceOptions(select, current) {
    const zh = me.locale === "zh-CN";
    const groups = new Map();
    for (const s of await api("GET", "/api/v1/services")) {
      const g = zh ? s.group_zh : s.group_en;
      if (!groups.has(g)) groups.set(g, el("optgroup", { label: g }));
      groups.get(g).append(el("option", { value: s.code }, zh ? s.name_zh : s.name_en));
    }
    select.append(...groups.values());
    if (current) select.value = current;
  }

  // Every department as an option of a select, named in this user's language.
  async function departmentOptions(select) {
    const zh = me.locale === "zh-CN";
    for (const d of await api("GET", "/api/v1/departments")) {
      select.append(el("option", { value: d.code }, zh ? d.name_zh : d.name_en));
    }
  }

  // ------------------------------------------------------------ tickets
  const FIELDS = {
    dispatch: [["department", "select"], ["service", "select"]],
    return: [["reason", "textarea", true]],
    "request-extension": [["until", "datetime-local", true], ["reason", "textarea", true]],
    "grant-extension": [["reason", "textarea"]],
    "deny-extension": [["reason", "textarea", true]],
    resolve: [["reply", "textarea", true], ["files", "file"]],
    reopen: [["reason", "textarea", true]],
    urge: [["reason", "textarea", true]],
    escalate: [["reason", "textarea", true]],
    "deny-return": [["reason", "textarea", true]],
    merge: [["into", "text", true]],
    note: [["text", "textarea", true], ["public", "checkbox"]],
  };

  function ticketRow(t, selected) {
    return el(
      "tr",
      {
        tabindex: "0",
        class: `sla-${t.sla_state}` + (t.priority === "urgent" ? " urgent" : "") + (selected ? " selected" : ""),
        dataset: { reference: t.reference },
        "aria-selected": selected ? "true" : "false",
      },
      el("td", { class: "ref" }, t.reference_grouped),
      el("td", {}, word("channel", t.channel)),
      el("td", {}, word("status", t.status)),
      el("td", { title: t.service || "" }, nameOf("service", t.service)),
      el("td", { title: t.department || "" }, nameOf("dept", t.department)),
      el("td", {}, when(t.due_at)),
      el("td", { class: "excerpt" }, t.description.slice(0, 80)),
    );
  }

  // A list of tickets kept in sync by reloading it when an event concerns it.
  class TicketList {
    constructor(tbody, query, onOpen) {
      this.tbody = tbody;
      this.query = query;
      this.onOpen = onOpen;
      this.items = [];
      this.selected = null;
      this.pending = null;
      tbody.addEventListener("click", (ev) => {
        const row = ev.target.closest("tr[data-reference]");
        if (row) this.open(row.dataset.reference);
      });
      tbody.addEventListener("keydown", (ev) => {
        const row = ev.target.closest("tr[data-reference]");
        if (row && ev.key === "Enter") this.open(row.dataset.reference);
      });
    }

    async load() {
      await namesReady;
      const page = await api("GET", this.query());
      this.items = page.items;
      this.render();
      const counter = document.getElementById(this.tbody.dataset.counter || "");
      if (counter) counter.textContent = String(page.total);
      return page;
    }

    // Many events in a burst cost one reload.
    refresh() {
      if (this.pending) return;
      this.pending = setTimeout(async () => {
        this.pending = null;
        try { await this.load(); } catch (_) { /* the next event or reconnect retries */ }
      }, 100);
    }

    render() {
      clear(this.tbody);
      if (!this.items.length) {
        this.tbody.append(el("tr", { class: "empty" }, el("td", { colspan: "7" }, T.empty)));
        return;
      }
      for (const t of this.items) this.tbody.append(ticketRow(t, t.reference === this.selected));
    }

    open(reference) {
      this.selected = reference;
      this.render();
      const row = this.tbody.querySelector(`tr[data-reference="${reference}"]`);
      if (row) row.focus();
      this.onOpen(reference);
    }

    move(step) {
      if (!this.items.length) return;
      let i = this.items.findIndex((t) => t.reference === this.selected);
      i = Math.max(0, Math.min(this.items.length - 1, i + step));
      this.open(this.items[i].reference);
    }
  }

  function actionForm(t, action, extra) {
    const form = el("form", { class: "action-form", dataset: { action, reference: t.reference } });
    const fields = FIELDS[action] || [];
    for (const [name, type, required] of fields) {
      const id = `f-${action}-${name}`;
      let input;
      if (type === "textarea") input = el("textarea", { id, name, rows: "3", required, maxlength: "4000" });
      else if (type === "select") input = el("select", { id, name });
      else if (type === "file") input = el("input", { id, name, type, multiple: true, accept: "application/pdf,image/jpeg,image/png,image/webp,image/gif" });
      else input = el("input", { id, name, type, required });
      if (type === "checkbox") {
        form.append(el("label", { class: "check" }, input, " ", T.public_note));
      } else if (type === "file") {
        const pub = el("input", { id: `${id}-public`, name: "files_public", type: "checkbox", checked: true });
        form.append(el("label", { for: id }, T.attach), input,
          el("label", { class: "check" }, pub, " ", T.files_public));
      } else {
        form.append(el("label", { for: id }, T[name] || name), input);
      }
    }
    if (extra) extra(form, t);
    form.append(
      el("div", { class: "buttons" },
        el("button", { type: "submit" }, T[action] || action),
        el("button", { type: "button", onclick: () => form.remove() }, T.cancel)),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {};
      const files = [];
      for (const [name, type] of fields) {
        const input = form.elements[name];
        if (type === "file") { files.push(...input.files); continue; }
        if (type === "checkbox") body[name] = input.checked;
        else if (input.value) body[name] = type === "datetime-local" ? new Date(input.value).toISOString() : input.value;
      }
      try {
        // Files first: a reply that went out without its documents cannot be recalled.
        if (files.length) toast(T.uploading);
        for (const f of files) {
          try { await upload(t.reference, f, form.elements.files_public.checked); } catch (e) {
            toast(`${T.error}: ${f.name}: ${e.message}`, true);
            return;
          }
        }
        await act(t.reference, action, body);
        form.remove();
        form.dispatchEvent(new CustomEvent("acted", { bubbles: true }));
      } catch (_) { /* shown in the toast */ }
    });
    return form;
  }

  // The ticket with its history, messages and the moves this user may make now.
  function renderTicket(box, t, options) {
    const opts = options || {};
    // A live update of this ticket must not throw away a form its user is filling in:
    // the open form stays while its action is still allowed, with the focus it had.
    const open = box.querySelector("form.action-form");
    const keep = open && open.dataset.reference === t.reference &&
      t.allowed_actions.includes(open.dataset.action) ? open : null;
    const focused = keep && keep.contains(document.activeElement) ? document.activeElement : null;
    clear(box);
    const dl = el("dl", { class: "facts" });
    const fact = (k, v) => dl.append(el("dt", {}, T[k] || k), el("dd", {}, v === null || v === undefined || v === "" ? "—" : v));
    fact("status", word("status", t.status));
    fact("channel", word("channel", t.channel));
    fact("kind", word("kind", t.kind));
    if (t.priority === "urgent") fact("priority", T.urgent);
    fact("service", nameOf("service", t.service));
    fact("department", nameOf("dept", t.department));
    fact("district", nameOf("district", t.district));
    fact("address", t.address);
    fact("phone", t.phone);
    fact("due", when(t.due_at));
    if (t.urge_count) fact("urged_times", String(t.urge_count));
    if (t.reply) fact("reply", t.reply);
    box.append(
      el("h2", { id: "detail-title" }, t.reference_grouped),
      dl,
      el("h3", {}, T.description),
      el("p", { class: "citizen-text", id: "detail-description" }, t.description),
    );
    const actions = el("div", { class: "actions", role: "toolbar", "aria-label": "actions" });
    for (const action of t.allowed_actions) {
      if (opts.hide && opts.hide.includes(action)) continue;
      actions.append(el("button", {
        type: "button",
        dataset: { action },
        onclick: async () => {
          if (!FIELDS[action] && !(opts.extras && opts.extras[action])) {
            // Nothing to ask (accept, close): one key press does it.
            try {
              await act(t.reference, action, {});
              box.dispatchEvent(new CustomEvent("acted", { bubbles: true }));
            } catch (_) { /* shown in the toast */ }
            return;
          }
          const old = box.querySelector("form.action-form");
          if (old) old.remove();
          const form = actionForm(t, action, opts.extras && opts.extras[action]);
          actions.after(form);
          const first = form.querySelector("select, input:not([type=checkbox]), textarea");
          if (first) first.focus();
        },
      }, T[action] || action));
    }
    box.append(actions);
    if (keep) {
      actions.after(keep);
      if (focused) focused.focus();
    }
    if (t.events && t.events.length) {
      const ol = el("ol", { class: "timeline" });
      for (const e of t.events) {
        const data = e.data || {};
        // Where a dispatch sent it, and the service it moved from and to, if it did.
        const moved = e.kind === "dispatched" && data.department
          ? `→ ${nameOf("dept", data.department)}` +
            (data.service ? ` · ${T.service}: ${nameOf("service", data.previous_service)} → ${nameOf("service", data.service)}` : "") + " "
          : "";
        ol.append(el("li", {},
          el("time", {}, when(e.created_at)), " ",
          el("strong", {}, word("event", e.kind)), " ",
          e.actor ? `(${e.actor}) ` : "",
          moved,
          e.reason || data.text || ""));
      }
      box.append(el("h3", {}, T.history), ol);
    }
    if (t.fields && Object.keys(t.fields).length) {
      const dlf = el("dl", { class: "facts" });
      for (const [k, v] of Object.entries(t.fields)) {
        dlf.append(el("dt", {}, k), el("dd", {}, Array.isArray(v) ? v.join(", ") : String(v)));
      }
      box.append(el("h3", {}, T.fields), dlf);
    }
    if (t.attachments && t.attachments.length) {
      const ul = el("ul", { class: "attachments" });
      for (const a of t.attachments) {
        ul.append(el("li", {},
          el("a", { href: a.url, download: a.filename }, a.filename),
          ` · ${Math.max(1, Math.round(a.size / 1024))} KB`,
          a.public ? ` · ${T.files_public}` : ""));
      }
      box.append(el("h3", {}, T.attachments), ul);
    }
    if (t.messages && t.messages.length) {
      const ol = el("ol", { class: "messages" });
      for (const m of t.messages) {
        ol.append(el("li", { class: "msg-" + m.direction }, el("time", {}, when(m.created_at)), " ", m.body));
      }
      box.append(el("h3", {}, T.messages), ol);
    }
  }

  function actionKey(key, action) {
    shortcut(key, T[action] || action, () => {
      const b = document.querySelector(`.actions button[data-action="${action}"]`);
      if (b) b.click();
    });
  }

  // Each user's language is theirs: stored on the account, used on every page.
  const langToggle = document.getElementById("lang-toggle");
  if (langToggle) {
    langToggle.addEventListener("click", async () => {
      try {
        await api("PATCH", "/api/v1/me", { locale: langToggle.dataset.locale });
        location.reload();
      } catch (e) { toast(`${T.error}: ${e.message}`, true); }
    });
  }

  // Today's hot spots: the ones loaded with the page, then each hotspot.detected as it
  // comes (with a toast), most improbable first. Each line links to the statistics
  // filtered to its service and district.
  class HotspotList {
    constructor(box) {
      this.box = box;
      this.items = new Map();
    }

    static label(h) {
      const zh = me.locale === "zh-CN";
      return `${zh ? h.service_name_zh : h.service_name_en} · ${zh ? h.district_name_zh : h.district_name_en}`;
    }

    set(list) {
      for (const h of list) {
        const key = `${h.service}|${h.district}`;
        const before = this.items.get(key);
        // A live event has no department count: keep the one loaded until the next load.
        const keep = before && h.with_you == null && before.with_you != null;
        this.items.set(key, keep ? { ...h, with_you: before.with_you } : h);
      }
      this.render();
    }

    add(msg) {
      this.set([msg]);
      toast(`${T.hotspot_detected}: ${HotspotList.label(msg)} (${msg.count})`);
    }

    render() {
      clear(this.box);
      const list = [...this.items.values()].sort((a, b) => a.p_value - b.p_value);
      if (!list.length) this.box.append(el("li", { class: "muted" }, T.hotspot_none));
      for (const h of list) {
        const q = new URLSearchParams({ service: h.service, district: h.district });
        const usual = Number(h.expected).toFixed(h.expected < 1 ? 2 : 1);
        this.box.append(el("li", { dataset: { service: h.service, district: h.district } },
          el("a", { href: `/supervisor/stats?${q}` }, HotspotList.label(h)),
          el("span", { class: "num" }, ` ${h.count}`),
          el("span", { class: "where" }, ` (${T.hotspot_expected} ${usual}, p ${Number(h.p_value).toExponential(1)})`),
          h.with_you == null ? null : el("span", { class: "mine" }, ` · ${T.hotspot_with_you.replace("{n}", String(h.with_you))}`)));
      }
    }
  }

  return { T, me, el, clear, toast, when, pct, word, api, act, upload, nameOf, namesReady, Live, shortcut, actionKey, TicketList, renderTicket, HotspotList, serviceOptions, departmentOptions };
})();
