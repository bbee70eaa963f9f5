// The supervisor: a live wallboard (with the kiosks' health), overdue / due-soon / extension
// lists, urge, approve, reassign.
"use strict";

(() => {
  const { T, el, clear, toast, when, api, Live, shortcut, actionKey, TicketList, renderTicket, word, HotspotList } = Staff;
  const detail = document.getElementById("detail");
  let current = null;
  let tab = "overdue";
  const QUERIES = {
    overdue: "/api/v1/tickets?sla=overdue&status=dispatched&status=accepted&status=reopened&status=returned&order=due&limit=200",
    due_soon: "/api/v1/tickets?sla=due_soon&status=dispatched&status=accepted&status=reopened&order=due&limit=200",
    extensions: "/api/v1/tickets?extension=requested&order=due&limit=200",
    returned: "/api/v1/tickets?status=returned&order=oldest&limit=200",
  };
  const watch = new TicketList(document.getElementById("watch"), () => QUERIES[tab], (ref) => openTicket(ref));

  async function openTicket(reference) {
    current = await api("GET", `/api/v1/tickets/${reference}`);
    renderTicket(detail, current, { extras: { dispatch: reassignExtras } });
  }

  async function reassignExtras(form, t) {
    await Promise.all([
      Staff.departmentOptions(form.elements.department),
      Staff.serviceOptions(form.elements.service, t.service),
    ]);
  }

  function bars(box, counts, prefix) {
    clear(box);
    const max = Math.max(1, ...Object.values(counts));
    for (const [k, n] of Object.entries(counts)) {
      const bar = el("span", { class: "bar" });
      bar.style.width = `${(n / max) * 100}%`;
      box.append(el("dt", {}, word(prefix, k)), el("dd", {}, bar, String(n)));
    }
  }

  // Kiosks: the wallboard's list, then kept current by kiosk.heartbeat / kiosk.offline.
  const kiosks = new Map();
  function kioskRows() {
    const body = clear(document.getElementById("wb-kiosks"));
    const list = [...kiosks.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (!list.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, T.kiosk_none)));
    let online = 0;
    for (const k of list) {
      if (k.online) online++;
      const state = k.online ? T.kiosk_online : (k.last_seen_at ? T.kiosk_offline : T.kiosk_never);
      const printer = k.printer_online === true ? T.kiosk_printer_on
        : (k.printer_online === false ? T.kiosk_printer_off : T.kiosk_printer_unknown);
      const paper = k.paper || "unknown";
      body.append(el("tr", { dataset: { kiosk: String(k.id) } },
        el("td", {}, k.name, k.location ? el("span", { class: "where" }, k.location) : null),
        el("td", {}, el("span", { class: `state state-${k.online ? "online" : "offline"}` }, state)),
        el("td", { class: k.printer_online === false ? "bad" : null },
          printer, k.printer_detail ? el("span", { class: "where" }, k.printer_detail) : null),
        el("td", { class: paper === "out" ? "bad" : (paper === "low" ? "warn" : null) }, word("paper", paper)),
        el("td", { class: k.queue > 0 ? "num warn" : "num" }, String(k.queue || 0)),
        el("td", {}, when(k.last_seen_at))));
    }
    document.getElementById("wb-kiosks_online").textContent = String(online);
    document.getElementById("wb-kiosks_offline").textContent = String(list.length - online);
    document.getElementById("wb-kiosks-offline-tile").classList.toggle("alert", list.length > online);
  }

  function kioskEvent(msg) {
    const k = kiosks.get(msg.kiosk_id);
    if (!k) { refreshWallboard(); return; }  // a kiosk registered since the page loaded
    k.online = msg.online;
    if (msg.last_seen_at) k.last_seen_at = msg.last_seen_at;
    if (msg.type === "kiosk.heartbeat") {
      k.paper = msg.paper;
      k.printer_online = msg.printer_online;
      if (msg.queue !== null && msg.queue !== undefined) k.queue = msg.queue;
    }
    kioskRows();
  }

  // Hot spots today: the statistics' list once, then each hotspot.detected as it comes.
  const hotspots = new HotspotList(document.getElementById("wb-hotspots"));
  async function loadHotspots() {
    try {
      hotspots.set((await api("GET", "/api/v1/stats/report")).hotspots.items);
    } catch (e) { toast(`${T.error}: ${e.message}`, true); }
  }

  async function wallboard() {
    try {
      const w = await api("GET", "/api/v1/wallboard");
      for (const k of ["calls_waiting", "longest_wait_seconds", "agents_on_calls", "overdue", "due_soon", "extensions_requested"]) {
        document.getElementById(`wb-${k}`).textContent = String(w[k]);
      }
      bars(document.getElementById("wb-channels"), w.today_by_channel, "channel");
      bars(document.getElementById("wb-states"), w.open_by_state, "status");
      kiosks.clear();
      for (const k of w.kiosks) kiosks.set(k.id, k);
      kioskRows();
    } catch (e) { toast(`${T.error}: ${e.message}`, true); }
  }
  let wbTimer = null;
  function refreshWallboard() {
    clearTimeout(wbTimer);
    wbTimer = setTimeout(wallboard, 150);
  }
  function refreshAll() {
    watch.refresh();
    refreshWallboard();
  }

  for (const b of document.querySelectorAll("[data-tab]")) {
    b.addEventListener("click", () => {
      tab = b.dataset.tab;
      for (const o of document.querySelectorAll("[data-tab]")) o.setAttribute("aria-selected", String(o === b));
      watch.load();
    });
  }

  const live = new Live((msg) => {
    if (msg.type === "kiosk.heartbeat" || msg.type === "kiosk.offline") { kioskEvent(msg); return; }
    if (msg.type === "hotspot.detected") { hotspots.add(msg); return; }
    refreshAll();
    if (current && msg.reference === current.reference) openTicket(current.reference);
  }, refreshAll);
  document.addEventListener("acted", () => { refreshAll(); if (current) openTicket(current.reference); });
  setInterval(wallboard, 15000);  // waits grow without events
  shortcut("j", "↓", () => watch.move(1));
  shortcut("k", "↑", () => watch.move(-1));
  actionKey("u", "urge");
  actionKey("e", "escalate");
  actionKey("n", "deny-return");
  actionKey("g", "grant-extension");
  actionKey("x", "deny-extension");
  actionKey("d", "dispatch");
  live.start();
  wallboard();
  loadHotspots();
  watch.load();
})();
