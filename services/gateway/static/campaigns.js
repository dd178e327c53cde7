// The Campaigns view: a template texted to many leads, once each, over hours (shared/contracts/campaigns.py).
//
//   create ─► draft ─start─► running ⇄ paused ─► completed      draft / running / paused ─cancel─► cancelled
//
// The list and a campaign's per-lead outcomes are read by REST; the campaigns.* events keep them
// current (campaigns.progress: the counts, a few times a second). Every press goes through
// main.js's press (one key per press, kept in IndexedDB, the offline queue).
import { $, el, notify, refill, when } from "./view.js";
import { campaignProgress, targetWords } from "./words.js";

const MOVES = { draft: ["start", "cancel"], running: ["pause", "cancel"], paused: ["resume", "cancel"], completed: [], cancelled: [] };
// Each move's control (text, style, what its notice says) and its button in the server's table.
const CONTROLS = { start: ["Start", "primary", "Starting", "start_campaign"], pause: ["Pause", "", "Pausing", "pause_campaign"],
  resume: ["Resume", "primary", "Resuming", "resume_campaign"], cancel: ["Cancel", "", "Cancelling", "cancel_campaign"] };
const PRESSES = new Set(["create_campaign", ...Object.values(CONTROLS).map((c) => c[3])]);
const PAGE = 50;
const hhmm = (t) => String(t || "").slice(0, 5);
const at = (iso) => (iso ? Date.parse(iso) : 0);
/** The server's order: newest first by (created_at, id); > 0 when `a` comes before `b`. */
const newer = (a, b) => at(a.created_at) - at(b.created_at) || (a.id > b.id ? 1 : a.id < b.id ? -1 : 0);

export class Campaigns {
  /** ctx: {press(button, fields, label, leadIds, extra), read(name, fields), entries(), selected(), statuses(), leadName(id), openLead(id)} */
  constructor(ctx) {
    this.ctx = ctx; this.items = new Map(); this.templates = []; this.detail = null; this.state = "unread";
    this.eventAt = new Map(); this.timer = null; this.detailTimer = null; this.formKey = ""; this.next = null;
    this.reading = Promise.resolve(); this.session = 0;
  }

  bind() {
    $("#campaign-form").addEventListener("submit", (e) => this.create(e));
    $("#campaign-template").addEventListener("change", () => this.renderPreview());
    $("#campaigns-more").addEventListener("click", () => this.loadMore());
  }

  shown() { return !$("#campaigns-view").hidden; }

  /** The view is opened: what it shows now, then read again (the selection may have changed meanwhile). */
  show() { this.renderForm(true); this.render(); this.load(); }

  reset() {
    this.items.clear(); this.eventAt.clear(); this.templates = []; this.detail = null; this.state = "unread"; this.formKey = "";
    this.next = null; this.session += 1; // an answer still on its way is for the organisation before
  }

  /** One list read at a time (a reload and "Older campaigns" never cross); none of an earlier session applied. */
  serially(read) {
    const session = this.session;
    this.reading = this.reading.then(() => (session === this.session ? read(() => session === this.session) : null))
      .catch(() => null);
    return this.reading;
  }

  /** Read the campaigns shown again, newest first: as many as are shown (at least PAGE, at most 200 read;
   * older ones beyond those are kept as they were). */
  load() {
    return this.serially(async (current) => {
      const started = Date.now(), limit = Math.min(200, Math.max(PAGE, this.items.size));
      const [list, templates] = await Promise.all([this.ctx.read("list_campaigns", { limit }), this.ctx.read("list_templates")]);
      if (!current()) return;
      if (templates) this.templates = templates.templates;
      if (list) this.refresh(list, started);
      else if (this.state !== "read") this.state = "failed";
      this.renderForm(true);
      this.render();
      if (this.detail) this.loadDetail();
    });
  }

  refresh(list, started) {
    const fresh = new Map(list.campaigns.map((c) => [c.id, c]));
    let next = list.next_after;
    if (next && this.items.size > list.campaigns.length) { // more were shown than one read takes: keep the older ones
      const last = list.campaigns[list.campaigns.length - 1], older = [...this.items.values()].filter((c) => newer(last, c) > 0);
      for (const c of older) fresh.set(c.id, c);
      if (older.length) next = this.next;
    }
    for (const [id, c] of this.items) if ((this.eventAt.get(id) || 0) > started) fresh.set(id, c); // newer than the read
    this.items = fresh; this.next = next; this.state = "read";
  }

  /** The next page of older campaigns, after the ones shown. */
  loadMore() {
    return this.serially(async (current) => {
      if (!this.next) return;
      const list = await this.ctx.read("list_campaigns", { limit: PAGE, after: this.next });
      if (!current()) return;
      if (!list) return void notify("error", "The older campaigns cannot be read now (no connection?): try again when it is back.");
      for (const c of list.campaigns) if (!this.items.has(c.id)) this.items.set(c.id, c);
      this.next = list.next_after;
      this.render();
    });
  }

  reloadSoon() { clearTimeout(this.timer); this.timer = setTimeout(() => this.load(), 200); }

  /** data of a campaigns.* event: {campaignId, status, counts, at, by} */
  applyEvent(topic, d) {
    const c = this.items.get(d.campaignId);
    if (!c) return void ((this.shown() || this.state !== "unread") && this.reloadSoon()); // made elsewhere: read it
    if (c.eventAt && at(d.at) < c.eventAt) return; // older news
    Object.assign(c, { status: d.status, counts: d.counts, eventAt: at(d.at) });
    if (topic === "campaigns.started") c.started_at = c.started_at || d.at;
    if (topic === "campaigns.completed" || topic === "campaigns.cancelled") c.finished_at = c.finished_at || d.at;
    this.eventAt.set(d.campaignId, Date.now());
    this.renderSoon();
    if (this.detail && this.detail.id === d.campaignId) this.detailSoon();
  }

  /** After a press's answer: the campaign as it answered (unless an event told newer news meanwhile). */
  answered(entry, answer) {
    const made = answer.body && answer.body.campaign;
    if (!PRESSES.has(entry.button) || !made || answer.status >= 300) return;
    if ((this.eventAt.get(made.id) || 0) > Date.parse(entry.createdAt)) return;
    this.items.set(made.id, { ...this.items.get(made.id), ...made });
    this.eventAt.set(made.id, Date.now());
    this.render();
  }

  renderSoon() { if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = null; this.render(); }); }

  // The form ---------------------------------------------------------------------
  /** The template and audience choices; redone only when they change (an open select is left alone). */
  renderForm(force = false) {
    const selected = this.ctx.selected().length, statuses = this.ctx.statuses();
    const key = JSON.stringify([selected, statuses, this.templates.map((t) => [t.id, t.name])]);
    if (key === this.formKey && !force) return;
    this.formKey = key;
    const template = $("#campaign-template"), chosenTemplate = template.value;
    template.replaceChildren(el("option", { value: "", textContent: this.templates.length ? "choose a template" : "no template yet" }),
      ...this.templates.map((t) => el("option", { value: t.id, textContent: t.name })));
    template.value = this.templates.some((t) => t.id === chosenTemplate) ? chosenTemplate : "";
    const audience = $("#campaign-status-filter"), chosen = audience.value;
    audience.replaceChildren(el("option", { value: "", textContent: selected
      ? `the ${selected} lead${selected === 1 ? "" : "s"} selected in Leads` : "the leads selected in Leads (none yet)" }),
    ...statuses.map((s) => el("option", { value: s, textContent: `every lead that is ${s} when it starts` })));
    audience.value = selected ? "" : statuses.includes(chosen) ? chosen : "";
    this.renderPreview();
  }

  renderPreview() {
    const t = this.templates.find((x) => x.id === $("#campaign-template").value);
    $("#campaign-preview").textContent = t ? `“${t.body}”` : "";
  }

  create(e) {
    e.preventDefault();
    const name = $("#campaign-name").value.trim(), templateId = $("#campaign-template").value;
    const status = $("#campaign-status-filter").value, leadIds = this.ctx.selected();
    const sendFrom = hhmm($("#campaign-from").value) || "08:00", sendUntil = hhmm($("#campaign-until").value) || "21:00";
    if (!name) return void notify("error", "Give the campaign a name.");
    if (!templateId) return void notify("error", "Choose the template the campaign sends.");
    if (!status && !leadIds.length) {
      return void notify("error", "The campaign has no audience: select leads in Leads (their checkboxes), or choose a status.");
    }
    if (sendFrom >= sendUntil) return void notify("error", "“Send from” must be earlier than “until” (both in each lead's local time).");
    const body = { name, templateId, ...(status ? { status } : { leadIds }), sendFrom, sendUntil };
    this.ctx.press("create_campaign", body, `Creating the campaign "${name}"`, [], { title: name });
    $("#campaign-name").value = "";
  }

  move(c, how) {
    this.ctx.press(CONTROLS[how][3], { campaignId: c.id }, `${CONTROLS[how][2]} "${c.name}"`, [],
      { campaignId: c.id, title: c.name });
  }

  // The list ---------------------------------------------------------------------
  render() {
    if (!this.shown()) return;
    const entries = this.ctx.entries(), busy = new Set(entries.map((e) => e.campaignId).filter(Boolean));
    const waiting = entries.filter((e) => e.button === "create_campaign").map((e) => el("li", { class: "campaign", dataset: { pending: "1" } },
      el("div", { class: "top" }, el("strong", { class: "body", textContent: e.title }), el("span", { class: "pending-mark", textContent: "pending" })),
      el("div", { class: "meta", textContent: "waits to be created: sent by itself when the connection returns" })));
    const list = [...this.items.values()].sort((a, b) => newer(b, a));
    const node = $("#campaigns");
    node.dataset.empty = { unread: "Loading the campaigns…", read: "No campaign yet: create one with the form.",
      failed: "The campaigns cannot be read now (no connection?): they appear when it is back." }[this.state];
    refill(node, [...waiting, ...list.map((c) => this.row(c, busy.has(c.id)))]);
    $("#campaigns-more").hidden = !this.next;
  }

  row(c, pending) {
    const data = { campaignId: c.id }, open = this.detail && this.detail.id === c.id;
    return el("li", { testid: "campaign-row", class: "campaign", dataset: { campaignId: c.id, status: c.status, pending: pending ? "1" : "0" } },
      el("div", { class: "top" }, el("strong", { class: "body", textContent: c.name }),
        el("span", { class: "pill " + c.status, textContent: c.status }),
        pending ? el("span", { class: "pending-mark", textContent: "pending" }) : null),
      el("div", { class: "meta", textContent: [this.templateName(c.template_id), this.audience(c),
        `${hhmm(c.send_from)}–${hhmm(c.send_until)} local time`, this.dates(c)].filter(Boolean).join(" · ") }),
      this.progress(c),
      el("div", { class: "line actions" },
        ...MOVES[c.status].map((how) => el("button", { type: "button", class: `small ${CONTROLS[how][1]}`, testid: `campaign-${how}`,
          dataset: data, textContent: CONTROLS[how][0], disabled: pending, "aria-label": `${CONTROLS[how][0]} ${c.name}`,
          onclick: () => this.move(c, how) })),
        el("span", { class: "spacer" }),
        el("button", { type: "button", class: "small quiet", testid: "campaign-details", dataset: data, textContent: open ? "Hide leads" : "Show leads",
          "aria-expanded": String(!!open), "aria-controls": `targets-${c.id}`, "aria-label": `the leads of ${c.name}, one by one`,
          onclick: () => this.toggle(c) })),
      open ? this.targets(c) : null);
  }

  progress(c) {
    const k = c.counts, done = k.sent + k.skipped + k.failed, words = campaignProgress(c);
    const seg = (state, n) => { const s = el("span", { class: `seg ${state}` }); s.style.width = `${k.total ? (100 * n) / k.total : 0}%`; return s; };
    return el("div", { class: "progress" },
      el("div", { class: "bar", role: "progressbar", testid: "campaign-progress", dataset: { campaignId: c.id, sent: String(k.sent), total: String(k.total) },
        "aria-label": `progress of ${c.name}`, "aria-valuemin": "0", "aria-valuemax": String(Math.max(k.total, 1)),
        "aria-valuenow": String(done), "aria-valuetext": words }, seg("sent", k.sent), seg("skipped", k.skipped), seg("failed", k.failed)),
      el("div", { class: "meta counts", textContent: words }));
  }

  templateName(id) { const t = this.templates.find((x) => x.id === id); return t ? `“${t.name}”` : "a template"; }

  audience(c) {
    const a = c.audience || {};
    if (a.status) return `every lead that is ${a.status}${c.status === "draft" ? " when it starts" : ""}`;
    const n = (a.leadIds || []).length;
    return `${n} chosen lead${n === 1 ? "" : "s"}`;
  }

  dates(c) {
    if (c.finished_at) return `${c.status} ${when(c.finished_at)}`;
    return c.started_at ? `started ${when(c.started_at)}` : `created ${when(c.created_at)}`;
  }

  // Per-lead outcomes (paged) ----------------------------------------------------
  toggle(c) {
    this.detail = this.detail && this.detail.id === c.id ? null : { id: c.id, targets: [], next: null, read: false };
    this.render();
    if (this.detail) this.loadDetail();
  }

  detailSoon() { // progress comes twice a second: at most one read at a time, the last news read after it
    if (!this.detailTimer) this.detailTimer = setTimeout(() => { this.detailTimer = null; this.loadDetail(); }, 300);
  }

  /** Read the pages shown again (`more`: the next page after them). */
  async loadDetail(more = false) {
    const d = this.detail;
    if (!d) return;
    if (d.busy) { d.again = d.again || !more; return; }
    d.busy = true;
    const limit = more ? PAGE : Math.min(1000, Math.max(PAGE, d.targets.length));
    const body = await this.ctx.read("get_campaign", { campaignId: d.id, limit, after: more && d.next ? d.next : null });
    d.busy = false;
    if (this.detail !== d) return;
    if (body) Object.assign(d, { targets: more ? [...d.targets, ...body.targets] : body.targets, next: body.next_after, read: true });
    this.render();
    if (d.again) { d.again = false; this.loadDetail(); }
  }

  targets(c) {
    const d = this.detail;
    const empty = !d.read ? "Reading…" : c.status === "draft" ? "Not started: the leads are counted when it starts." : "No lead.";
    return el("div", { class: "targets", id: `targets-${c.id}` },
      el("ul", { class: `items${d.targets.length ? "" : " empty-list"}`, "aria-label": `the leads of ${c.name}`, dataset: { empty } }, ...d.targets.map((t) => this.target(t))),
      d.next ? el("button", { type: "button", class: "small", testid: "campaign-targets-more", textContent: "More leads",
        onclick: () => this.loadDetail(true) }) : null);
  }

  target(t) {
    const name = this.ctx.leadName(t.lead_id);
    return el("li", { testid: "campaign-target", dataset: { leadId: t.lead_id, state: t.state } },
      el("div", { class: "top" },
        name ? el("button", { type: "button", class: "link", textContent: name, "aria-label": `open ${name}`, onclick: () => this.ctx.openLead(t.lead_id) })
          : el("span", { textContent: `lead ${t.lead_id.slice(0, 8)}` }),
        el("span", { class: "pill " + t.state, textContent: t.state }),
        el("span", { class: "meta", textContent: targetWords(t) })));
  }
}
