// The lead panel's appointments: each with the moves its state allows (Confirm, Reschedule, Cancel,
// Complete, No-show), and the Book form. Every press goes through main.js's press (the queue).
//
//   scheduled ──confirm──► confirmed        scheduled / confirmed ──reschedule──► scheduled (to be confirmed again)
//   scheduled / confirmed ──cancel (reason)──► cancelled
//   scheduled / confirmed ──complete / no-show (once its time has come)──► completed / no_show
import { $, el, isoFromLocal, kept, localInput, notify, refill, when } from "./view.js";

const OPEN = new Set(["scheduled", "confirmed"]);
const by = (who) => (who ? " by " + who : "");

export class Appointments {
  /** ctx: {press(button, fields, label, leadIds, extra), read(name, fields), openId(), nameOf(id), entries()} */
  constructor(ctx) {
    this.ctx = ctx; this.items = []; this.drafts = new Map(); this.timer = null;
  }

  bind() { $("#book-form").addEventListener("submit", (e) => this.book(e)); }

  reset() { this.items = []; this.drafts.clear(); this.render(); }

  async load(leadId) {
    const body = await this.ctx.read("lead_appointments", { leadId });
    if (body && this.ctx.openId() === leadId) { this.items = body.appointments; this.render(); }
  }

  render() {
    const busy = new Set(this.ctx.entries().map((e) => e.body && e.body.appointmentId).filter(Boolean));
    const now = Date.now();
    refill($("#appointments"), this.items.map((a) => this.row(a, busy.has(a.id), now)));
    this.wakeAtNextStart(now);
  }

  /** Confirm turns off, Complete and No-show on, when an appointment's time comes: render again then. */
  wakeAtNextStart(now) {
    clearTimeout(this.timer);
    const next = Math.min(...this.items.filter((a) => OPEN.has(a.status)).map((a) => new Date(a.starts_at).getTime())
      .filter((t) => t > now));
    if (Number.isFinite(next)) this.timer = setTimeout(() => this.render(), Math.min(next - now + 50, 2 ** 31 - 1));
  }

  row(a, pending, now) {
    const data = { appointmentId: a.id }, started = new Date(a.starts_at).getTime() <= now, open = OPEN.has(a.status);
    const at = when(a.starts_at);
    const button = (testid, text, onclick, { cls = "small", disabled = false, title } = {}) => el("button", {
      type: "button", class: cls, testid, dataset: data, textContent: text, disabled: disabled || pending, title, onclick,
      "aria-label": `${text} the appointment of ${at}` });
    return el("li", { testid: "appointment-row", dataset: { appointmentId: a.id, status: a.status, pending: pending ? "1" : "0" } },
      el("div", { class: "top" }, el("strong", { textContent: at }),
        el("span", { class: "meta", textContent: `${a.duration_minutes} min${a.title ? " · " + a.title : ""}` }),
        el("span", { class: "pill " + a.status, textContent: a.status.replace("_", " ") }),
        pending ? el("span", { class: "pending-mark", textContent: "pending" }) : null),
      a.confirmed_at ? el("div", { class: "meta", textContent: `confirmed ${when(a.confirmed_at)}${by(a.confirmed_by)}` }) : null,
      a.closed_at ? el("div", { class: "meta",
        textContent: `${a.status.replace("_", " ")} ${when(a.closed_at)}${by(a.closed_by)}${a.cancel_reason ? ": " + a.cancel_reason : ""}` }) : null,
      open ? el("div", { class: "line actions" },
        a.status === "scheduled" ? button("appointment-confirm", "Confirm", () => this.confirm(a), { cls: "small primary", disabled: started,
          title: started ? "it has started: it cannot be confirmed any more" : "confirm this appointment" }) : null,
        button("appointment-complete", "Complete", () => this.close(a, "complete"), { disabled: !started,
          title: started ? "the appointment took place" : "possible once its time has come" }),
        button("appointment-no-show", "No-show", () => this.close(a, "no-show"), { disabled: !started,
          title: started ? "the lead did not turn up" : "possible once its time has come" })) : null,
      open ? el("div", { class: "line actions" },
        kept(this.drafts, `at:${a.id}`, "input", { type: "datetime-local", testid: "appointment-reschedule-at", dataset: data,
          disabled: started, "aria-label": `new time for the appointment of ${at}` }, localInput(a.starts_at)),
        button("appointment-reschedule", "Reschedule", () => this.reschedule(a), { disabled: started,
          title: started ? "it has started: it can no longer be moved" : "move it to the time on the left" })) : null,
      open ? el("div", { class: "line actions" },
        kept(this.drafts, `reason:${a.id}`, "input", { testid: "appointment-cancel-reason", dataset: data, maxLength: 200,
          placeholder: "reason to cancel", "aria-label": `reason to cancel the appointment of ${at}` }),
        button("appointment-cancel", "Cancel", () => this.cancel(a))) : null);
  }

  value(key, initial = "") { return this.drafts.has(key) ? this.drafts.get(key) : initial; }

  confirm(a) {
    const sendSms = $("#confirm-sms").checked;
    this.ctx.press("confirm_booking", { appointmentId: a.id, sendSms },
      `Confirming the appointment with ${this.ctx.nameOf(a.lead_id)}${sendSms ? " (and texting)" : ""}`, [a.lead_id]);
  }

  reschedule(a) {
    const startsAt = isoFromLocal(this.value(`at:${a.id}`, localInput(a.starts_at)));
    if (!startsAt) return void notify("error", "Choose the new date and time of the appointment first.");
    this.drafts.delete(`at:${a.id}`);
    this.ctx.press("reschedule_appointment", { appointmentId: a.id, startsAt },
      `Moving the appointment with ${this.ctx.nameOf(a.lead_id)} to ${when(startsAt)}`, [a.lead_id], { previous: a.starts_at });
  }

  cancel(a) {
    const reason = this.value(`reason:${a.id}`).trim();
    if (!reason) return void notify("error", "Say why the appointment is cancelled (the reason is kept with it).");
    this.drafts.delete(`reason:${a.id}`);
    this.ctx.press("cancel_appointment", { appointmentId: a.id, reason },
      `Cancelling the appointment of ${when(a.starts_at)} with ${this.ctx.nameOf(a.lead_id)}`, [a.lead_id]);
  }

  close(a, how) { // complete or no-show
    this.ctx.press(how === "complete" ? "complete_appointment" : "mark_no_show", { appointmentId: a.id },
      `${how === "complete" ? "Marking completed" : "Marking a no-show"}: the appointment of ${when(a.starts_at)} with ${this.ctx.nameOf(a.lead_id)}`,
      [a.lead_id]);
  }

  book(e) {
    e.preventDefault();
    const leadId = this.ctx.openId(), form = e.target;
    if (!leadId) return;
    const startsAt = isoFromLocal($("#book-at").value);
    if (!startsAt) return void notify("error", "Choose the date and time of the appointment first.");
    const body = { leadId, startsAt, durationMinutes: Number($("#book-duration").value) || 30 };
    const title = $("#book-title").value.trim();
    if (title) body.title = title;
    this.ctx.press("create_appointment", body, `Booking ${this.ctx.nameOf(leadId)} for ${when(startsAt)}`, [leadId]);
    form.reset();
  }
}
