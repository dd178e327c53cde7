// Wiring: sign-in, the data the page shows, presses and events through the SDK's client (crm-buttons, served
// at /sdk/: its HTTP core, offline queue, live feed and SMS breaker are the console's, as any front end's).
import { Refusal, SmsPaused, Unauthorized, createClient, newKey, request } from "/sdk/index.js";
import { Appointments } from "./appointments.js";
import { Campaigns } from "./campaigns.js";
import { Deals } from "./deals.js";
import { Documents } from "./documents.js";
import { adoptOldPresses } from "./migrate.js";
import { segments } from "./sms.js";
import * as table from "./table.js";
import * as view from "./view.js";
import { $ } from "./view.js";
import { outcome, queuedWords } from "./words.js";

const CONFIG = { smsBreakerThreshold: 3, smsBreakerCooldownMs: 30000, ...(globalThis.CRM_CONSOLE_CONFIG || {}) };
const TOKEN_KEY = "crm.token";
const TOPICS = ["leads.*", "appointments.*", "sms.*", "proposals.*", "payments.*", "contracts.*", "campaigns.*", "documents.*"];
const S = { token: null, principal: null, leads: new Map(), statuses: [], moves: {}, filter: "", selected: new Set(),
  open: null, sms: [], history: [], templates: [], optedOut: new Set(), entries: [],
  client: null, loading: null, buffered: null, notices: new Map(), devLogin: null };
const debug = (globalThis.crmConsole = { applied: [], welcomes: [], state: S }); // for tests: what was applied, in order
// The sections with buttons of their own (appointments.js, deals.js, documents.js, campaigns.js): they press through the one
// client, and read, by the names of the server's table (table.js).
const ctx = { press: (...args) => press(...args), read, client: () => S.client, openId: () => S.open, nameOf: (id) => nameOf(id),
  entries: () => S.entries, token: () => S.token, expired: (why) => expired(why), statuses: () => S.statuses, leadName: (id) => S.leads.get(id)?.name,
  selected: () => [...S.selected].filter((id) => S.leads.has(id)), openLead: (id) => { showView("leads"); openLead(id); } };
const appointments = new Appointments(ctx), deals = new Deals(ctx), documents = new Documents(ctx), campaigns = new Campaigns(ctx);

// Sign-in ----------------------------------------------------------------------------
function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const c = JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    return typeof c.org === "string" && typeof c.sub === "string" ? c : null;
  } catch { return null; }
}

function signIn(token) {
  const c = claims(token);
  if (!c) return signOut("That is not an access token. Paste the whole token, three parts separated by dots.");
  if (c.exp && c.exp * 1000 <= Date.now()) return signOut("This token has expired. Sign in again with a new one.");
  localStorage.setItem(TOKEN_KEY, token);
  start(token, c);
}

function signOut(message, forget = true) {
  if (forget) localStorage.removeItem(TOKEN_KEY);
  if (S.client) S.client.close(); // what it keeps stays in IndexedDB, sent after the next sign-in
  clearTimeout(S.expiry);
  Object.assign(S, { token: null, principal: null, client: null, open: null, entries: [] });
  S.leads.clear(); S.selected.clear(); campaigns.reset();
  view.showConnection("offline");
  view.showPending(0);
  $("#notices").replaceChildren();
  view.showSignIn(message, S.devLogin);
}

async function start(token, c) {
  Object.assign(S, { token, principal: `${c.org}\n${c.sub}`, loaded: false });
  view.showSignedIn({ org: c.org, user: c.sub });
  showView();
  if (c.exp) S.expiry = setTimeout(() => signOut("Your sign-in has expired. Sign in again."), Math.min(c.exp * 1000 - Date.now(), 2 ** 31 - 1));
  restoreCache();
  const client = (S.client = createClient({ url: location.origin, token,
    build: async (name, fields) => { await table.ready(); return table.press(name, fields); }, // the table this page keeps
    breaker: { threshold: CONFIG.smsBreakerThreshold, cooldownMs: CONFIG.smsBreakerCooldownMs } }));
  const on = (name, fn) => client.on(name, (detail) => { if (S.client === client) fn(detail); }); // a closed client is silent
  on("change", queueChanged);
  on("outcome", ({ entry, status, body }) => answered(entry, { status, body }));
  on("queued", ({ entry, why, first }) => first && queued(entry, why)); // said once; the client keeps trying
  on("unauthorized", ({ message }) => expired(message));
  on("state", (state) => view.showConnection(state)); // the client sends what waits when the feed is live again
  on("breaker", showBreaker);
  adoptOldPresses(client, S.principal).catch(() => {}); // tried again at the next sign-in
  client.subscribe(TOPICS, (f) => (S.loading ? S.buffered.push(f) : applyEvent(f)), { keep: false, onReload: loadAll,
    onWelcome: (w) => debug.welcomes.push({ recovered: w.recovered, position: w.position }) }); // keep: false: each page start reloads
  // The first load comes with the websocket's welcome (nothing between the two is missed); without one, load anyway.
  setTimeout(() => { if (S.token === token && !S.loaded) loadAll(); }, 2500);
}

function expired(why) { signOut(`Your sign-in is no longer accepted (${why}). Sign in again.`); }

// Data ---------------------------------------------------------------------------------
const cacheKey = () => `crm.cache.${S.principal}`;

function restoreCache() { // offline, the page still shows what it last knew
  try {
    const cached = JSON.parse(localStorage.getItem(cacheKey()) || "null");
    if (!cached) return;
    setStatuses(cached.statuses, cached.moves);
    for (const l of cached.leads) S.leads.set(l.id, l);
    S.templates = cached.templates || [];
    view.renderTemplates(S.templates);
    render();
  } catch { /* a broken cache is no cache */ }
}

function saveCache() {
  try {
    localStorage.setItem(cacheKey(), JSON.stringify({ statuses: S.statuses, moves: S.moves, templates: S.templates,
      leads: [...S.leads.values()].slice(0, 2000) }));
  } catch { /* full: never mind */ }
}

function setStatuses(statuses, moves) {
  S.statuses = statuses; S.moves = moves;
  view.renderStatusChoices(statuses);
  $("#status-filter").value = S.filter;
}

async function loadAll() {
  const token = S.token, client = S.client;
  S.loading = true; S.buffered = S.buffered || [];
  try {
    table.load(token, () => S.token === token); // at each (re)load: a release may bring another table (else a 304)
    await table.ready(); // the kept one at once, if any
    const statuses = await client.get(table.path("lead_statuses"));
    if (statuses.status === 200) setStatuses(statuses.body.statuses, statuses.body.moves);
    const leads = new Map();
    let cursor = null;
    do {
      const page = await client.get(table.path("list_leads", { limit: 200, cursor }));
      if (page.status !== 200) throw new Error(`leads: ${page.status}`);
      for (const l of page.body.leads) leads.set(l.id, l);
      cursor = page.body.next_cursor;
    } while (cursor && leads.size < 5000);
    if (S.token !== token) return;
    S.leads = leads;
    const templates = await client.get(table.path("list_templates"));
    if (templates.status === 200) { S.templates = templates.body.templates; view.renderTemplates(S.templates); }
    S.loaded = true;
    saveCache();
    S.loadRetryMs = 0;
    if (S.loadNotice) { S.loadNotice.remove(); S.loadNotice = null; }
  } catch (err) {
    if (err instanceof Unauthorized) return expired(err.message);
    if (S.token === token) { // never give up on the data: try again with backoff (a busy server answers 503 now and then)
      if (!S.loaded && !S.loadNotice) S.loadNotice = view.notify("error", "The leads could not be loaded: the server cannot be reached. What is shown is what this browser last saw; trying again.");
      S.loadRetryMs = Math.min(30000, (S.loadRetryMs || 500) * 2);
      setTimeout(() => { if (S.token === token && !S.loading) loadAll(); }, 500 + Math.random() * S.loadRetryMs);
    }
  } finally {
    if (S.token === token) {
      S.loading = false;
      const buffered = S.buffered || []; S.buffered = null;
      for (const f of buffered) applyEvent(f);
      render();
      if (S.open) loadPanel();
      if (campaigns.shown()) campaigns.load();
    }
  }
}

/** The body (200) of the read `name` (a read of the server's table, table.js), else null; a refused token signs out. */
async function read(name, fields) {
  const client = S.client;
  if (!client) return null;
  try {
    await table.ready();
    const res = await client.get(table.path(name, fields));
    return res.status === 200 ? res.body : null;
  } catch (err) { if (err instanceof Unauthorized && S.client === client) expired(err.message); return null; }
}

async function loadPanel(which = ["appointments", "sms", "history", "deals", "documents"]) {
  const id = S.open;
  const reads = { sms: "sms_history", history: "lead_history" };
  await Promise.all(which.map(async (kind) => {
    if (kind === "appointments") return appointments.load(id);
    if (kind === "deals") return deals.load(id);
    if (kind === "documents") return documents.load(id);
    const body = await read(reads[kind], { leadId: id });
    if (S.open !== id || !body) return;
    if (kind === "sms") { S.sms = body.sms_messages; view.renderSmsHistory(S.sms); }
    if (kind === "history") { S.history = body.history; view.renderHistory(S.history); }
  }));
}

const panelReloads = {};
function reloadPanelSoon(kind) { // events come in bursts (sent, then delivered): one read for a burst
  clearTimeout(panelReloads[kind]);
  panelReloads[kind] = setTimeout(() => { if (S.open) loadPanel([kind]); }, 150);
}

function setLeadStatus(id, status, at) {
  const lead = S.leads.get(id);
  if (!lead) return false;
  if (at && lead.status_changed_at && new Date(at) < new Date(lead.status_changed_at)) return false; // older news
  Object.assign(lead, { status, status_changed_at: at || lead.status_changed_at, flash: true });
  setTimeout(() => { lead.flash = false; }, 1500);
  return true;
}

function applyEvent(frame) {
  const d = frame.data || {};
  debug.applied.push({ id: frame.id, topic: frame.topic, leadId: d.leadId, position: frame.position });
  if (debug.applied.length > 5000) debug.applied.splice(0, 2500);
  if (frame.topic === "leads.created" && !S.leads.has(d.leadId)) {
    S.leads.set(d.leadId, { id: d.leadId, name: d.name, phone: d.phone, email: d.email, status: d.status,
      created_at: d.createdAt, status_changed_at: d.createdAt });
  } else if (frame.topic === "leads.status_changed") {
    if (!setLeadStatus(d.leadId, d.to, d.changedAt) && !S.leads.has(d.leadId)) fetchLead(d.leadId);
    if (d.leadId === S.open) reloadPanelSoon("history");
  } else if (frame.topic.startsWith("appointments.") && d.leadId === S.open) reloadPanelSoon("appointments");
  else if (/^(proposals|payments|contracts)\./.test(frame.topic) && d.leadId === S.open) deals.reloadSoon();
  else if (frame.topic.startsWith("documents.") && d.leadId === S.open) documents.reloadSoon();
  else if (frame.topic.startsWith("campaigns.")) campaigns.applyEvent(frame.topic, d);
  else if (frame.topic === "sms.opt_out_changed") {
    if (d.optedOut) S.optedOut.add(d.leadId); else S.optedOut.delete(d.leadId);
  } else if (frame.topic.startsWith("sms.") && d.leadId === S.open) reloadPanelSoon("sms");
  renderSoon();
}

async function fetchLead(id) {
  const client = S.client;
  if (!client) return;
  try {
    const res = await client.get(table.path("get_lead", { leadId: id }));
    if (res.status === 200) { S.leads.set(id, res.body.lead); renderSoon(); }
  } catch { /* the next reload brings it */ }
}

// Rendering ----------------------------------------------------------------------------
let renderTimer = null;
function renderSoon() { if (!renderTimer) renderTimer = requestAnimationFrame(() => { renderTimer = null; render(); }); }

function render() {
  const pending = new Map(), projected = new Map();
  for (const e of S.entries) for (const id of e.leadIds || []) {
    pending.set(id, (pending.get(id) || 0) + 1);
    if (e.button === "update_lead_status") projected.set(id, e.body.status);
  }
  const leads = [...S.leads.values()];
  view.renderRows({ leads, filter: S.filter, moves: S.moves, pending, projected, selected: S.selected, open: S.open },
    { move, select, open: openLead, text: (id) => { openLead(id); $("#sms-message").focus(); } });
  renderBulk();
  const lead = S.leads.get(S.open);
  view.renderPanel(lead, lead && S.optedOut.has(lead.id));
}

function bulkPlan() {
  const target = $("#bulk-status").value, plan = { selected: 0, change: 0, blocked: [] };
  for (const id of S.selected) {
    const lead = S.leads.get(id);
    if (!lead) continue;
    plan.selected++;
    if (lead.status === target) continue;
    if ((S.moves[lead.status] || []).includes(target)) plan.change++;
    else plan.blocked.push([lead, S.moves[lead.status] && S.moves[lead.status].length ? `is ${lead.status}` : `${lead.status} is final`]);
  }
  return plan;
}

function renderBulk() { view.renderBulk(bulkPlan(), $("#bulk-status").value); }

function showBreaker(state) {
  view.renderBreaker(state, Math.ceil(S.client.breaker.remainingMs() / 1000));
  if (state === "open") view.notify("error", `The SMS provider is down. Send SMS is paused for ${Math.ceil(CONFIG.smsBreakerCooldownMs / 1000)} s; the messages already accepted are sent when it is back.`);
}

// Presses ------------------------------------------------------------------------------
const nameOf = (id) => (S.leads.get(id) ? S.leads.get(id).name : "this lead");

/** A press of the button `button` (its name in the server's table): its request made from `fields`, kept, sent.
 * Its notice is keyed by its Idempotency-Key; what it comes to arrives by the client's events (answered, queued). */
function press(button, fields, label, leadIds, extra = {}) {
  const key = newKey(), handle = view.notify("pending", `${label}…`), client = S.client;
  S.notices.set(key, handle);
  client.press(button, fields, { key, label, leadIds, ...extra }).catch((err) => {
    if (err instanceof Refusal || S.client !== client) return; // a refusal is an outcome (answered), a refused token too (expired)
    S.notices.delete(key);
    handle.update("error", err instanceof SmsPaused
      ? `Not sent: the SMS provider is down. Try again in ${Math.ceil(err.remainingMs / 1000)} s.` : `${label}: not sent (${err.message}).`);
  });
}

function move(lead, to) {
  const waiting = S.entries.filter((e) => e.button === "update_lead_status" && e.body.leadId === lead.id);
  const from = waiting.length ? waiting[waiting.length - 1].body.status : lead.status; // what the agent saw
  press("update_lead_status", { leadId: lead.id, status: to }, `Moving ${lead.name} to ${to}`, [lead.id],
    { names: { [lead.id]: lead.name }, from });
}

function select(id, on) { if (on) S.selected.add(id); else S.selected.delete(id); render(); }

function bulkApply() {
  const ids = [...S.selected].filter((id) => S.leads.has(id)), to = $("#bulk-status").value;
  if (!ids.length) return;
  const names = Object.fromEntries(ids.map((id) => [id, nameOf(id)]));
  press("bulk_update_lead_status", { leadIds: ids, status: to }, `Moving ${ids.length} lead${ids.length > 1 ? "s" : ""} to ${to}`, ids, { names });
}

function sendSms(e) {
  e.preventDefault();
  const leadId = S.open, templateId = $("#sms-template").value, text = $("#sms-message").value.trim();
  if (!leadId) return;
  if (!templateId && !text) return void view.notify("error", "Write a message, or choose a template, before sending.");
  if (!S.client.breaker.allows()) { // the client refuses it too (SmsPaused): said here, the message stays in the box
    return void view.notify("error", `Not sent: the SMS provider is down. Try again in ${Math.ceil(S.client.breaker.remainingMs() / 1000)} s.`);
  }
  const body = templateId ? { leadId, templateId } : { leadId, message: text };
  press("send_sms", body, `Texting ${nameOf(leadId)}`, [leadId]);
  $("#sms-message").value = ""; smsCount();
}

function createLead(e) {
  e.preventDefault();
  const f = new FormData(e.target), body = { name: f.get("name").trim(), phone: f.get("phone").trim() };
  if (f.get("email").trim()) body.email = f.get("email").trim();
  press("create_lead", body, `Creating ${body.name}`, []);
  e.target.reset();
}

function queueChanged(entries) {
  S.entries = [...entries];
  view.showPending(entries.length);
  render();
  if (S.open) { appointments.render(); deals.render(); documents.render(); }
  campaigns.render();
}

function queued(entry, why) {
  const handle = S.notices.get(entry.key) || view.notify("pending", "");
  S.notices.set(entry.key, handle);
  handle.update("pending", queuedWords(entry, why));
}

const MOVES_LEADS = new Set(["update_lead_status", "bulk_update_lead_status"]);

function answered(entry, answer) {
  const [kind, text, details] = outcome(entry, answer, (id) => (entry.names && entry.names[id]) || nameOf(id));
  const handle = S.notices.get(entry.key);
  S.notices.delete(entry.key);
  if (handle) handle.update(kind, text, details); else view.notify(kind, text, details);
  const b = answer.body || {};
  if (entry.button === "update_lead_status" && b.lead) setLeadStatus(b.lead.id, b.lead.status, b.lead.status_changed_at);
  if (entry.button === "bulk_update_lead_status" && answer.status === 200) {
    for (const l of b.leads || []) setLeadStatus(l.id, l.status, l.status_changed_at);
    S.selected.clear();
  }
  if (MOVES_LEADS.has(entry.button) && answer.status === 409) refreshLeads(entry.leadIds);
  if (entry.button === "create_lead" && b.lead) S.leads.set(b.lead.id, b.lead);
  deals.answered(entry, answer); documents.answered(entry, answer); campaigns.answered(entry, answer);
  if (entry.button === "send_sms" && table.problem(b.type) === "OptedOut") S.optedOut.add(entry.body.leadId); // the breaker: the client's
  if (entry.leadIds && entry.leadIds.includes(S.open)) loadPanel();
  render();
}

async function refreshLeads(ids) { for (const id of ids.slice(0, 20)) await fetchLead(id); }

function openLead(id) {
  S.open = id; S.sms = []; S.history = [];
  appointments.reset(); deals.reset(); documents.reset(); view.renderSmsHistory([]); view.renderHistory([]);
  render();
  if (id) loadPanel();
  if (id && innerWidth < 1000) $("#lead-panel").scrollIntoView({ block: "start" }); // under the table when narrow
}

/** Leads (the default) or Campaigns, as the address says (#campaigns): the header's links, back and forward. */
function showView(name = location.hash === "#campaigns" ? "campaigns" : "leads") {
  if (name === "leads" && location.hash === "#campaigns") history.pushState(null, "", "#leads");
  $("#app").dataset.view = name;
  $("#campaigns-view").hidden = name !== "campaigns";
  for (const link of document.querySelectorAll("#views a")) link.setAttribute("aria-current", link.dataset.view === name ? "page" : "false");
  if (name === "campaigns" && S.token) campaigns.show();
}

function smsCount() { const text = $("#sms-message").value; view.renderSmsCount(text, segments(text)); }

// Start --------------------------------------------------------------------------------
async function checkDevLogin() {
  try {
    const res = await request("GET", "/dev/login");
    S.devLogin = res.status === 200 ? res.body : null;
  } catch { S.devLogin = null; }
  if (!S.token) {
    $("#dev-sign-in").hidden = !S.devLogin;
    if (S.devLogin) $("#dev-sign-in").textContent = `Sign in as demo agent (${S.devLogin.user} · ${S.devLogin.org})`;
  }
}

async function devSignIn() {
  try {
    const res = await request("POST", "/dev/token");
    if (res.status === 200) return signIn(res.body.token);
    view.showSignIn("The demo sign-in is not available on this server.", null);
  } catch { view.showSignIn("The server cannot be reached: try again in a moment.", S.devLogin); }
}

document.addEventListener("DOMContentLoaded", () => {
  table.restore();
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {}); // the page opens offline too
  $("#sign-in-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#token-input").value.trim()); });
  $("#token-input").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("#sign-in-form").requestSubmit(); } });
  $("#dev-sign-in").addEventListener("click", devSignIn);
  $("#sign-out").addEventListener("click", () => signOut("You signed out."));
  $("#status-filter").addEventListener("change", (e) => { S.filter = e.target.value; render(); });
  $("#bulk-status").addEventListener("change", renderBulk);
  $("#bulk-apply").addEventListener("click", bulkApply);
  $("#select-all").addEventListener("change", (e) => {
    for (const l of S.leads.values()) if (!S.filter || l.status === S.filter) { if (e.target.checked) S.selected.add(l.id); else S.selected.delete(l.id); }
    render();
  });
  $("#lead-close").addEventListener("click", () => openLead(null));
  $("#sms-form").addEventListener("submit", sendSms);
  $("#sms-message").addEventListener("input", smsCount);
  $("#sms-template").addEventListener("change", () => { $("#sms-message").disabled = !!$("#sms-template").value; });
  $("#create-lead").addEventListener("submit", createLead);
  appointments.bind(); deals.bind(); documents.bind(); campaigns.bind();
  addEventListener("hashchange", () => showView());
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && S.open) openLead(null); });
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) signIn(token); else view.showSignIn(null, null);
  checkDevLogin();
});
