// CRM buttons console: plain JS, no build step, no dependencies.
"use strict";
const STATUSES = ["new", "contacted", "qualified", "proposal", "won", "lost"];
const $ = (selector) => document.querySelector(selector);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const state = { leads: new Map(), order: [], rows: new Map(), cursor: null, selected: new Set(), busy: new Map() };
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

// One button press: a command with an Idempotency-Key. The key is reused when the same press is
// repeated while its outcome is unknown (network error, 5xx, still queued), dropped once it is known.
async function command(label, path, body, button, leadIds = []) {
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
      res = await poll(res.location || `/api/commands/leads/${id}`);
      if (!res) return note.update("error", `${label}: still queued after 10 minutes; it will take effect, reload later.`), null;
    }
    const [text, details] = describe(res);
    if (res.status >= 500) return note.update("error", `${label} failed: ${text}. Press again to retry (same key).`, details), null;
    retryKeys.delete(signature);
    if (res.status >= 400) return note.update("error", `${label} refused: ${text}`, details), null;
    note.update("ok", `${label}: done${res.replayed ? " (replayed: it had already been done)" : ""}`);
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
  return el("tr", { id: "lead-" + lead.id },
    el("td", {}, box), el("td", { textContent: lead.name }), el("td", { class: "nowrap", textContent: lead.phone }),
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
  const answer = await command(label, "/api/leads/update-status", body, button, ids);
  if (!answer) return;
  for (const lead of answer.leads || [answer.lead]) setStatus(lead.id, lead.status, lead.status_changed_at);
  if (bulk) { state.selected.clear(); renderAll(); }
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
  sock.onopen = () => sock.send(JSON.stringify({ type: "hello", token: token(), topics: ["leads.*"] }));
  sock.onmessage = (m) => {
    let frame;
    try { frame = JSON.parse(m.data); } catch { return; }
    if (frame.type === "welcome") {
      wsDelay = 500;
      setConn("live", `live · org ${frame.org} · user ${frame.user}`);
      if (welcomedBefore) loadLeads(); // events may have been missed while disconnected
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
  renderAll(); connect(); loadLeads();
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
  $("#more").addEventListener("click", () => loadLeads(true));
  $("#reload").addEventListener("click", () => loadLeads());
  start();
});
