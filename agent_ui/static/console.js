// The agent console: the live queue, the caller's history when a call connects,
// dispatch with routing suggestions, answers from the knowledge base, new tickets.
"use strict";

(() => {
  const { T, me, el, clear, toast, when, api, act, Live, shortcut, actionKey, TicketList, renderTicket, serviceOptions, departmentOptions } = Staff;
  const detail = document.getElementById("detail");
  const caller = document.getElementById("caller");
  let current = null;

  const queue = new TicketList(
    document.getElementById("queue"),
    () => "/api/v1/tickets?status=received&status=returned&status=reopened&order=oldest&limit=100",
    (ref) => openTicket(ref),
  );

  async function openTicket(reference) {
    try {
      current = await api("GET", `/api/v1/tickets/${reference}`);
    } catch (e) {
      toast(`${T.error}: ${e.message}`, true);
      return;
    }
    renderTicket(detail, current, {
      extras: { dispatch: dispatchExtras, resolve: kbExtras, note: noteExtras, merge: mergeExtras },
    });
    showDuplicates(current);
  }

  // ---------------------------------------------------------------- duplicates
  // Open tickets that look like the same problem, and the caller's other tickets; this
  // ticket can be merged into one of them (the existing merge action).
  const duplicatesOf = new Map(); // reference → the last answer, for the merge form
  async function duplicates(t) {
    const found = await api("GET", `/api/v1/tickets/${t.reference}/duplicates`);
    duplicatesOf.set(t.reference, found);
    return found;
  }

  function dupLine(d) {
    const reasons = (d.reasons || []).map((r) => T["dup." + r] || r).join(T.list_sep);
    const score = d.score === undefined ? "" : `${Math.round(d.score * 100)}% · `;
    return `${score}${Staff.word("status", d.status)} · ${Staff.word("channel", d.channel)} · ` +
      `${Staff.nameOf("service", d.service)} · ${when(d.created_at)}${reasons ? " · " + reasons : ""}`;
  }

  async function showDuplicates(t) {
    let found;
    try {
      found = await duplicates(t);
    } catch (_) {
      return; // the ticket view works without them
    }
    if (!current || current.reference !== t.reference) return; // another ticket is open now
    const box = el("section", { class: "duplicates", "aria-labelledby": "dup-title" },
      el("h3", { id: "dup-title" }, `${T.dup_title} (${found.suggestions.length})`));
    if (!found.suggestions.length) box.append(el("p", { class: "muted" }, T.dup_none));
    const list = el("ol", { class: "dup-list" });
    for (const d of found.suggestions) {
      const item = el("li", { dataset: { reference: d.reference } },
        el("button", { type: "button", class: "dup-open", onclick: () => openTicket(d.reference) }, d.reference_grouped),
        " ", el("span", { class: "dup-facts" }, dupLine(d)),
        el("p", { class: "citizen-text muted" }, d.summary));
      if (found.can_merge) {
        item.append(el("button", { type: "button", class: "dup-merge", onclick: () => mergeInto(t, d.reference) },
          T.dup_merge_into));
      }
      list.append(item);
    }
    box.append(list);
    if (found.linked.length) {
      const linked = el("ul", { class: "dup-linked" });
      for (const d of found.linked) {
        linked.append(el("li", {},
          el("button", { type: "button", class: "dup-open", onclick: () => openTicket(d.reference) }, d.reference_grouped),
          " ", el("span", { class: "dup-facts" }, dupLine(d)),
          el("p", { class: "citizen-text muted" }, d.summary)));
      }
      box.append(el("h3", {}, T.dup_linked.replace("{hours}", String(found.link_hours))), linked);
    }
    const actions = detail.querySelector(".actions");
    if (actions) actions.after(box); else detail.append(box);
  }

  async function mergeInto(t, into) {
    try {
      await act(t.reference, "merge", { into });
      detail.dispatchEvent(new CustomEvent("acted", { bubbles: true }));
    } catch (_) { /* shown in the toast */ }
  }

  // The merge form (key m): the suggestions first, keys 1-9 merge into one of them.
  async function mergeExtras(form, t) {
    const input = form.elements.into;
    const found = duplicatesOf.get(t.reference) || await duplicates(t).catch(() => null);
    const picks = found ? found.suggestions.slice(0, 9) : [];
    if (!picks.length) return;
    const list = el("ol", { class: "suggestions", "aria-label": T.dup_title });
    picks.forEach((d, i) => {
      list.append(el("li", {},
        el("button", { type: "button", class: "suggestion", dataset: { reference: d.reference },
          onclick: () => { input.value = d.reference; form.requestSubmit(); } },
          el("kbd", {}, String(i + 1)), ` ${d.reference_grouped} · ${Math.round(d.score * 100)}%`),
        el("div", { class: "reason" }, d.summary)));
    });
    form.prepend(el("h3", {}, T.dup_title), list);
    form.addEventListener("keydown", (ev) => {
      const n = Number(ev.key);
      if (ev.target === input || !(n >= 1 && n <= picks.length)) return;
      ev.preventDefault();
      input.value = picks[n - 1].reference;
      form.requestSubmit();
    });
    // The form goes on the page (its input focused) once this returns: then the first
    // suggestion takes the focus, so 1-9 pick and typing a reference is a Tab away.
    setTimeout(() => { if (form.isConnected) list.querySelector("button").focus(); }, 0);
  }

  // Dispatch: the three suggested departments first (keys 1-3 pick), then every
  // department, and the ticket's service to confirm or correct. Choosing another
  // service asks for the suggestions again, from that service.
  async function dispatchExtras(form, t) {
    const select = form.elements.department;
    const services = form.elements.service;
    const list = el("ol", { class: "suggestions", "aria-label": T.suggestions });
    form.prepend(el("h3", {}, T.suggestions), list);
    let picks = [];
    async function suggest(service) {
      const params = new URLSearchParams({ text: t.description });
      if (service) params.set("service", service);
      if (t.address) params.set("address", t.address);
      if (t.district) params.set("district", t.district);
      if (t.channel) params.set("channel", t.channel);
      const sugg = await api("GET", `/api/v1/routing/suggest?${params}`);
      picks = sugg.suggestions;
      const focused = list.contains(document.activeElement);
      clear(list);
      picks.forEach((s, i) => {
        list.append(el("li", {},
          el("button", { type: "button", class: "suggestion", dataset: { department: s.department },
            onclick: () => { select.value = s.department; form.requestSubmit(); } },
            el("kbd", {}, String(i + 1)), ` ${s.name} · ${Math.round(s.confidence * 100)}%`),
          el("div", { class: "reason" }, s.reason)));
      });
      if (picks.length) select.value = picks[0].department;
      if (focused) (list.querySelector("button") || select).focus();
    }
    // The service decides only where it decided at intake (chosen, or the catalogue's
    // keywords) or a person confirmed it; where the rules fell back, the suggestions
    // start from the text again, as intake did, not from the general service the
    // ticket was left with.
    const decided = t.service_confirmed_at || (t.routing && ["service", "keyword"].includes(t.routing.rule));
    await Promise.all([departmentOptions(select), serviceOptions(services, t.service)]);
    await suggest(decided ? t.service : null);
    services.addEventListener("change", () => {
      delete form.dataset.ready;
      suggest(services.value).then(() => { form.dataset.ready = "1"; }, (e) => toast(`${T.error}: ${e.message}`, true));
    });
    form.dataset.ready = "1";
    form.addEventListener("keydown", (ev) => {
      const n = Number(ev.key);
      if (!(n >= 1 && n <= picks.length)) return;
      ev.preventDefault();
      select.value = picks[n - 1].department;
      form.requestSubmit();
    });
    (list.querySelector("button") || select).focus();
  }

  // Resolve an inquiry at once: search the knowledge base, insert an answer as the reply.
  function kbExtras(form) {
    const box = el("div", { class: "kb" });
    const input = el("input", { type: "search", id: "kb-q", "aria-label": T.kb_search, placeholder: T.kb_search });
    const results = el("ol", { class: "kb-results" });
    let timer = null;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        clear(results);
        if (!input.value.trim()) return;
        for (const a of await api("GET", `/api/v1/kb?q=${encodeURIComponent(input.value)}`)) {
          results.append(el("li", {}, el("strong", {}, a.title), " ",
            el("button", { type: "button", onclick: () => { form.elements.reply.value = a.body; form.elements.reply.focus(); } }, T.insert_answer),
            el("p", { class: "muted" }, a.body.slice(0, 160))));
        }
      }, 200);
    });
    box.append(el("label", { for: "kb-q" }, T.kb), input, results);
    form.prepend(box);
  }

  function noteExtras(form) {
    const label = form.querySelector("label.check");
    if (label) label.lastChild.textContent = " " + T.reply_citizen;
  }

  // ---------------------------------------------------------------- calls
  function showCaller(data) {
    clear(caller);
    const c = data.call;
    caller.append(el("p", { class: "call" }, `${c.caller || "—"} · ${c.language || ""} · ${when(c.started_at)}`));
    const h = data.history;
    const list = el("ul", { class: "history" });
    for (const t of h.tickets || []) {
      list.append(el("li", {}, el("button", { type: "button", onclick: () => openTicket(t.reference) }, t.reference_grouped || t.reference), ` ${Staff.word("status", t.status)} · ${t.description || ""}`));
    }
    for (const m of h.messages || []) list.append(el("li", { class: "msg-" + m.direction }, `${when(m.created_at)} ${m.body}`));
    for (const call of h.calls || []) list.append(el("li", {}, `☎ ${when(call.started_at)} ${(call.path || []).join(" › ")}`));
    caller.append(list);
    const phone = document.getElementById("nt-phone");
    if (phone && c.from_addr) phone.value = c.from_addr;
    caller.dataset.callId = String(c.id);
  }

  async function takeNext() {
    try {
      showCaller(await api("POST", "/api/v1/calls/next"));
    } catch (e) {
      toast(e.status === 404 ? T.queue_empty : `${T.error}: ${e.message}`, e.status !== 404);
    }
  }

  // ---------------------------------------------------------------- new ticket
  const dialog = document.getElementById("new-ticket");
  const ntForm = document.getElementById("new-ticket-form");
  let services = [];

  async function openNewTicket() {
    if (!services.length) {
      services = await api("GET", "/api/v1/services");
      const select = document.getElementById("nt-service");
      const list = document.getElementById("nt-services");
      for (const s of services) {
        const name = me.locale === "zh-CN" ? s.name_zh : s.name_en;
        select.append(el("option", { value: s.code }, name));
        list.append(el("option", { value: `${name} (${s.code})` }));
      }
      serviceFields();
    }
    dialog.showModal();
    document.getElementById("nt-service-search").focus();
  }

  // The service's own form fields, as the catalogue defines them for every channel.
  function serviceFields() {
    const code = document.getElementById("nt-service").value;
    const box = clear(document.getElementById("nt-fields"));
    const s = services.find((x) => x.code === code);
    const zh = me.locale === "zh-CN";
    for (const f of (s && s.fields) || []) {
      const id = `nt-field-${f.code}`;
      const name = `field:${f.code}`;
      const label = (zh ? f.label_zh : f.label_en) || f.code;
      const options = (f.values || []).map((v) => el("option", { value: v.key }, zh ? v.name_zh : v.name_en));
      let input;
      if (f.datatype === "singlevaluelist") {
        input = el("select", { id, name }, el("option", { value: "" }, "—"), ...options);
      } else if (f.datatype === "multivaluelist") {
        input = el("select", { id, name, multiple: true, size: String(Math.min(options.length, 5)) }, ...options);
      } else if (f.datatype === "text") {
        input = el("textarea", { id, name, rows: "2", maxlength: "2000" });
      } else if (f.datatype === "number") {
        input = el("input", { id, name, type: "number", step: "any" });
      } else if (f.datatype === "datetime") {
        input = el("input", { id, name, type: "datetime-local" });
      } else {
        input = el("input", { id, name, maxlength: "200" });
      }
      // On a call the agent may not know everything; forms on the web must be complete.
      box.append(el("label", { for: id }, label, f.required ? " *" : ""), input);
    }
  }

  document.getElementById("nt-service-search").addEventListener("change", (ev) => {
    const m = /\(([^)]+)\)$/.exec(ev.target.value);
    if (m) { document.getElementById("nt-service").value = m[1]; serviceFields(); }
  });
  document.getElementById("nt-service").addEventListener("change", serviceFields);
  let placeTimer = null;
  document.getElementById("nt-address").addEventListener("input", (ev) => {
    clearTimeout(placeTimer);
    placeTimer = setTimeout(async () => {
      const r = await api("GET", `/api/v1/routing/suggest?address=${encodeURIComponent(ev.target.value)}&service=${document.getElementById("nt-service").value}`);
      document.getElementById("nt-district").textContent = r.district ? `${T.district}: ${Staff.nameOf("district", r.district)}` : "";
    }, 250);
  });
  document.getElementById("new-ticket-cancel").addEventListener("click", () => dialog.close());
  ntForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(ntForm);
    const body = { channel: caller.dataset.callId ? "voice" : "agent", fields: {} };
    for (const [k, v] of data.entries()) {
      if (!v) continue;
      if (!k.startsWith("field:")) { body[k] = v; continue; }
      const code = k.slice(6);
      const f = (services.find((x) => x.code === body.service || x.code === data.get("service")) || { fields: [] })
        .fields.find((x) => x.code === code) || {};
      if (f.datatype === "multivaluelist") (body.fields[code] = body.fields[code] || []).push(v);
      else if (f.datatype === "datetime") body.fields[code] = new Date(v).toISOString();
      else body.fields[code] = v;
    }
    try {
      const t = await api("POST", "/api/v1/tickets", body);
      dialog.close();
      ntForm.reset();
      toast(`${T.new_ticket}: ${t.reference_grouped}`);
      queue.refresh();
      openTicket(t.reference);
    } catch (e) {
      toast(`${T.error}: ${e.message}`, true);
    }
  });

  // ---------------------------------------------------------------- live
  // One line per ticket that arrives, newest first (the last 50).
  const activity = document.getElementById("activity");
  function arrived(msg) {
    activity.prepend(el("li", { dataset: { reference: msg.reference, eventId: String(msg.id) } },
      el("time", {}, when(msg.created_at)), " ",
      el("button", { type: "button", onclick: () => queue.open(msg.reference) }, msg.reference),
      ` ${Staff.word("channel", msg.channel)}`));
    while (activity.children.length > 50) activity.lastChild.remove();
  }

  const live = new Live((msg) => {
    if (msg.type === "ticket.created") arrived(msg);
    if (msg.type.startsWith("ticket.")) {
      queue.refresh();
      if (current && msg.reference === current.reference) openTicket(current.reference);
    } else if (msg.type === "call.connected" && me && msg.agent_id === me.user_id) {
      api("GET", `/api/v1/calls/${msg.call_id}`).then(showCaller).catch(() => {});
    }
  }, () => queue.refresh());

  document.getElementById("take-next").addEventListener("click", takeNext);
  document.getElementById("new-ticket-open").addEventListener("click", openNewTicket);
  document.addEventListener("acted", () => { queue.refresh(); if (current) openTicket(current.reference); });

  shortcut("n", T.take_next, takeNext);
  shortcut("c", T.new_ticket, openNewTicket);
  shortcut("j", "↓", () => queue.move(1));
  shortcut("k", "↑", () => queue.move(-1));
  actionKey("d", "dispatch");
  actionKey("r", "resolve");
  actionKey("i", "note");
  actionKey("m", "merge");
  shortcut("/", T.kb_search, () => {
    const b = document.querySelector('.actions button[data-action="resolve"]');
    if (!b) return;
    b.click();
    const q = document.getElementById("kb-q");
    if (q) q.focus();
  });

  live.start();
  queue.load();
})();
