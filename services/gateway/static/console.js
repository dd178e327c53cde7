// CRM buttons console: plain JS, no build step, no dependencies.
"use strict";
const STATUSES = ["new", "contacted", "qualified", "proposal", "won", "lost"];
const $ = (selector) => document.querySelector(selector);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const state = { leads: new Map(), order: [], rows: new Map(), cursor: null, selected: new Set(), busy: new Map(),
  lead: null, appts: new Map(), sms: new Map(), optedOut: new Set(), templates: [] }; // lead: the one in the panel
const retryKeys = new Map(); // what a press sends -> its Idempotency-Key, kept while the outcome is unknown
const seenEvents = new Set(); // event ids already applied (the feed may repeat one after a reconnect)
let ws = null, wsTimer = null, wsDelay = 500, welcomedBefore = false, loadSeq = 0;

const token = () => localStorage.getItem("crm.jwt") || "";

function el(tag, props = {}, ...children) { // props: on<event> listeners, class, or DOM properties
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node[k === "class" ? "className" : k] = v;
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

// crypto.randomUUID exists only in secure contexts (https, localhost); fall back on getRandomValues.
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// Messages ------------------------------------------------------------------
function message(kind, text, details = []) {
  const box = el("div", { class: "msg" });
  const entry = {
    update(k, t, d = []) {
      box.className = "msg " + k;
      box.replaceChildren(el("button", { class: "x", type: "button", title: "dismiss", textContent: "×",
        onclick: () => box.remove() }), el("span", { textContent: t }));
      if (d.length) box.append(el("ul", {}, ...d.map((x) => el("li", { textContent: x }))));
      clearTimeout(entry.timer);
      if (k === "ok") entry.timer = setTimeout(() => box.remove(), 6000);
      return entry;
    },
  };
  $("#messages").prepend(box);
  while ($("#messages").children.length > 8) $("#messages").lastChild.remove();
  return entry.update(kind, text, details);
}

const leadName = (id) => (state.leads.get(id) ? `${state.leads.get(id).name} (${id.slice(0, 8)})` : id);

// The text of an error answer: title and detail of a problem+json body, its field errors and bulk failures.
function describe(res) {
  const b = res.body && typeof res.body === "object" ? res.body : {};
  const raw = typeof res.body === "string" && res.body ? [res.body.slice(0, 300)] : [];
  if (!b.title && !b.detail) return [`HTTP ${res.status} ${res.statusText || ""}`.trim(), raw];
  const details = (b.errors || []).map((e) => `${e.field || "body"}: ${e.message}`);
  for (const f of b.failed || []) details.push(`${leadName(f.leadId)}: ${f.reason}`);
  return [`${b.title || "Error"} (${res.status}): ${b.detail || ""}`, details];
}

// HTTP ----------------------------------------------------------------------
async function http(method, url, body, key) {
  const headers = { Authorization: "Bearer " + token() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text(); // throws on a connection cut mid-body: a network error too
  let parsed = text;
  if (/json/i.test(r.headers.get("Content-Type") || "")) try { parsed = JSON.parse(text); } catch { /* keep text */ }
  return { status: r.status, statusText: r.statusText, body: parsed, location: r.headers.get("Location"),
    replayed: r.headers.get("Idempotent-Replayed") === "true" };
}

// Poll the Location of an accepted command until its final answer (503: the service is busy, keep waiting).
async function poll(url) {
  const deadline = Date.now() + 10 * 60 * 1000;
  for (let delay = 500; Date.now() < deadline; delay = Math.min(delay * 2, 5000)) {
    await sleep(delay);
    try {
      const res = await http("GET", url);
      if (res.status !== 202 && res.status !== 503) return res;
    } catch { /* network blip: keep polling */ }
  }
  return null;
}

// The service that answers a command path (for the status resource of an accepted command).
const serviceOf = (path) => (/send-sms|\/sms\//.test(path) ? "sms" : /appointments|bookings/.test(path) ? "bookings" : "leads");

// One button press: a command with an Idempotency-Key. The key is reused when the same press is
// repeated while its outcome is unknown (network error, 5xx, still queued), dropped once it is known.
// Options: leadIds (marked busy), refused(res) (called on a 4xx answer), summary(answer) -> [kind, text]
// (what the success message says, instead of "done").
async function command(label, path, body, button, { leadIds = [], refused, summary } = {}) {
  const signature = path + " " + JSON.stringify(body);
  const again = retryKeys.has(signature);
  const key = retryKeys.get(signature) || newKey();
  retryKeys.set(signature, key);
  if (button) button.disabled = true;
  setBusy(leadIds, "sending…");
  const note = message("info", `${label}: sending${again ? " again with the same Idempotency-Key" : ""}…`);
  try {
    let res = await http("POST", path, body, key);
    if (res.status === 202) {
      const id = res.body && res.body.command ? res.body.command.id : "?";
      note.update("queued", `${label}: queued (command ${id}), waiting for the result…`);
      setBusy(leadIds, "queued");
      res = await poll(res.location || `/api/commands/${serviceOf(path)}/${id}`);
      if (!res) return note.update("error", `${label}: still queued after 10 minutes; it will take effect, reload later.`), null;
    }
    const [text, details] = describe(res);
    if (res.status >= 500) return note.update("error", `${label} failed: ${text}. Press again to retry (same key).`, details), null;
    retryKeys.delete(signature);
    if (res.status >= 400) {
      if (refused) refused(res);
      return note.update("error", `${label} refused: ${text}`, details), null;
    }
    const [kind, said] = (summary && summary(res.body)) || ["ok", "done"];
    note.update(kind, `${label}: ${said}${res.replayed ? " (replayed: it had already been done)" : ""}`);
    return res.body;
  } catch (err) {
    note.update("error", `${label}: network error (${err.message}). Press the same button again to retry; ` +
      "the same Idempotency-Key is reused, so it cannot happen twice.");
    return null;
  } finally {
    if (button) button.disabled = false;
    setBusy(leadIds, null);
  }
}

// Leads table -------------------------------------------------------------------
// Replies and events may arrive in any order: a status only replaces an older one.
const newer = (lead, at) => !lead.status_changed_at || !at || new Date(at) >= new Date(lead.status_changed_at);

function upsert(lead) {
  const known = state.leads.get(lead.id);
  if (known && !newer(known, lead.status_changed_at)) lead = { ...lead, status: known.status,
    status_changed_at: known.status_changed_at }; // an event newer than this page already arrived
  state.leads.set(lead.id, { ...known, ...lead });
  if (!state.order.includes(lead.id)) state.order.push(lead.id);
}

function addLead(lead) { // a lead just created (by this page or another): shown at once, highlighted
  const fresh = !state.leads.has(lead.id);
  upsert(lead);
  if (fresh) { renderAll(); state.rows.get(lead.id).classList.add("flash"); }
}

function setStatus(id, status, changedAt) {
  const lead = state.leads.get(id);
  if (!lead || !newer(lead, changedAt)) return;
  const changed = lead.status !== status;
  Object.assign(lead, { status, status_changed_at: changedAt || lead.status_changed_at });
  refreshRow(id, changed);
}

function setBusy(ids, text) {
  for (const id of ids) { text ? state.busy.set(id, text) : state.busy.delete(id); refreshRow(id); }
}

const shortTime = (d) => (d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString()
  : d.toLocaleString([], { dateStyle: "short", timeStyle: "short" }));

function row(lead) {
  const busy = state.busy.get(lead.id);
  const when = lead.status_changed_at ? new Date(lead.status_changed_at) : null;
  const box = el("input", { type: "checkbox", checked: state.selected.has(lead.id), title: "select",
    onchange: (e) => { e.target.checked ? state.selected.add(lead.id) : state.selected.delete(lead.id); updateBulk(); } });
  const moves = STATUSES.filter((s) => s !== lead.status).map((s) => el("button", {
    type: "button", class: "move", textContent: s, disabled: !!busy,
    onclick: (e) => changeStatus([lead.id], s, e.target) }));
  return el("tr", { id: "lead-" + lead.id, class: state.lead === lead.id ? "current" : "" },
    el("td", {}, box),
    el("td", {}, el("button", { type: "button", class: "link", textContent: lead.name, title: "appointments and SMS",
      onclick: () => openLead(lead.id) }),
      state.optedOut.has(lead.id) ? el("span", { class: "pill optout", textContent: "opted out" }) : null),
    el("td", { class: "nowrap", textContent: lead.phone }),
    el("td", { textContent: lead.email || "" }),
    el("td", {}, el("span", { class: "pill " + lead.status, textContent: lead.status }),
      busy ? el("span", { class: "busy", textContent: " " + busy }) : null),
    el("td", { class: "nowrap", textContent: when ? shortTime(when) : "", title: lead.status_changed_at || "" }),
    el("td", { class: "moves" }, ...moves));
}

function refreshRow(id, flash = false) {
  const lead = state.leads.get(id), old = state.rows.get(id);
  if (!lead || !old) return;
  const tr = row(lead);
  if (flash) tr.classList.add("flash");
  state.rows.set(id, tr); old.replaceWith(tr);
}

function renderAll() {
  state.rows = new Map(state.order.map((id) => [id, state.rows.get(id) || row(state.leads.get(id))]));
  for (const id of [...state.selected]) if (!state.rows.has(id)) state.selected.delete(id);
  for (const [id, tr] of state.rows) tr.querySelector("input").checked = state.selected.has(id);
  $("#rows").replaceChildren(...state.rows.values());
  $("#count").textContent = `${state.order.length} lead(s) loaded${state.cursor ? ", more available" : ""}`;
  $("#empty").hidden = state.order.length > 0;
  $("#empty").textContent = token() ? "No leads yet: create one above." : "Paste a JWT above to see your organisation's leads.";
  $("#more").hidden = !state.cursor;
  updateBulk();
}

function updateBulk() {
  $("#selected").textContent = `${state.selected.size} selected`;
  $("#bulk-apply").disabled = state.selected.size === 0;
  $("#select-all").checked = state.order.length > 0 && state.selected.size === state.order.length;
}

async function loadLeads(more = false) {
  if (!token()) return renderAll();
  const seq = ++loadSeq;
  const url = "/api/leads?limit=200" + (more && state.cursor ? "&cursor=" + encodeURIComponent(state.cursor) : "");
  $("#more").disabled = $("#reload").disabled = true;
  try {
    const res = await http("GET", url);
    if (seq !== loadSeq) return; // a newer load started meanwhile
    if (res.status !== 200) return void message("error", "Loading leads failed: " + describe(res)[0], describe(res)[1]);
    if (!more) { state.order = []; state.rows.clear(); }
    res.body.leads.forEach(upsert);
    state.cursor = res.body.next_cursor;
    renderAll();
  } catch (err) {
    message("error", `Loading leads failed: network error (${err.message}).`);
  } finally {
    $("#more").disabled = $("#reload").disabled = false;
  }
}

async function changeStatus(ids, status, button) {
  const bulk = ids.length > 1 || button === $("#bulk-apply");
  const label = bulk ? `Move ${ids.length} lead(s) to ${status}` : `Move ${leadName(ids[0])} to ${status}`;
  const body = bulk ? { leadIds: ids, status } : { leadId: ids[0], status };
  const answer = await command(label, "/api/leads/update-status", body, button, { leadIds: ids });
  if (!answer) return;
  for (const lead of answer.leads || [answer.lead]) setStatus(lead.id, lead.status, lead.status_changed_at);
  if (bulk) { state.selected.clear(); renderAll(); }
}

// Lead panel: appointments and SMS of one lead ------------------------------------
// Statuses only move forward: a reply, a reload or an event older than what is shown never moves one back.
const APPT_RANK = { scheduled: 0, confirmed: 1, cancelled: 2, completed: 2, no_show: 2 };
// "queued" outranks "sending": the service answers queued while the stored row says sending (its attempt
// failed and waits for a retry), and a reload of the history must not hide that.
const SMS_RANK = { sending: 0, queued: 1, sent: 2, delivered: 3, undelivered: 3, failed: 3 };
const day = (iso) => new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
const stamp = (iso) => (iso ? shortTime(new Date(iso)) : "");

function merge(map, item, rank) {
  const known = map.get(item.id) || {};
  const fresh = Object.fromEntries(Object.entries(item).filter(([, v]) => v !== undefined));
  const older = known.status && (rank[fresh.status] ?? 0) < (rank[known.status] ?? 0);
  map.set(item.id, older ? { ...fresh, ...known } : { ...known, ...fresh });
}

const LISTS = { // what the panel loads for its lead
  appointments: { path: "appointments", field: "appointments", map: () => state.appts, rank: APPT_RANK,
    render: () => renderAppointments() },
  sms: { path: "sms-history", field: "sms_messages", map: () => state.sms, rank: SMS_RANK, render: () => renderSms() },
};
let smsReload = null;

async function loadList(kind) {
  const list = LISTS[kind], id = state.lead;
  if (!id) return;
  try {
    const res = await http("GET", `/api/leads/${encodeURIComponent(id)}/${list.path}`);
    if (id !== state.lead) return; // another lead was opened meanwhile
    if (res.status !== 200) return void message("error", `Loading ${kind} failed: ` + describe(res)[0], describe(res)[1]);
    for (const item of res.body[list.field]) merge(list.map(), item, list.rank);
    list.render();
  } catch (err) {
    message("error", `Loading ${kind} failed: network error (${err.message}).`);
  }
}

function openLead(id) {
  const before = state.lead;
  state.lead = id; state.appts.clear(); state.sms.clear();
  $("#book").reset(); $("#send-sms").reset(); syncSmsForm();
  refreshRow(before); refreshRow(id); renderLead();
  if (id) { loadList("appointments"); loadList("sms"); }
}

function setOptOut(id, optedOut) {
  optedOut ? state.optedOut.add(id) : state.optedOut.delete(id);
  refreshRow(id);
  if (id === state.lead) renderLead(false);
}

function renderLead(lists = true) {
  const lead = state.leads.get(state.lead);
  $("#lead-empty").hidden = !!state.lead; $("#lead-body").hidden = $("#lead-close").hidden = !state.lead;
  $("#lead-title").textContent = lead ? lead.name : "Lead";
  $("#lead-phone").textContent = lead ? lead.phone : "";
  $("#lead-optout").hidden = !state.optedOut.has(state.lead);
  if (lists) { renderAppointments(); renderSms(); }
}

function fill(list, items) { list.replaceChildren(...items); list.classList.toggle("empty-list", items.length === 0); }

function renderAppointments() {
  const items = [...state.appts.values()].sort((a, b) => new Date(a.starts_at) - new Date(b.starts_at));
  fill($("#appointments"), items.map((a) => {
    const started = new Date(a.starts_at) <= new Date();
    const confirm = a.status === "scheduled" ? el("button", { type: "button", class: "small", textContent: "Confirm",
      disabled: started, title: started ? "it has started: it cannot be confirmed any more" : "confirm it",
      onclick: (e) => confirmAppointment(a, e.target) }) : null;
    return el("li", {}, el("div", { class: "top" }, el("strong", { textContent: day(a.starts_at) }),
      el("span", { class: "meta", textContent: `${a.duration_minutes} min` }),
      el("span", { class: "pill " + a.status, textContent: a.status.replace("_", " ") }),
      el("span", { class: "spacer" }), confirm),
    a.title ? el("div", { textContent: a.title }) : null,
    a.confirmed_at ? el("div", { class: "meta",
      textContent: `confirmed ${stamp(a.confirmed_at)}${a.confirmed_by ? " by " + a.confirmed_by : ""}` }) : null);
  }));
}

function renderSms() { // newest first; one just sent (no created_at yet) on top
  const items = [...state.sms.values()].sort((a, b) => new Date(b.created_at || 8.64e15) - new Date(a.created_at || 8.64e15));
  fill($("#sms-history"), items.map((m) => {
    const times = [["created", m.created_at], ["sent", m.sent_at], ["delivered", m.delivered_at]]
      .filter(([, t]) => t).map(([k, t]) => `${k} ${stamp(t)}`).join(" · ");
    const problem = [m.error_code && `error ${m.error_code}`, m.reason].filter(Boolean).join(": ");
    return el("li", { id: "sms-" + m.id }, el("div", { class: "top" },
      el("span", { class: "pill " + m.status, textContent: m.status }),
      m.segments ? el("span", { class: "meta", textContent: `${m.segments} segment${m.segments > 1 ? "s" : ""}` }) : null,
      el("span", { class: "meta", textContent: times })),
    el("div", { class: "body", textContent: m.body ?? "…" }),
    problem ? el("div", { class: "problem", textContent: problem }) : null,
    m.status === "queued" ? el("div", { class: "hint",
      textContent: "queued: the provider is unavailable; it is sent by itself when it is back" }) : null);
  }));
}

// An SMS event of the lead in the panel: update its row, or reload the history for one not shown yet.
function smsEvent(d, fields) {
  if (d.leadId !== state.lead) return;
  if (!state.sms.has(d.smsId)) { clearTimeout(smsReload); smsReload = setTimeout(() => loadList("sms"), 300); return; }
  merge(state.sms, { id: d.smsId, ...fields }, SMS_RANK);
  renderSms();
}

async function confirmAppointment(a, button) {
  const sendSms = $("#confirm-sms").checked;
  const answer = await command(`Confirm ${leadName(a.lead_id)}'s appointment of ${day(a.starts_at)}${sendSms ? " (with SMS)" : ""}`,
    "/api/bookings/confirm", { appointmentId: a.id, sendSms }, button,
    { leadIds: [a.lead_id], summary: (r) => ["ok", r.appointment ? r.appointment.status : "done"] });
  if (answer && answer.appointment && a.lead_id === state.lead) { merge(state.appts, answer.appointment, APPT_RANK); renderAppointments(); }
}

// "2026-12-01T10:00" from a datetime-local input (the browser's time zone) -> "2026-12-01T10:00:00+01:00"
function isoWithZone(local) {
  const d = new Date(local);
  if (Number.isNaN(d.getTime())) return null;
  const pad = (n) => String(n).padStart(2, "0"), off = -d.getTimezoneOffset();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:` +
    `${pad(d.getSeconds())}${off < 0 ? "-" : "+"}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

async function book(form) {
  const leadId = state.lead, data = new FormData(form), startsAt = isoWithZone(data.get("startsAt"));
  if (!leadId || !startsAt) return void message("error", "Book: choose a lead and a start date and time.");
  const body = { leadId, startsAt };
  if (data.get("durationMinutes")) body.durationMinutes = Number(data.get("durationMinutes"));
  if (data.get("title").trim()) body.title = data.get("title").trim();
  const answer = await command(`Book ${leadName(leadId)} on ${day(startsAt)}`, "/api/appointments", body,
    form.querySelector("button"), { leadIds: [leadId], summary: () => ["ok", "booked"] });
  if (answer && answer.appointment && leadId === state.lead) {
    form.reset(); merge(state.appts, answer.appointment, APPT_RANK); renderAppointments();
  }
}

async function sendSms(form) {
  const leadId = state.lead, f = form.elements, templateId = f.templateId.value, text = f.message.value.trim();
  if (!leadId) return;
  if (!templateId && !text) return void message("error", "Send SMS: write a message or choose a template.");
  const body = templateId ? { leadId, templateId } : { leadId, message: text };
  const answer = await command(`SMS to ${leadName(leadId)}`, "/api/leads/send-sms", body, form.querySelector("button[type=submit]"), {
    leadIds: [leadId],
    summary: (a) => (a.sms && a.sms.status === "queued"
      ? ["queued", "queued: the provider is unavailable; it is sent by itself when it is back"] : ["ok", a.sms ? a.sms.status : "done"]),
    refused: (res) => {
      if (res.body && res.body.type === "/problems/opted-out") setOptOut(leadId, true);
      if (leadId === state.lead) loadList("sms"); // a refused SMS may have its row (failed)
    },
  });
  if (!answer || !answer.sms) return;
  if (!templateId && f.message.value.trim() === text) { f.message.value = ""; syncSmsForm(); }
  if (leadId !== state.lead) return;
  merge(state.sms, { id: answer.sms.id, status: answer.sms.status, sent_at: answer.sms.sentAt, body: body.message }, SMS_RANK);
  renderSms(); loadList("sms"); // the stored row: body (template filled), segments, times
}

function syncSmsForm() { // a template replaces the message; the textarea shows what it will say
  const f = $("#send-sms").elements, t = state.templates.find((x) => x.id === f.templateId.value);
  f.message.disabled = !!t;
  f.message.placeholder = t ? `Template "${t.name}": ${t.body}` : "Message (1 to 1600 characters)";
  if (t) f.message.value = "";
  $("#sms-count").textContent = t ? `fields: ${t.fields.join(", ") || "none"}` : `${f.message.value.length} / 1600`;
}

// SMS templates (organisation-wide) -----------------------------------------------
async function loadTemplates() {
  if (!token()) return renderTemplates();
  try {
    const res = await http("GET", "/api/sms/templates");
    if (res.status !== 200) return void message("error", "Loading SMS templates failed: " + describe(res)[0], describe(res)[1]);
    state.templates = res.body.templates;
    renderTemplates();
  } catch (err) {
    message("error", `Loading SMS templates failed: network error (${err.message}).`);
  }
}

function renderTemplates() {
  fill($("#templates"), state.templates.map((t) => el("li", {}, el("div", { class: "top" }, el("strong", { textContent: t.name }),
    t.fields.length ? el("span", { class: "meta", textContent: "fields: " + t.fields.join(", ") }) : null),
  el("div", { class: "body", textContent: t.body }))));
  const select = $("#send-sms").elements.templateId, chosen = select.value;
  select.replaceChildren(el("option", { value: "", textContent: "Write a message…" }),
    ...state.templates.map((t) => el("option", { value: t.id, textContent: "Template: " + t.name })));
  select.value = state.templates.some((t) => t.id === chosen) ? chosen : "";
  syncSmsForm();
}

async function createTemplate(form) {
  const data = new FormData(form), body = { name: data.get("name").trim(), body: data.get("body").trim() };
  const answer = await command(`Create template ${body.name}`, "/api/sms/templates", body, form.querySelector("button"),
    { summary: () => ["ok", "created"] });
  if (!answer || !answer.template) return;
  form.reset();
  state.templates = [...state.templates.filter((t) => t.id !== answer.template.id), answer.template];
  renderTemplates();
}

// Live events -----------------------------------------------------------------
function setConn(kind, text) { $("#conn").className = "conn " + kind; $("#conn").textContent = text; }

function feed(frame, text) {
  const when = new Date(frame.occurred_at || Date.now()).toLocaleTimeString();
  $("#feed").prepend(el("li", {}, el("time", { textContent: when }), el("code", { textContent: frame.topic }),
    el("span", { textContent: text })));
  while ($("#feed").children.length > 200) $("#feed").lastChild.remove();
}

function onEvent(frame) {
  if (frame.id && seenEvents.has(frame.id)) return;
  if (frame.id) { seenEvents.add(frame.id); if (seenEvents.size > 5000) seenEvents.clear(); }
  const d = frame.data || {};
  if (frame.topic === "leads.created") {
    addLead({ id: d.leadId, name: d.name, phone: d.phone, email: d.email, status: d.status,
      created_at: d.createdAt, status_changed_at: d.createdAt });
    feed(frame, `${d.name} (${d.phone}) created by ${d.by}`);
  } else if (frame.topic === "leads.status_changed") {
    setStatus(d.leadId, d.to, d.changedAt);
    feed(frame, `${leadName(d.leadId)}: ${d.from} → ${d.to} by ${d.by}`);
  } else if (frame.topic === "appointments.created" || frame.topic === "appointments.confirmed") {
    const created = frame.topic === "appointments.created";
    if (d.leadId === state.lead) {
      if (created) merge(state.appts, { id: d.appointmentId, lead_id: d.leadId, starts_at: d.startsAt, title: d.title,
        duration_minutes: d.durationMinutes, status: "scheduled", created_at: frame.occurred_at }, APPT_RANK);
      else if (state.appts.has(d.appointmentId)) merge(state.appts, { id: d.appointmentId, status: "confirmed",
        confirmed_at: d.confirmedAt, confirmed_by: d.confirmedBy }, APPT_RANK);
      else loadList("appointments");
      renderAppointments();
    }
    feed(frame, created ? `${leadName(d.leadId)}: appointment booked for ${day(d.startsAt)}${d.title ? ` (${d.title})` : ""} by ${d.by}`
      : `${leadName(d.leadId)}: appointment of ${day(d.startsAt)} confirmed by ${d.confirmedBy}${d.sendSms ? ", with SMS" : ""}`);
  } else if (frame.topic === "sms.sent") {
    smsEvent(d, { status: "sent", segments: d.segments, sent_at: d.sentAt, provider_sid: d.providerSid });
    feed(frame, `${leadName(d.leadId)}: SMS sent (${d.segments} segment${d.segments > 1 ? "s" : ""})`);
  } else if (frame.topic === "sms.status_changed") {
    smsEvent(d, { status: d.to, error_code: d.errorCode ?? undefined,
      delivered_at: d.to === "delivered" ? frame.occurred_at : undefined });
    feed(frame, `${leadName(d.leadId)}: SMS ${d.from} → ${d.to}${d.errorCode ? ` (error ${d.errorCode})` : ""}`);
  } else if (frame.topic === "sms.failed") {
    smsEvent(d, { status: "failed", error_code: d.errorCode ?? undefined, reason: d.reason });
    feed(frame, `${leadName(d.leadId)}: SMS failed: ${d.reason}`);
  } else if (frame.topic === "sms.opt_out_changed") {
    setOptOut(d.leadId, d.optedOut);
    feed(frame, `${leadName(d.leadId)} (${d.phone}) opted ${d.optedOut ? "out of" : "back in to"} SMS (${d.keyword})`);
  } else {
    feed(frame, JSON.stringify(d));
  }
}

function connect() {
  clearTimeout(wsTimer);
  if (ws) { const old = ws; ws = null; old.close(1000, "reconnecting"); }
  if (!token()) return setConn("off", "no token");
  const sock = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws = sock;
  setConn("connecting", "connecting…");
  sock.onopen = () => sock.send(JSON.stringify({ type: "hello", token: token(), topics: ["leads.*", "appointments.*", "sms.*"] }));
  sock.onmessage = (m) => {
    let frame;
    try { frame = JSON.parse(m.data); } catch { return; }
    if (frame.type === "welcome") {
      wsDelay = 500;
      setConn("live", `live · org ${frame.org} · user ${frame.user}`);
      if (welcomedBefore) { loadLeads(); loadTemplates(); loadList("appointments"); loadList("sms"); } // events may have been missed
      welcomedBefore = true;
    } else if (frame.type === "event") onEvent(frame);
  };
  sock.onclose = (e) => {
    if (sock !== ws) return; // replaced on purpose
    ws = null;
    if (e.code === 4401) {
      setConn("error", "token rejected");
      return void message("error", `The live feed refused the token: ${e.reason || "not valid"}. Paste a new one.`);
    }
    const wait = Math.round(wsDelay * (0.5 + Math.random()));
    wsDelay = Math.min(wsDelay * 2, 30000);
    const why = e.code === 1013 ? "too slow, the list will be reloaded" : `code ${e.code}${e.reason ? ": " + e.reason : ""}`;
    setConn("down", `disconnected (${why}); retrying in ${Math.ceil(wait / 1000)} s`);
    wsTimer = setTimeout(connect, wait);
  };
}

// Wiring ------------------------------------------------------------------------
function start() { // (re)start with the stored token
  welcomedBefore = false;
  state.leads.clear(); state.order = []; state.rows.clear(); state.selected.clear(); state.cursor = null;
  state.optedOut.clear(); state.templates = []; state.lead = null;
  renderAll(); openLead(null); renderTemplates(); connect(); loadLeads(); loadTemplates();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const s of STATUSES) $("#bulk-status").append(el("option", { value: s, textContent: s }));
  $("#token").value = token();
  $("#token-form").addEventListener("submit", (e) => { e.preventDefault(); localStorage.setItem("crm.jwt", $("#token").value.trim()); start(); });
  $("#forget").addEventListener("click", () => { localStorage.removeItem("crm.jwt"); $("#token").value = ""; start(); });
  $("#create").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target, data = new FormData(form);
    const body = { name: data.get("name").trim(), phone: data.get("phone").trim() };
    if (data.get("email").trim()) body.email = data.get("email").trim();
    const answer = await command(`Create lead ${body.name}`, "/api/leads", body, form.querySelector("button"));
    if (answer && answer.lead) { form.reset(); addLead(answer.lead); }
  });
  $("#bulk-apply").addEventListener("click", (e) => changeStatus([...state.selected], $("#bulk-status").value, e.target));
  $("#bulk-clear").addEventListener("click", () => { state.selected.clear(); renderAll(); });
  $("#select-all").addEventListener("change", (e) => { state.selected = new Set(e.target.checked ? state.order : []); renderAll(); });
  $("#lead-close").addEventListener("click", () => openLead(null));
  $("#book").addEventListener("submit", (e) => { e.preventDefault(); book(e.target); });
  $("#send-sms").addEventListener("submit", (e) => { e.preventDefault(); sendSms(e.target); });
  $("#send-sms").elements.templateId.addEventListener("change", syncSmsForm);
  $("#send-sms").elements.message.addEventListener("input", syncSmsForm);
  $("#new-template").addEventListener("submit", (e) => { e.preventDefault(); createTemplate(e.target); });
  $("#more").addEventListener("click", () => loadLeads(true));
  $("#reload").addEventListener("click", () => loadLeads());
  start();
});
