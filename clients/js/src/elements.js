// The buttons as custom elements, for any page: `defineElements(client)` registers them.
//
//   <crm-booking-confirm appointment-id="…" send-sms></crm-booking-confirm>
//   <crm-send-sms lead-id="…" message="…"></crm-send-sms>            (or template-id="…")
//   <crm-lead-status lead-id="…" current-status="new"></crm-lead-status>   a select of the moves the rules allow
//   <crm-lead-bulk-status lead-ids="a,b,c" target-status="lost"></crm-lead-bulk-status>
//   <crm-press button="cancel_appointment" fields='{"appointmentId": "…"}'></crm-press>   any other button
//
// Each one renders its control in the light DOM (a <button>, or a <select>, and a status line), reflects
// its press in `state` (idle, pending, queued, done, refused) and dispatches crm-done, crm-queued and
// crm-refused (bubbling, composed) with the answer, the key or the refusal. A press queued offline is
// settled when it is replayed, even after a reload: the element finds its press among the kept ones.
import { SmsPaused } from "./breaker.js";
import { newKey } from "./http.js";
import { Refusal } from "./problems.js";

let client = null; // the one client of the page's elements (defineElements may give another after a sign-in)
const statuses = new WeakMap(); // client → Promise of GET /api/leads/statuses

const WORDS = {
  done: { confirm_booking: "Confirmed.", send_sms: "Sent.", update_lead_status: "Moved.", bulk_update_lead_status: "Moved." },
  queued: "Kept: it is sent when the connection is back.",
  pending: "Sending…",
};

/** A refusal in words: the server's detail (it names what is wrong), else its title. */
export function refusalWords(err) {
  if (err instanceof SmsPaused) return `Not sent: ${err.message}.`;
  if (err instanceof Refusal) {
    const p = err.problem || {};
    const fields = Array.isArray(p.errors) ? p.errors.slice(0, 3).map((e) => e && (e.detail || e.message)).filter((x) => typeof x === "string") : [];
    return [p.title, err.message !== p.title ? err.message : null, ...fields].filter(Boolean).join(": ").slice(0, 400) || `Refused (${err.status}).`;
  }
  return `Not sent: ${err && err.message ? err.message : "unexpected error"}.`;
}

class CrmElement extends HTMLElement {
  static button = null; // the button of the table this element presses
  static observedAttributes = [];

  constructor() {
    super();
    this.keys = new Set(); // the presses of this element not yet settled
    this.off = [];
  }

  connectedCallback() {
    if (!this.control) this.render();
    if (!this.hasAttribute("state")) this.setAttribute("state", "idle");
    if (client) this.attach(client);
  }

  disconnectedCallback() { for (const off of this.off.splice(0)) off(); }

  attributeChangedCallback() { if (this.control) this.update(); }

  attach(c) {
    for (const off of this.off.splice(0)) off();
    this.off.push(c.on("outcome", (o) => this.keys.has(o.entry.key) && this.settled(o)));
    c.pending().then((entries) => { // a press kept before a reload: shown queued, settled when replayed
      for (const e of entries) if (e.button === this.buttonName() && this.same(e.fields)) { this.keys.add(e.key); this.show("queued", WORDS.queued); }
    }, () => {});
    this.update();
  }

  render() {
    this.control = this.makeControl();
    this.control.part = "control";
    this.line = document.createElement("span");
    this.line.setAttribute("role", "status");
    this.line.part = "status";
    this.line.className = "crm-status";
    this.append(this.control, this.line);
  }

  /** A <button> that presses; <crm-lead-status> makes a <select>. */
  makeControl() {
    const button = document.createElement("button");
    button.type = "button";
    button.addEventListener("click", () => this.press());
    return button;
  }

  buttonName() { return this.constructor.button; }

  update() { this.control.textContent = this.getAttribute("label") || this.label(); }

  /** Whether a kept press (its fields) is this element's. */
  same(fields) { const body = this.safeBody(); return !!body && JSON.stringify(fields) === JSON.stringify(body); }

  safeBody() { try { return this.body(); } catch { return null; } }

  async press() {
    if (!client) return this.refused(new Refusal(0, { title: "Not ready", detail: "defineElements(client) was not called" }));
    let body;
    try { body = this.body(); } catch (err) { return this.refused(err); }
    this.show("pending", WORDS.pending);
    this.control.disabled = true;
    this.control.setAttribute("aria-busy", "true");
    try {
      const key = newKey(); // known before the press settles: its outcome event is this element's
      this.keys.add(key);
      const got = await client.press(this.buttonName(), body, { key });
      if (got.state === "queued") {
        this.keys.add(got.key);
        this.show("queued", WORDS.queued);
        this.fire("crm-queued", { key: got.key });
      } else {
        this.keys.delete(key);
        this.done(got.status, got.body);
      }
    } catch (err) {
      this.refused(err);
    } finally {
      this.control.disabled = false;
      this.control.removeAttribute("aria-busy");
    }
  }

  settled({ entry, status, body, refusal }) {
    this.keys.delete(entry.key);
    if (this.getAttribute("state") !== "queued") return; // answered in press() itself
    if (refusal) this.refused(refusal); else this.done(status, body);
  }

  done(status, body) {
    this.show("done", WORDS.done[this.buttonName()] || "Done.");
    this.fire("crm-done", { status, body });
  }

  refused(err) {
    this.show("refused", refusalWords(err));
    this.fire("crm-refused", { status: err.status ?? null, problem: err.problem ?? null, refusal: err });
  }

  show(state, text) { this.setAttribute("state", state); this.line.textContent = text; }

  fire(name, detail) { this.dispatchEvent(new CustomEvent(name, { bubbles: true, composed: true, detail })); }

  need(name) {
    const value = (this.getAttribute(name) || "").trim();
    if (!value) throw new TypeError(`the ${name} attribute is missing`);
    return value;
  }
}

export class BookingConfirmElement extends CrmElement {
  static button = "confirm_booking";
  static observedAttributes = ["appointment-id", "send-sms", "label"];
  label() { return "Confirm appointment"; }
  body() {
    const sms = this.getAttribute("send-sms");
    return { appointmentId: this.need("appointment-id"), sendSms: sms !== null && sms !== "false" };
  }
}

export class SendSmsElement extends CrmElement {
  static button = "send_sms";
  static observedAttributes = ["lead-id", "message", "template-id", "label"];
  label() { return "Send SMS"; }
  body() {
    const template = this.getAttribute("template-id"), message = this.getAttribute("message");
    if (!template && !message) throw new TypeError("a message or a template-id is needed");
    return template ? { leadId: this.need("lead-id"), templateId: template } : { leadId: this.need("lead-id"), message };
  }
}

export class LeadBulkStatusElement extends CrmElement {
  static button = "bulk_update_lead_status";
  static observedAttributes = ["lead-ids", "target-status", "label"];
  ids() { return (this.getAttribute("lead-ids") || "").split(",").map((s) => s.trim()).filter(Boolean); }
  label() {
    const n = this.ids().length;
    return `Move ${n} lead${n === 1 ? "" : "s"} to ${this.getAttribute("target-status") || "…"}`;
  }
  body() {
    const ids = this.ids();
    if (!ids.length) throw new TypeError("the lead-ids attribute is empty");
    return { leadIds: ids, status: this.need("target-status") };
  }
}

export class PressElement extends CrmElement { // any button of the table that is one control
  static observedAttributes = ["button", "fields", "label"];
  buttonName() { return this.getAttribute("button"); }
  label() { return (this.buttonName() || "press").replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase()); }
  body() {
    const fields = JSON.parse(this.getAttribute("fields") || "{}");
    if (!fields || typeof fields !== "object" || Array.isArray(fields)) throw new TypeError("fields must be a JSON object");
    return fields;
  }
}

export class LeadStatusElement extends CrmElement {
  static button = "update_lead_status";
  static observedAttributes = ["lead-id", "current-status"];

  makeControl() {
    const select = document.createElement("select");
    select.setAttribute("aria-label", "Lead status");
    select.addEventListener("change", () => { if (select.value !== this.current()) this.press(); });
    return select;
  }

  attach(c) {
    super.attach(c);
    this.off.push(c.on("event", (e) => { // the lead moved (here or on another screen): the choices follow
      const d = e && e.data;
      if (e.topic === "leads.status_changed" && d && d.leadId === this.getAttribute("lead-id") && typeof d.to === "string") {
        this.setAttribute("current-status", d.to);
      }
    }));
  }

  current() { return this.getAttribute("current-status") || ""; }

  same(fields) { return !!fields && fields.leadId === this.getAttribute("lead-id"); } // a kept move of this lead

  async update() {
    const current = this.current();
    let moves = [];
    try { moves = ((await rules(client)).moves || {})[current] || []; } catch { /* offline with no rules yet: the current one only */ }
    if (this.current() !== current) return; // changed meanwhile: that update draws it
    const options = [current, ...moves.filter((m) => m !== current)].map((s) => {
      const o = document.createElement("option");
      o.value = s; o.textContent = s;
      return o;
    });
    this.control.replaceChildren(...options);
    this.control.value = current;
    this.control.disabled = !moves.length;
  }

  body() {
    return { leadId: this.need("lead-id"), status: this.control.value, expectedStatus: this.current() || null };
  }

  done(status, body) {
    const lead = body && body.lead;
    if (lead && typeof lead.status === "string") this.setAttribute("current-status", lead.status);
    super.done(status, body);
  }

  refused(err) {
    this.control.value = this.current();
    super.refused(err);
  }
}

/** The statuses and the moves the rules allow (GET /api/leads/statuses), read once per client. */
function rules(c) {
  if (!c) return Promise.reject(new Error("no client"));
  if (!statuses.has(c)) {
    const got = c.read("lead_statuses");
    statuses.set(c, got);
    got.catch(() => statuses.delete(c)); // asked again next time
  }
  return statuses.get(c);
}

export const ELEMENTS = Object.freeze({
  "crm-booking-confirm": BookingConfirmElement,
  "crm-send-sms": SendSmsElement,
  "crm-lead-status": LeadStatusElement,
  "crm-lead-bulk-status": LeadBulkStatusElement,
  "crm-press": PressElement,
});

/** Register the elements (once), pressing through `c`; called again with another client, they all move to it. */
export function defineElements(c) {
  client = c;
  for (const [tag, kind] of Object.entries(ELEMENTS)) {
    if (!customElements.get(tag)) customElements.define(tag, kind);
  }
  for (const tag of Object.keys(ELEMENTS)) for (const el of document.querySelectorAll(tag)) if (el.control) el.attach(c);
}
