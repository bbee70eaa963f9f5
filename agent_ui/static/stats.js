// Statistics: the rates cities are ranked by, filtered; charts; ranking; hot spots; exports.
"use strict";

(() => {
  const { T, me, el, clear, toast, pct, word, api, Live } = Staff;
  const form = document.getElementById("filters");
  const zh = me.locale === "zh-CN";
  const name = (row) => (zh ? row.name_zh : row.name_en) || row.code || "—";

  function params() {
    const p = new URLSearchParams();
    const data = new FormData(form);
    const tz = (d, end) => d && new Date(`${d}T${end ? "23:59:59" : "00:00:00"}`).toISOString();
    if (data.get("from_day")) p.set("from", tz(data.get("from_day")));
    if (data.get("to_day")) p.set("to", tz(data.get("to_day"), true));
    for (const k of ["department", "service", "channel", "district"]) if (data.get(k)) p.set(k, data.get(k));
    return p;
  }

  function bars(box, rows) {
    clear(box);
    const max = Math.max(1, ...rows.map((r) => r.tickets));
    for (const r of rows) {
      const bar = el("span", { class: "bar" });
      bar.style.width = `${(r.tickets / max) * 100}%`;
      box.append(el("dt", {}, r.label), el("dd", {}, bar, String(r.tickets)));
    }
  }

  function series(svg, points) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const ns = "http://www.w3.org/2000/svg";
    const max = Math.max(1, ...points.map((p) => p.tickets));
    const w = 600 / Math.max(1, points.length);
    points.forEach((p, i) => {
      const h = (p.tickets / max) * 150;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", String(i * w + 1));
      r.setAttribute("y", String(160 - h));
      r.setAttribute("width", String(Math.max(1, w - 2)));
      r.setAttribute("height", String(h));
      const title = document.createElementNS(ns, "title");
      title.textContent = `${p.day}: ${p.tickets}`;
      r.append(title);
      svg.append(r);
    });
  }

  async function load() {
    const p = params();
    document.getElementById("export-csv").href = `/api/v1/stats/export.csv?${p}`;
    document.getElementById("export-xlsx").href = `/api/v1/stats/export.xlsx?${p}`;
    let r;
    try {
      r = await api("GET", `/api/v1/stats/report?${p}`);
    } catch (e) {
      toast(`${T.error}: ${e.message}`, true);
      return;
    }
    const s = r.summary;
    document.getElementById("st-volume").textContent = String(s.tickets);
    document.getElementById("st-resolved").textContent = String(s.resolved);
    for (const k of ["response_rate", "on_time_rate", "satisfaction_rate", "reopen_rate"]) {
      document.getElementById(`st-${k}`).textContent = pct(s[k]);
    }
    document.getElementById("st-avg_handling_hours").textContent =
      s.avg_handling_hours === null ? "—" : s.avg_handling_hours.toFixed(1);
    series(document.getElementById("st-series"), r.series);
    const ranking = clear(document.querySelector("#st-ranking tbody"));
    for (const d of r.breakdowns.departments) {
      ranking.append(el("tr", {},
        el("td", {}, d.rank === null ? "—" : String(d.rank)), el("td", {}, name(d)), el("td", {}, String(d.tickets)),
        el("td", {}, pct(d.response_rate)), el("td", {}, pct(d.on_time_rate)), el("td", {}, pct(d.satisfaction_rate)),
        el("td", {}, pct(d.reopen_rate)), el("td", {}, d.avg_handling_hours === null ? "—" : d.avg_handling_hours.toFixed(1))));
    }
    const hot = clear(document.querySelector("#st-hotspots tbody"));
    for (const h of r.hotspots.items) {
      hot.append(el("tr", {}, el("td", {}, zh ? h.service_name_zh : h.service_name_en),
        el("td", {}, zh ? h.district_name_zh : h.district_name_en), el("td", {}, String(h.count)),
        el("td", {}, h.ratio.toFixed(1)), el("td", {}, h.p_value.toExponential(1))));
    }
    bars(document.getElementById("st-channels"), r.breakdowns.channels.map((c) => ({ label: word("channel", c.code), tickets: c.tickets })));
    bars(document.getElementById("st-services"), r.breakdowns.services.slice(0, 10).map((c) => ({ label: name(c), tickets: c.tickets })));
    bars(document.getElementById("st-districts"), r.breakdowns.districts.map((c) => ({ label: name(c), tickets: c.tickets })));
  }

  async function options() {
    const [departments, services] = await Promise.all([api("GET", "/api/v1/departments"), api("GET", "/api/v1/services")]);
    for (const d of departments) document.getElementById("department").append(el("option", { value: d.code }, `${d.code} · ${zh ? d.name_zh : d.name_en}`));
    for (const s of services) document.getElementById("service").append(el("option", { value: s.code }, zh ? s.name_zh : s.name_en));
    for (const c of ["sms", "voice", "web", "kiosk", "open311", "agent"]) document.getElementById("channel").append(el("option", { value: c }, word("channel", c)));
    const seen = new Set();
    for (const d of departments) {
      if (d.district && !seen.has(d.district)) { seen.add(d.district); document.getElementById("district").append(el("option", { value: d.district }, d.district)); }
    }
    const q = new URLSearchParams(location.search);
    for (const k of ["from_day", "to_day", "department", "service", "channel", "district"]) if (q.get(k)) form.elements[k].value = q.get(k);
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); history.replaceState(null, "", `?${new URLSearchParams(new FormData(form))}`); load(); });
  let timer = null;
  const live = new Live(() => { clearTimeout(timer); timer = setTimeout(load, 1000); }, load);
  options().then(load);
  live.start();
})();
