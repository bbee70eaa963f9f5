// The department workbench: the inbox by deadline, accept, return, extension, progress,
// resolve; and the hot spots the department is to act on today.
"use strict";

(() => {
  const { T, toast, api, Live, shortcut, actionKey, TicketList, renderTicket, HotspotList } = Staff;
  const detail = document.getElementById("detail");
  let current = null;

  const inbox = new TicketList(
    document.getElementById("inbox"),
    () => "/api/v1/tickets?status=dispatched&status=accepted&status=reopened&order=due&limit=200",
    (ref) => openTicket(ref),
  );

  async function openTicket(reference) {
    try {
      current = await api("GET", `/api/v1/tickets/${reference}`);
    } catch (e) {
      current = null;
      detail.textContent = e.status === 404 ? T.select_ticket : `${T.error}: ${e.message}`;
      return;
    }
    renderTicket(detail, current, {});
  }

  const hotspots = new HotspotList(document.getElementById("dept-hotspots"));
  async function loadHotspots() {
    try {
      hotspots.set(await api("GET", "/api/v1/stats/hotspots"));
    } catch (e) { toast(`${T.error}: ${e.message}`, true); }
  }

  const live = new Live((msg) => {
    if (msg.type === "hotspot.detected") { hotspots.add(msg); loadHotspots(); return; }
    inbox.refresh();
    if (hotspots.items.size) loadHotspots(); // a ticket reaching us changes "with you"
    if (current && msg.reference === current.reference) openTicket(current.reference);
  }, () => { inbox.refresh(); loadHotspots(); });

  document.addEventListener("acted", () => { inbox.refresh(); if (current) openTicket(current.reference); });
  shortcut("j", "↓", () => inbox.move(1));
  shortcut("k", "↑", () => inbox.move(-1));
  actionKey("a", "accept");
  actionKey("b", "return");
  actionKey("e", "request-extension");
  actionKey("i", "note");
  actionKey("r", "resolve");
  live.start();
  inbox.load().catch((e) => toast(`${T.error}: ${e.message}`, true));
  loadHotspots();
})();
