// Admin: the service catalogue with its form fields, departments, routing words and a
// routing try-out, the business calendar, staff accounts, API clients, kiosks, the audit.
// Everything goes through /api/v1/admin/...; every text goes in as text, never as markup.
// A new password, API key or device token is shown once, in this page only.
"use strict";

(() => {
  const { T, me, el, clear, toast, when, api, word } = Staff;
  const zh = me.locale === "zh-CN";
  const nameOf = (x) => (x ? (zh ? x.name_zh : x.name_en) || x.code : "—");
  const yes = (b) => (b ? T.adm_yes : T.adm_no);
  const KINDS = ["inquiry", "complaint", "suggestion", "praise", "report"];
  const DATATYPES = ["string", "text", "number", "datetime", "singlevaluelist", "multivaluelist"];
  const LEVELS = ["bureau", "district", "street"];
  const ROLES = ["agent", "department", "supervisor", "admin"];
  const LOCALES = [["zh-CN", "中文"], ["en", "English"]];
  const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6].map((i) =>
    new Intl.DateTimeFormat(me.locale, { weekday: "long" }).format(new Date(Date.UTC(2024, 0, 1 + i))));
  const LIST_TYPES = new Set(["singlevaluelist", "multivaluelist"]);

  // ------------------------------------------------------------ small builders
  let seq = 0;

  // A labelled control; ``path`` is the API's name for it, so a 422 finds its input.
  function field(path, label, control, hint) {
    const id = `a${++seq}-${path.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    control.id = id;
    control.dataset.path = path;
    if (!control.name) control.name = path;
    const box = el("div", { class: "field" });
    if (control.type === "checkbox") {
      box.classList.add("check");
      box.append(el("label", { for: id }, control, " ", label));
    } else {
      box.append(el("label", { for: id }, label), control);
    }
    if (hint) {
      const hintId = `${id}-hint`;
      control.setAttribute("aria-describedby", hintId);
      box.append(el("small", { id: hintId, class: "muted" }, hint));
    }
    return box;
  }

  function input(value, attrs) {
    const node = el("input", { type: "text", ...(attrs || {}) });
    node.value = value === null || value === undefined ? "" : String(value);
    return node;
  }

  function textarea(value, attrs) {
    const node = el("textarea", { rows: "3", ...(attrs || {}) });
    node.value = value || "";
    return node;
  }

  function checkbox(checked) {
    const node = el("input", { type: "checkbox" });
    node.checked = Boolean(checked);
    return node;
  }

  function select(options, value, attrs) {
    const node = el("select", attrs || {});
    for (const [v, label] of options) node.append(el("option", { value: v }, label));
    if (value !== undefined && value !== null) node.value = value;
    return node;
  }

  const splitWords = (text) => text.split(/[\n,，、;；]+/).map((w) => w.trim()).filter(Boolean);

  function button(label, onclick, attrs) {
    return el("button", { type: "button", onclick, ...(attrs || {}) }, label);
  }

  function table(tbody, rows, colspan, empty) {
    clear(tbody);
    if (!rows.length) {
      tbody.append(el("tr", { class: "empty" }, el("td", { colspan: String(colspan) }, empty || T.adm_none)));
      return;
    }
    for (const r of rows) tbody.append(r);
  }

  // ------------------------------------------------------------ forms and their errors
  // The API names a bad field ("fields[1].values[0].name_en", "keywords.0"); the input
  // carrying that path (or the nearest one above it) is marked and focused.
  const norm = (p) => p.replace(/\.(\d+)/g, "[$1]");

  function controlFor(form, path) {
    let p = norm(path);
    while (p) {
      const hit = form.querySelector(`[data-path="${CSS.escape(p)}"]`);
      if (hit) return hit;
      const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
      if (cut <= 0) break;
      p = p.slice(0, cut);
    }
    return null;
  }

  function clearErrors(form) {
    for (const n of form.querySelectorAll(".field-error")) n.remove();
    for (const n of form.querySelectorAll("[aria-invalid]")) {
      n.removeAttribute("aria-invalid");
      const ids = (n.getAttribute("aria-describedby") || "").split(" ").filter((x) => !x.endsWith("-error"));
      if (ids.length) n.setAttribute("aria-describedby", ids.join(" "));
      else n.removeAttribute("aria-describedby");
    }
  }

  function showErrors(form, error) {
    toast(`${T.error}: ${error.message}`, true);
    const fields = (error.body && error.body.fields) || {};
    let first = null;
    for (const [path, message] of Object.entries(fields)) {
      const control = controlFor(form, path);
      if (!control) continue;
      const id = `${control.id}-error`;
      if (!document.getElementById(id)) {
        control.setAttribute("aria-invalid", "true");
        const described = control.getAttribute("aria-describedby");
        control.setAttribute("aria-describedby", described ? `${described} ${id}` : id);
        (control.closest(".field") || control).after(el("p", { class: "field-error error", id }, `${path}: ${message}`));
      }
      first = first || control;
    }
    if (first) first.focus();
  }

  // An editing form: ``save`` gets the form and returns the API's answer; on success the
  // form closes and ``done`` runs; on a refusal the fields the API named are marked.
  function editor(box, title, build, save, done) {
    clear(box);
    const form = el("form", { class: "action-form admin-form", novalidate: true });
    form.append(el("h3", {}, title));
    build(form);
    form.append(el("div", { class: "buttons" },
      el("button", { type: "submit" }, T.adm_save),
      button(T.cancel, () => { form.remove(); })));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      let answer;
      try {
        answer = await save(form);
      } catch (e) {
        showErrors(form, e);
        return;
      }
      form.remove();
      toast(`${title}: ${T.done}`);
      if (done) await done(answer);
    });
    box.append(form);
    const first = form.querySelector("input:not([type=hidden]):not([disabled]), select, textarea");
    if (first) first.focus();
    return form;
  }

  const value = (form, path) => {
    const c = form.querySelector(`[data-path="${CSS.escape(path)}"]`);
    if (!c) return undefined;
    return c.type === "checkbox" ? c.checked : c.value;
  };

  async function safely(fn) {
    try {
      return await fn();
    } catch (e) {
      toast(`${T.error}: ${e.message}`, true);
      return undefined;
    }
  }

  // A secret (password, API key, device token): shown here once, with a copy button.
  function reveal(box, label, secret) {
    clear(box);
    box.hidden = false;
    const code = el("code", { class: "secret-value", tabindex: "0", dataset: { secret: "1" } }, secret);
    const copy = async () => {
      try {
        await navigator.clipboard.writeText(secret);
        toast(T.adm_copied);
      } catch (_) {
        window.getSelection().selectAllChildren(code);
        toast(T.adm_copy_hint);
      }
    };
    box.append(
      el("p", {}, el("strong", {}, label)),
      el("p", {}, code),
      el("p", { class: "muted" }, T.adm_secret_once),
      el("div", { class: "buttons" },
        button(T.adm_copy, copy, { class: "copy" }),
        button(T.adm_secret_done, () => { clear(box); box.hidden = true; })),
    );
    code.focus();
  }

  // ------------------------------------------------------------ tabs
  const tabs = [...document.querySelectorAll("#admin-tabs [role=tab]")];
  const loaders = {};
  const loaded = new Set();

  function show(key, focus) {
    for (const tab of tabs) {
      const on = tab.dataset.tab === key;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      document.getElementById(`pane-${tab.dataset.tab}`).hidden = !on;
      if (on && focus) tab.focus();
    }
    history.replaceState(null, "", `#pane-${key}`);
    if (loaders[key] && (!loaded.has(key) || key === "audit")) {
      loaded.add(key);
      safely(loaders[key]);
    }
  }

  for (const tab of tabs) {
    tab.addEventListener("click", (ev) => { ev.preventDefault(); show(tab.dataset.tab, true); });
    tab.addEventListener("keydown", (ev) => {
      const i = tabs.indexOf(tab);
      const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[ev.key];
      if (to !== undefined) {
        ev.preventDefault();
        show(tabs[(to + tabs.length) % tabs.length].dataset.tab, true);
      } else if (ev.key === " ") {
        ev.preventDefault();
        show(tab.dataset.tab, true);
      }
    });
  }

  // ------------------------------------------------------------ reference data
  const ref = { departments: [], districts: [], policies: [] };
  async function refs() {
    [ref.departments, ref.districts, ref.policies] = await Promise.all([
      api("GET", "/api/v1/admin/departments"),
      api("GET", "/api/v1/admin/districts"),
      api("GET", "/api/v1/admin/policies"),
    ]);
  }
  const deptOptions = (filter, current) => ref.departments
    .filter((d) => (d.active && filter(d)) || d.code === current)
    .map((d) => [d.code, `${d.code} · ${nameOf(d)}`]);

  // ------------------------------------------------------------ services
  const svcBody = document.querySelector("#services tbody");
  const svcEditor = document.getElementById("svc-editor");
  const svcInactive = document.getElementById("svc-inactive");
  let services = [];

  async function loadServices() {
    if (!ref.policies.length) await refs();
    services = await api("GET", "/api/v1/admin/services");
    renderServices();
  }

  function renderServices() {
    const rows = services.filter((s) => s.active || svcInactive.checked).map((s) => el("tr",
      { class: s.active ? "" : "inactive", dataset: { code: s.code } },
      el("td", { class: "code" }, s.code),
      el("td", {}, nameOf(s)),
      el("td", {}, zh ? s.group_zh : s.group_en),
      el("td", {}, s.department),
      el("td", {}, s.policy),
      el("td", {}, String(s.fields.length)),
      el("td", {}, yes(s.active)),
      el("td", {}, button(T.adm_edit, () => editService(s), { "aria-label": `${T.adm_edit} ${s.code}` })),
    ));
    table(svcBody, rows, 8);
  }

  svcInactive.addEventListener("change", renderServices);
  document.getElementById("svc-new").addEventListener("click", () => editService(null));

  function editService(s) {
    const isNew = s === null;
    const cur = s || { kind: "report", keywords: [], fields: [], territorial: false, active: true, policy: "complaint" };
    editor(svcEditor, isNew ? T.adm_new_service : `${T.adm_edit} ${cur.code}`, (form) => {
      if (isNew) form.append(field("code", T.adm_code, input("", { required: true, maxlength: "64", autocomplete: "off" }), T.adm_code_hint));
      const cols = el("div", { class: "grid2" },
        field("name_zh", T.adm_name_zh, input(cur.name_zh, { required: true, maxlength: "200" })),
        field("name_en", T.adm_name_en, input(cur.name_en, { required: true, maxlength: "200" })),
        field("group_zh", T.adm_group_zh, input(cur.group_zh, { required: true, maxlength: "100" })),
        field("group_en", T.adm_group_en, input(cur.group_en, { required: true, maxlength: "100" })),
        field("description_zh", T.adm_description_zh, textarea(cur.description_zh, { maxlength: "4000" })),
        field("description_en", T.adm_description_en, textarea(cur.description_en, { maxlength: "4000" })),
        field("kind", T.kind, select(KINDS.map((k) => [k, word("kind", k)]), cur.kind)),
        field("policy", T.adm_policy, select(ref.policies.map((p) => [p.code, `${p.code} · ${nameOf(p)}`]), cur.policy)),
        field("department", T.adm_default_department, select(deptOptions(() => true, cur.department), cur.department)),
        field("keywords", T.adm_keywords, textarea((cur.keywords || []).join("\n"), { rows: "4" }), T.adm_keywords_hint),
      );
      form.append(cols,
        field("territorial", T.adm_territorial, checkbox(cur.territorial), T.adm_territorial_hint),
        field("active", T.adm_active, checkbox(cur.active)),
        fieldEditor(cur.fields || []));
    }, (form) => {
      const body = {
        name_zh: value(form, "name_zh"), name_en: value(form, "name_en"),
        group_zh: value(form, "group_zh"), group_en: value(form, "group_en"),
        description_zh: value(form, "description_zh"), description_en: value(form, "description_en"),
        kind: value(form, "kind"), policy: value(form, "policy"), department: value(form, "department"),
        keywords: splitWords(value(form, "keywords")),
        territorial: value(form, "territorial"), active: value(form, "active"),
        fields: collectFields(form.querySelector(".fields-editor")),
      };
      if (isNew) return api("POST", "/api/v1/admin/services", { code: value(form, "code"), ...body });
      return api("PATCH", `/api/v1/admin/services/${encodeURIComponent(cur.code)}`, body);
    }, async (saved) => {
      await loadServices();
      focusRow(svcBody, saved.code);
    });
  }

  function focusRow(tbody, code) {
    const b = tbody.querySelector(`tr[data-code="${CSS.escape(String(code))}"] button`);
    if (b) b.focus();
  }

  // The custom form fields of a service (Open311 attributes): each with its type, its
  // labels, whether it is required and, for lists, the values to choose from.
  function fieldEditor(initial) {
    const box = el("fieldset", { class: "fields-editor" }, el("legend", {}, T.adm_form_fields));
    const list = el("div", { class: "field-cards" });
    const add = button(T.adm_add_field, () => {
      const now = collectFields(box);
      now.push({ code: "", datatype: "string", required: false, label_zh: "", label_en: "" });
      draw(now, `fields[${now.length - 1}].code`);
    }, { class: "add-field", dataset: { path: "fields" } });
    box.append(el("p", { class: "muted" }, T.adm_fields_hint), list, add);

    function draw(fields, focusPath) {
      clear(list);
      fields.forEach((f, i) => list.append(card(f, i, fields)));
      if (focusPath) {
        const c = box.querySelector(`[data-path="${CSS.escape(focusPath)}"]`);
        if (c) c.focus();
      }
    }

    function card(f, i, fields) {
      const at = `fields[${i}]`;
      const type = select(DATATYPES.map((d) => [d, T[`adm_type_${d}`] || d]), f.datatype);
      const values = el("div", { class: "values" });
      const c = el("fieldset", { class: "field-card" },
        el("legend", {}, `${T.adm_field} ${i + 1}${f.code ? ` · ${f.code}` : ""}`),
        el("div", { class: "grid3" },
          field(`${at}.code`, T.adm_code, input(f.code, { maxlength: "40", autocomplete: "off" })),
          field(`${at}.datatype`, T.adm_datatype, type),
          field(`${at}.required`, T.adm_required, checkbox(f.required)),
          field(`${at}.label_zh`, T.adm_label_zh, input(f.label_zh, { maxlength: "100" })),
          field(`${at}.label_en`, T.adm_label_en, input(f.label_en, { maxlength: "100" })),
          field(`${at}.description_zh`, T.adm_description_zh, input(f.description_zh, { maxlength: "500" })),
          field(`${at}.description_en`, T.adm_description_en, input(f.description_en, { maxlength: "500" })),
        ),
        values,
        el("div", { class: "buttons" },
          button(T.adm_up, () => move(i, -1), { disabled: i === 0, "aria-label": `${T.adm_up} ${T.adm_field} ${i + 1}` }),
          button(T.adm_down, () => move(i, 1), { disabled: i === fields.length - 1, "aria-label": `${T.adm_down} ${T.adm_field} ${i + 1}` }),
          button(T.adm_remove_field, () => {
            const now = collectFields(box);
            now.splice(i, 1);
            draw(now);
            add.focus();
          }, { class: "danger" })),
      );
      const drawValues = (vals) => {
        clear(values);
        if (!LIST_TYPES.has(type.value)) return;
        const rows = el("ol", { class: "value-rows" });
        vals.forEach((v, j) => {
          const vat = `${at}.values[${j}]`;
          rows.append(el("li", {}, el("div", { class: "grid3" },
            field(`${vat}.key`, T.adm_value_key, input(v.key, { maxlength: "40", autocomplete: "off" })),
            field(`${vat}.name_zh`, T.adm_name_zh, input(v.name_zh, { maxlength: "100" })),
            field(`${vat}.name_en`, T.adm_name_en, input(v.name_en, { maxlength: "100" }))),
          button(T.adm_remove_value, () => {
            const now = readValues(c, at);
            now.splice(j, 1);
            drawValues(now);
          }, { "aria-label": `${T.adm_remove_value} ${j + 1}` })));
        });
        values.append(el("h4", {}, T.adm_values), rows, button(T.adm_add_value, () => {
          const now = readValues(c, at);
          now.push({ key: "", name_zh: "", name_en: "" });
          drawValues(now);
          const k = values.querySelector(`[data-path="${CSS.escape(`${at}.values[${now.length - 1}].key`)}"]`);
          if (k) k.focus();
        }, { dataset: { path: `${at}.values` } }));
      };
      type.addEventListener("change", () => drawValues(readValues(c, at)));
      drawValues(f.values || []);
      return c;
    }

    function move(i, step) {
      const now = collectFields(box);
      const [f] = now.splice(i, 1);
      now.splice(i + step, 0, f);
      draw(now);
      const target = box.querySelectorAll(".field-card")[i + step];
      if (!target) return;
      const [up, down] = target.querySelectorAll(":scope > .buttons > button");
      const wanted = step < 0 ? up : down;
      (wanted.disabled ? (step < 0 ? down : up) : wanted).focus();
    }

    draw(initial.map((f) => ({ ...f })));
    return box;
  }

  function readValues(card, at) {
    const out = [];
    for (let j = 0; ; j++) {
      const key = card.querySelector(`[data-path="${CSS.escape(`${at}.values[${j}].key`)}"]`);
      if (!key) return out;
      const get = (k) => card.querySelector(`[data-path="${CSS.escape(`${at}.values[${j}].${k}`)}"]`).value.trim();
      out.push({ key: get("key"), name_zh: get("name_zh"), name_en: get("name_en") });
    }
  }

  function collectFields(box) {
    return [...box.querySelectorAll(".field-card")].map((c, i) => {
      const at = `fields[${i}]`;
      const get = (k) => c.querySelector(`[data-path="${CSS.escape(`${at}.${k}`)}"]`);
      const f = {
        code: get("code").value.trim(),
        datatype: get("datatype").value,
        required: get("required").checked,
        label_zh: get("label_zh").value.trim(),
        label_en: get("label_en").value.trim(),
        order: i + 1,
      };
      for (const k of ["description_zh", "description_en"]) if (get(k).value.trim()) f[k] = get(k).value.trim();
      if (LIST_TYPES.has(f.datatype)) f.values = readValues(c, at);
      return f;
    });
  }

  loaders.services = loadServices;

  // ------------------------------------------------------------ departments
  const deptBody = document.querySelector("#departments tbody");
  const deptEditor = document.getElementById("dept-editor");

  async function loadDepartments() {
    await refs();
    const rows = ref.departments.map((d) => el("tr", { class: d.active ? "" : "inactive", dataset: { code: d.code } },
      el("td", { class: "code" }, d.code),
      el("td", {}, nameOf(d)),
      el("td", {}, T[`adm_level_${d.level}`] || d.level),
      el("td", {}, d.parent || "—"),
      el("td", {}, d.district || "—"),
      el("td", {}, d.phone || "—"),
      el("td", {}, yes(d.active)),
      el("td", {}, button(T.adm_edit, () => editDepartment(d), { "aria-label": `${T.adm_edit} ${d.code}` }))));
    table(deptBody, rows, 8);
  }

  document.getElementById("dept-new").addEventListener("click", () => editDepartment(null));

  function editDepartment(d) {
    const isNew = d === null;
    const cur = d || { level: "street", keywords: [], active: true };
    editor(deptEditor, isNew ? T.adm_new_department : `${T.adm_edit} ${cur.code}`, (form) => {
      const level = select(LEVELS.map((l) => [l, T[`adm_level_${l}`] || l]), cur.level);
      const parent = el("select", {});
      const district = select([["", "—"], ...ref.districts.map((x) => [x.code, `${x.code} · ${nameOf(x)}`])], cur.district || "");
      const words = textarea((cur.keywords || []).join("\n"), { rows: "4" });
      const sync = () => {
        const above = { district: "bureau", street: "district" }[level.value];
        clear(parent);
        parent.append(el("option", { value: "" }, "—"));
        for (const [v, label] of deptOptions((x) => x.level === above && x.code !== cur.code, cur.parent)) {
          parent.append(el("option", { value: v }, label));
        }
        parent.value = cur.parent && [...parent.options].some((o) => o.value === cur.parent) ? cur.parent : "";
        parent.disabled = !above;
        district.disabled = level.value === "bureau";
        words.disabled = level.value !== "street";
      };
      level.addEventListener("change", sync);
      if (isNew) form.append(field("code", T.adm_code, input("", { required: true, maxlength: "32", autocomplete: "off" }), T.adm_code_hint));
      form.append(el("div", { class: "grid2" },
        field("name_zh", T.adm_name_zh, input(cur.name_zh, { required: true, maxlength: "100" })),
        field("name_en", T.adm_name_en, input(cur.name_en, { required: true, maxlength: "100" })),
        field("level", T.adm_level, level),
        field("parent", T.adm_parent, parent),
        field("district", T.district, district, T.adm_district_hint),
        field("phone", T.phone, input(cur.phone, { maxlength: "32", inputmode: "tel" })),
        field("keywords", T.adm_street_words, words, T.adm_street_words_hint)),
      field("active", T.adm_active, checkbox(cur.active)));
      sync();
    }, (form) => {
      const lv = value(form, "level");
      const body = {
        name_zh: value(form, "name_zh"), name_en: value(form, "name_en"), level: lv,
        parent: lv === "bureau" ? null : value(form, "parent") || null,
        district: lv === "bureau" ? null : value(form, "district") || null,
        keywords: lv === "street" ? splitWords(value(form, "keywords")) : [],
        phone: value(form, "phone").trim() || null,
        active: value(form, "active"),
      };
      if (isNew) return api("POST", "/api/v1/admin/departments", { code: value(form, "code"), ...body });
      return api("PATCH", `/api/v1/admin/departments/${encodeURIComponent(cur.code)}`, body);
    }, async (saved) => {
      await loadDepartments();
      focusRow(deptBody, saved.code);
    });
  }

  loaders.departments = loadDepartments;

  // ------------------------------------------------------------ routing
  const distBody = document.querySelector("#districts tbody");
  const distEditor = document.getElementById("district-editor");

  async function loadDistricts() {
    await refs();
    const rows = ref.districts.map((d) => el("tr", { dataset: { code: d.code } },
      el("td", { class: "code" }, d.code),
      el("td", {}, nameOf(d)),
      el("td", { class: "words" }, d.keywords.join("、")),
      el("td", {}, button(T.adm_edit, () => editDistrict(d), { "aria-label": `${T.adm_edit} ${d.code}` }))));
    table(distBody, rows, 4);
  }

  function editDistrict(d) {
    editor(distEditor, `${T.adm_edit} ${d.code}`, (form) => {
      form.append(el("div", { class: "grid2" },
        field("name_zh", T.adm_name_zh, input(d.name_zh, { required: true, maxlength: "100" })),
        field("name_en", T.adm_name_en, input(d.name_en, { required: true, maxlength: "100" }))),
      field("keywords", T.adm_address_words, textarea(d.keywords.join("\n"), { rows: "8" }), T.adm_address_words_hint));
    }, (form) => api("PATCH", `/api/v1/admin/districts/${encodeURIComponent(d.code)}`, {
      name_zh: value(form, "name_zh"), name_en: value(form, "name_en"),
      keywords: splitWords(value(form, "keywords")),
    }), async (saved) => {
      await loadDistricts();
      focusRow(distBody, saved.code);
    });
  }

  const label = (list, code) => {
    if (!code) return "—";
    const hit = list.find((x) => x.code === code);
    return hit ? `${nameOf(hit)} (${code})` : code;
  };
  const tryForm = document.getElementById("route-try");
  const tryOut = document.getElementById("route-result");
  tryForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams({ text: tryForm.elements.text.value });
    if (tryForm.elements.address.value.trim()) p.set("address", tryForm.elements.address.value.trim());
    if (!services.length) await safely(loadServices);
    const r = await safely(() => api("GET", `/api/v1/routing/suggest?${p}`));
    if (!r) return;
    clear(tryOut);
    const dl = el("dl", { class: "facts" },
      el("dt", {}, T.service), el("dd", { id: "route-service" }, label(services, r.service)),
      el("dt", {}, T.district), el("dd", { id: "route-district" }, label(ref.districts, r.district)));
    const ol = el("ol", { class: "suggestions" });
    for (const s of r.suggestions) {
      ol.append(el("li", { dataset: { department: s.department } },
        el("strong", {}, `${s.name} (${s.department})`), ` · ${Math.round(s.confidence * 100)}%`,
        el("div", { class: "reason" }, s.reason)));
    }
    tryOut.append(dl, el("h3", {}, T.suggestions), r.suggestions.length ? ol : el("p", {}, T.adm_no_route));
  });

  // Routing model versions: how each measured beside the keyword baseline (and its
  // service model, if it learnt one), which one is in use, and a way to train a new one
  // or go back to an earlier one.
  const modelBody = document.querySelector("#models tbody");
  const modelNote = document.getElementById("models-note");
  const pct = (x) => (x == null ? "—" : `${(x * 100).toFixed(1)}%`);

  async function loadModels() {
    const list = await api("GET", "/api/v1/admin/routing/models");
    const auto = list.auto_dispatch == null ? T.adm_auto_dispatch_off : `${T.adm_auto_dispatch} ${pct(list.auto_dispatch)}`;
    const every = list.retrain_hours ? `${T.adm_retrain_every} ${list.retrain_hours}` : T.adm_retrain_off;
    modelNote.textContent = `${T.adm_models_note} ${auto} · ${every}`;
    const rows = list.items.map((m) => el("tr", { class: m.active ? "current" : "", dataset: { code: String(m.version) } },
      el("td", { class: "code" }, `v${m.version}`),
      el("td", {}, when(m.created_at)),
      el("td", {}, m.source === "tickets" ? T.adm_source_tickets : m.source),
      el("td", {}, String(m.rows)),
      el("td", {}, pct(m.accuracy)),
      el("td", {}, pct(m.macro_f1)),
      el("td", {}, pct(((m.metrics || {}).baseline_keywords || {}).accuracy)),
      el("td", { class: "service-accuracy" }, pct(((m.metrics || {}).service || {}).accuracy)),
      el("td", {}, m.active ? T.adm_in_use : ""),
      el("td", {}, m.active ? null : button(T.adm_use_version, async () => {
        if (await safely(() => api("POST", `/api/v1/admin/routing/models/${m.version}/activate`))) {
          toast(`${T.adm_use_version} v${m.version}: ${T.done}`);
          await loadModels();
          document.getElementById("models-train").focus();  // the row in use has no button
        }
      }, { "aria-label": `${T.adm_use_version} v${m.version}` }))));
    const ready = list.retrain_hours ? T.adm_models_coming : T.adm_models_ready;
    const none = (list.resolved_tickets >= list.needed ? ready : T.adm_no_models)
      .replace("{n}", String(list.resolved_tickets)).replace("{needed}", String(list.needed));
    table(modelBody, rows, 10, none);
    showAutoDispatch(list);
  }

  // What auto-dispatch at each threshold would do, as the version in use measured on its
  // held-out tickets; the row of the configured threshold is marked.
  const autoBody = document.querySelector("#auto-dispatch tbody");
  const autoNote = document.getElementById("auto-note");

  function showAutoDispatch(list) {
    const active = list.items.find((m) => m.active);
    const figures = active ? (active.metrics || {}).auto_dispatch || [] : [];
    autoNote.textContent = figures.length ? T.adm_auto_note.replace("{v}", String(active.version)) : "";
    const rows = figures.map((f) => {
      const current = list.auto_dispatch != null && Math.abs(f.threshold - list.auto_dispatch) < 1e-9;
      return el("tr", { class: current ? "current" : "" },
        el("td", {}, pct(f.threshold), current ? ` (${T.adm_auto_current})` : ""),
        el("td", {}, pct(f.share)),
        el("td", {}, pct(f.accuracy)));
    });
    table(autoBody, rows, 3, T.adm_auto_none);
  }

  // How routing does on the city's own tickets: resolved ones by how intake routed
  // them (the model's by version), the share the suggested department resolved, the
  // same for those auto-dispatch sent at once, and the share that kept the service
  // intake gave them.
  const liveBody = document.querySelector("#live-routing tbody");
  async function loadLiveRouting() {
    const live = await api("GET", "/api/v1/admin/routing/outcomes");
    document.getElementById("live-note").textContent = T.adm_live_note.replace("{days}", String(live.days));
    const rows = live.items.map((r) => el("tr", { dataset: { code: r.rule, version: r.version ?? "" } },
      el("td", {}, T[`adm_rule_${r.rule}`] || r.rule, r.version ? ` v${r.version}` : ""),
      el("td", {}, String(r.tickets)),
      el("td", { class: "right-share" }, `${pct(r.share)} (${r.right})`),
      el("td", {}, String(r.auto)),
      el("td", { class: "auto-share" }, r.auto ? `${pct(r.auto_share)} (${r.auto_right})` : "—"),
      el("td", { class: "service-share" },
        r.services ? `${pct(r.services_share)} (${r.services_kept}/${r.services})` : "—")));
    table(liveBody, rows, 6, T.adm_live_none);
  }

  document.getElementById("models-train").addEventListener("click", async () => {
    if (await safely(() => api("POST", "/api/v1/admin/routing/train"))) toast(T.adm_train_queued);
  });

  loaders.routing = async () => {
    await loadDistricts();
    await loadModels();
    await loadLiveRouting();
  };

  // ------------------------------------------------------------ calendar
  const hoursBody = document.querySelector("#hours tbody");
  const hoursEditor = document.getElementById("hours-editor");
  const daysBody = document.querySelector("#days tbody");
  const dayForm = document.getElementById("day-form");
  const yearSelect = document.getElementById("cal-year");
  let hours = [];
  const hhmm = (t) => t.slice(0, 5);
  const thisYear = new Date().getFullYear();
  for (let y = thisYear - 1; y <= thisYear + 5; y++) yearSelect.append(el("option", { value: String(y) }, String(y)));
  yearSelect.value = String(thisYear);
  yearSelect.addEventListener("change", () => safely(loadCalendar));

  async function loadCalendar() {
    const cal = await api("GET", `/api/v1/admin/calendar?year=${yearSelect.value}`);
    hours = cal.working_hours;
    const byDay = WEEKDAYS.map((name, i) => el("tr", {},
      el("th", { scope: "row" }, name),
      el("td", {}, hours.filter((p) => p.weekday === i).map((p) => `${hhmm(p.start)}–${hhmm(p.end)}`).join(", ") || T.adm_closed)));
    table(hoursBody, byDay, 2);
    const dayName = (iso) => new Intl.DateTimeFormat(me.locale, { weekday: "short", timeZone: "UTC" }).format(new Date(`${iso}T00:00:00Z`));
    const rows = cal.days.map((d) => el("tr", { class: `day-${d.kind}`, dataset: { code: d.day } },
      el("td", {}, `${d.day} ${dayName(d.day)}`),
      el("td", {}, T[`adm_day_${d.kind}`]),
      el("td", {}, (zh ? d.name_zh : d.name_en) || d.name_zh || d.name_en),
      el("td", {},
        button(T.adm_edit, () => fillDay(d), { "aria-label": `${T.adm_edit} ${d.day}` }), " ",
        button(T.adm_delete, async () => {
          if (!window.confirm(`${T.adm_delete} ${d.day}?`)) return;
          if (await safely(() => api("DELETE", `/api/v1/admin/calendar/days/${d.day}`)) !== undefined) {
            toast(`${T.adm_delete} ${d.day}: ${T.done}`);
            await loadCalendar();
            dayForm.elements.day.focus();
          }
        }, { class: "danger", "aria-label": `${T.adm_delete} ${d.day}` }))));
    table(daysBody, rows, 4);
  }

  function fillDay(d) {
    dayForm.elements.day.value = d.day;
    dayForm.elements.kind.value = d.kind;
    dayForm.elements.name_zh.value = d.name_zh;
    dayForm.elements.name_en.value = d.name_en;
    dayForm.elements.day.focus();
  }

  for (const c of dayForm.querySelectorAll("[name]")) c.dataset.path = c.name;
  dayForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(dayForm);
    const day = dayForm.elements.day.value;
    if (!day) {
      showErrors(dayForm, { message: `${T.adm_date}: ${T.adm_required}`, body: { fields: { day: T.adm_required } } });
      return;
    }
    try {
      await api("PUT", `/api/v1/admin/calendar/days/${day}`, {
        kind: dayForm.elements.kind.value,
        name_zh: dayForm.elements.name_zh.value,
        name_en: dayForm.elements.name_en.value,
      });
    } catch (e) {
      showErrors(dayForm, e);
      return;
    }
    toast(`${day}: ${T.done}`);
    if (day.slice(0, 4) !== yearSelect.value && [...yearSelect.options].some((o) => o.value === day.slice(0, 4))) {
      yearSelect.value = day.slice(0, 4);
    }
    dayForm.reset();
    await loadCalendar();
    focusRow(daysBody, day);
  });

  document.getElementById("hours-edit").addEventListener("click", () => {
    editor(hoursEditor, T.adm_working_hours, (form) => {
      const rows = el("ol", { class: "period-rows" });
      const add = button(T.adm_add_period, () => {
        addRow({ weekday: 0, start: "09:00", end: "17:00" });
        rows.lastElementChild.querySelector("select").focus();
      }, { dataset: { path: "periods" } });
      const renumber = () => [...rows.children].forEach((li, i) => {
        for (const c of li.querySelectorAll("[data-key]")) c.dataset.path = `periods[${i}].${c.dataset.key}`;
        li.querySelector("button.danger").setAttribute("aria-label", `${T.adm_remove} ${T.adm_periods} ${i + 1}`);
      });
      const addRow = (p) => {
        const wd = select(WEEKDAYS.map((n, i) => [String(i), n]), String(p.weekday), { dataset: { key: "weekday" } });
        const start = input(hhmm(p.start), { type: "time", dataset: { key: "start" } });
        const end = input(hhmm(p.end), { type: "time", dataset: { key: "end" } });
        const li = el("li", { class: "period" },
          field("weekday", T.adm_weekday, wd), field("start", T.adm_start, start), field("end", T.adm_end, end));
        li.append(button(T.adm_remove, () => { li.remove(); renumber(); add.focus(); }, { class: "danger" }));
        rows.append(li);
        renumber();
      };
      hours.forEach(addRow);
      form.append(rows, add);
    }, (form) => api("PUT", "/api/v1/admin/calendar/hours", {
      periods: [...form.querySelectorAll("li.period")].map((li) => ({
        weekday: Number(li.querySelector("[data-key=weekday]").value),
        start: li.querySelector("[data-key=start]").value,
        end: li.querySelector("[data-key=end]").value,
      })),
    }), async () => {
      await loadCalendar();
      document.getElementById("hours-edit").focus();
    });
  });

  loaders.calendar = loadCalendar;

  // ------------------------------------------------------------ users
  const userBody = document.querySelector("#users tbody");
  const userEditor = document.getElementById("user-editor");
  const userSecret = document.getElementById("user-secret");

  async function loadUsers() {
    if (!ref.departments.length) await refs();
    const users = await api("GET", "/api/v1/admin/users");
    const now = Date.now();
    const rows = users.map((u) => {
      const locked = u.locked_until && new Date(u.locked_until).getTime() > now;
      return el("tr", { class: u.active ? "" : "inactive", dataset: { code: u.username } },
        el("td", { class: "code" }, u.username),
        el("td", {}, u.display_name || "—"),
        el("td", {}, T[`adm_role_${u.role}`] || u.role),
        el("td", {}, u.department || "—"),
        el("td", {}, u.locale),
        el("td", {}, u.active ? (locked ? `${T.adm_locked} ${when(u.locked_until)}` : T.adm_active) : T.adm_inactive),
        el("td", { class: "row-actions" },
          button(T.adm_edit, () => editUser(u), { "aria-label": `${T.adm_edit} ${u.username}` }),
          button(T.adm_reset_password, () => resetPassword(u), { "aria-label": `${T.adm_reset_password} ${u.username}` }),
          locked ? button(T.adm_unlock, () => unlock(u), { "aria-label": `${T.adm_unlock} ${u.username}` }) : null));
    });
    table(userBody, rows, 7);
  }

  function userFields(form, cur, isNew) {
    const role = select(ROLES.map((r) => [r, T[`adm_role_${r}`] || r]), cur.role);
    const dept = select([["", "—"], ...deptOptions(() => true, cur.department)], cur.department || "");
    const sync = () => { dept.disabled = role.value !== "department"; };
    role.addEventListener("change", sync);
    if (isNew) form.append(field("username", T.username, input("", { required: true, maxlength: "64", autocomplete: "off" }), T.adm_username_hint));
    form.append(el("div", { class: "grid2" },
      field("display_name", T.adm_display_name, input(cur.display_name, { maxlength: "100" })),
      field("role", T.role, role),
      field("department", T.department, dept, T.adm_user_department_hint),
      field("locale", T.adm_locale, select(LOCALES, cur.locale))));
    if (!isNew) form.append(field("active", T.adm_active, checkbox(cur.active), T.adm_deactivate_hint));
    sync();
  }

  function userPayload(form) {
    const role = value(form, "role");
    return {
      display_name: value(form, "display_name"),
      role,
      department: role === "department" ? value(form, "department") || null : null,
      locale: value(form, "locale"),
    };
  }

  document.getElementById("user-new").addEventListener("click", () => {
    editor(userEditor, T.adm_new_user, (form) => userFields(form, { role: "agent", locale: me.locale }, true),
      (form) => api("POST", "/api/v1/admin/users", { username: value(form, "username"), ...userPayload(form) }),
      async (issued) => {
        await loadUsers();
        reveal(userSecret, `${T.adm_password_for} ${issued.user.username}`, issued.password);
      });
  });

  function editUser(u) {
    editor(userEditor, `${T.adm_edit} ${u.username}`, (form) => userFields(form, u, false),
      (form) => api("PATCH", `/api/v1/admin/users/${encodeURIComponent(u.username)}`, { ...userPayload(form), active: value(form, "active") }),
      async (saved) => {
        await loadUsers();
        focusRow(userBody, saved.username);
      });
  }

  async function resetPassword(u) {
    if (!window.confirm(`${T.adm_reset_password} ${u.username}? ${T.adm_reset_hint}`)) return;
    const issued = await safely(() => api("POST", `/api/v1/admin/users/${encodeURIComponent(u.username)}/reset-password`));
    if (!issued) return;
    await loadUsers();
    reveal(userSecret, `${T.adm_password_for} ${u.username}`, issued.password);
  }

  async function unlock(u) {
    if (!(await safely(() => api("POST", `/api/v1/admin/users/${encodeURIComponent(u.username)}/unlock`)))) return;
    toast(`${T.adm_unlock} ${u.username}: ${T.done}`);
    await loadUsers();
    focusRow(userBody, u.username);
  }

  loaders.users = loadUsers;

  // ------------------------------------------------------------ API clients and kiosks
  // Both hold a secret the server stores only as a hash: issued once, revoked, never shown
  // again (the list has the first characters, to recognise it).
  function credentials(kind) {
    const isKiosk = kind === "kiosks";
    const base = isKiosk ? "/api/v1/admin/kiosks" : "/api/v1/admin/api-clients";
    const body = document.querySelector(`#${kind} tbody`);
    const form = document.getElementById(`${kind}-form`);
    const secret = document.getElementById(`${kind}-secret`);
    for (const c of form.querySelectorAll("[name]")) c.dataset.path = c.name;

    async function load() {
      const rows = (await api("GET", base)).map((c) => el("tr", { class: c.active ? "" : "inactive", dataset: { code: String(c.id) } },
        el("td", {}, c.name),
        el("td", { class: "code prefix" }, `${c.prefix}…`),
        isKiosk ? el("td", {}, c.location || "—") : null,
        el("td", {}, when(c.created_at)),
        el("td", {}, when(isKiosk ? c.last_seen_at : c.last_used_at)),
        el("td", {}, c.active ? T.adm_active : T.adm_revoked),
        el("td", {}, c.active ? button(T.adm_revoke, async () => {
          if (!window.confirm(`${T.adm_revoke} ${c.name}? ${T.adm_revoke_hint}`)) return;
          if (await safely(() => api("POST", `${base}/${c.id}/revoke`))) {
            toast(`${T.adm_revoke} ${c.name}: ${T.done}`);
            await load();
            form.elements.name.focus();
          }
        }, { class: "danger", "aria-label": `${T.adm_revoke} ${c.name}` }) : null)));
      table(body, rows, isKiosk ? 7 : 6);
    }

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const payload = { name: form.elements.name.value.trim() };
      if (isKiosk) payload.location = form.elements.location.value.trim();
      let issued;
      try {
        issued = await api("POST", base, payload);
      } catch (e) {
        showErrors(form, e);
        return;
      }
      form.reset();
      await load();
      reveal(secret, `${isKiosk ? T.adm_token_for : T.adm_key_for} ${payload.name}`, isKiosk ? issued.token : issued.key);
    });
    loaders[kind] = load;
  }
  credentials("apiclients");
  credentials("kiosks");

  // ------------------------------------------------------------ audit
  const auditBody = document.querySelector("#audit tbody");
  loaders.audit = async () => {
    const rows = (await api("GET", "/api/v1/admin/audit?limit=100")).map((a) => el("tr", {},
      el("td", {}, new Date(a.at).toLocaleString(me.locale)),
      el("td", {}, a.action),
      el("td", {}, a.username),
      el("td", {}, a.ip),
      el("td", { class: "detail" }, Object.keys(a.detail || {}).length ? JSON.stringify(a.detail) : "")));
    table(auditBody, rows, 5);
  };

  // ------------------------------------------------------------ start
  const asked = location.hash.replace(/^#pane-/, "");
  show(tabs.some((t) => t.dataset.tab === asked) ? asked : "services", false);
})();
