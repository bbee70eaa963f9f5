// The supervisor: a live wallboard, overdue / due-soon / extension lists, urge, approve, reassign.
"use strict";

(() => {
  const { T, el, clear, toast, api, Live, shortcut, actionKey, TicketList, renderTicket, word } = Staff;
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

  async function reassignExtras(form) {
    const select = form.elements.department;
    for (const d of await api("GET", "/api/v1/departments")) {
      select.append(el("option", { value: d.code }, Staff.me.locale === "zh-CN" ? d.name_zh : d.name_en));
    }
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

  async function wallboard() {
    try {
      const w = await api("GET", "/api/v1/wallboard");
      for (const k of ["calls_waiting", "longest_wait_seconds", "agents_on_calls", "overdue", "due_soon", "extensions_requested"]) {
        document.getElementById(`wb-${k}`).textContent = String(w[k]);
      }
      bars(document.getElementById("wb-channels"), w.today_by_channel, "channel");
      bars(document.getElementById("wb-states"), w.open_by_state, "status");
    } catch (e) { toast(`${T.error}: ${e.message}`, true); }
  }
  let wbTimer = null;
  function refreshAll() {
    watch.refresh();
    clearTimeout(wbTimer);
    wbTimer = setTimeout(wallboard, 150);
  }

  for (const b of document.querySelectorAll("[data-tab]")) {
    b.addEventListener("click", () => {
      tab = b.dataset.tab;
      for (const o of document.querySelectorAll("[data-tab]")) o.setAttribute("aria-selected", String(o === b));
      watch.load();
    });
  }

  const live = new Live((msg) => {
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
  watch.load();
})();
