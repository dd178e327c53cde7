// The lead panel's deals: proposals (send, accept, decline), their payments (record, refund) and
// contracts (create, send, sign, void), and the deal's timeline. Money is integer minor units (money.js).
// Every press goes through main.js's press (the queue); what changed comes back by the live feed.
//
//   proposal:  sent ──accept──► accepted (the lead moves to won)      sent ──decline──► declined (lost)
//   accepted:  payments (never above the balance; one per external reference), refunds, one open contract
//   contract:  draft ──send──► sent ──sign──► signed (final);  draft / sent ──void (reason)──► void (final)
import { newKey } from "/sdk/index.js";
import { formatMoney, parseMinor, toDecimal } from "./money.js";
import { problem } from "./table.js";
import { $, el, isoFromLocal, kept, notify, refill, when } from "./view.js";

const METHODS = [["card", "card"], ["bank_transfer", "bank transfer"], ["cash", "cash"], ["cheque", "cheque"], ["other", "other"]];
const VALID_DAYS = 30;

export class Deals {
  /** ctx: {press(button, fields, label, leadIds, extra), read(name, fields), openId(), nameOf(id), entries()} */
  constructor(ctx) {
    this.ctx = ctx; this.drafts = new Map(); this.timer = null;
    this.proposals = []; this.details = new Map(); this.timeline = [];
  }

  bind() {
    $("#proposal-form").addEventListener("submit", (e) => this.sendProposal(e));
    $("#proposal-currency").addEventListener("change", (e) => { e.target.value = e.target.value.trim().toUpperCase(); });
  }

  reset() {
    this.proposals = []; this.details.clear(); this.timeline = []; this.drafts.clear();
    const valid = $("#proposal-valid");
    if (!valid.value) valid.value = new Date(Date.now() + VALID_DAYS * 864e5).toLocaleDateString("sv"); // YYYY-MM-DD, local
    this.render();
  }

  reloadSoon() { // events come in bursts (payment recorded, lead moved...): one read for a burst
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { if (this.ctx.openId()) this.load(this.ctx.openId()); }, 150);
  }

  async load(leadId) {
    const [list, timeline] = await Promise.all([this.ctx.read("lead_proposals", { leadId }),
      this.ctx.read("lead_timeline", { leadId })]);
    if (this.ctx.openId() !== leadId) return;
    if (list) this.proposals = list.proposals;
    if (timeline) this.timeline = timeline.timeline;
    this.render();
    // Payments and contracts exist only for accepted proposals: one read each (the newest few).
    const accepted = this.proposals.filter((p) => p.status === "accepted").slice(0, 10);
    const details = await Promise.all(accepted.map((p) => this.ctx.read("get_proposal", { proposalId: p.id })));
    if (this.ctx.openId() !== leadId) return;
    accepted.forEach((p, i) => { if (details[i]) this.details.set(p.id, details[i]); });
    this.render();
  }

  busy() { // the proposals, payments and contracts a press waits for
    const ids = new Set();
    for (const e of this.ctx.entries()) for (const k of ["proposalId", "paymentId", "contractId"]) if (e.body && e.body[k]) ids.add(e.body[k]);
    return ids;
  }

  render() {
    const busy = this.busy();
    refill($("#proposals"), this.proposals.map((p) => this.proposalRow(p, busy)));
    refill($("#timeline"), [...this.timeline].reverse().map((t) => el("li", { testid: "timeline-entry", dataset: { type: t.type, refId: t.ref_id } },
      el("div", { class: "top" }, el("span", { class: "pill " + t.type.split(".")[1], textContent: t.type.replace(/s?\./, " ") }),
        el("span", { class: "body", textContent: t.summary })),
      el("div", { class: "meta", textContent: `${when(t.at)} by ${t.by}` }))));
  }

  proposalRow(p, busy) {
    const pending = busy.has(p.id), data = { proposalId: p.id }, money = (minor) => formatMoney(minor, p.currency);
    const detail = this.details.get(p.id) || { payments: [], refunds: [], contracts: [] };
    const open = detail.contracts.some((c) => c.status !== "void");
    return el("li", { testid: "proposal-row", dataset: { proposalId: p.id, status: p.status, balanceMinor: String(p.balance_minor),
      pending: pending ? "1" : "0" } },
    el("div", { class: "top" }, el("strong", { class: "body", textContent: p.title }),
      el("span", { class: "pill " + p.status, textContent: p.status }),
      pending ? el("span", { class: "pending-mark", textContent: "pending" }) : null,
      el("span", { class: "spacer" }), el("strong", { testid: "proposal-amount-shown", textContent: money(p.amount_minor) })),
    el("div", { class: "meta" }, `paid ${money(p.paid_minor)} · balance `,
      el("strong", { testid: "proposal-balance", textContent: money(p.balance_minor) }),
      ` · ${p.status === "sent" ? "valid until" : p.status} ${when(p.status === "sent" ? p.valid_until : p.decided_at)}`,
      p.decline_reason ? ` · ${p.decline_reason}` : ""),
    p.status === "sent" ? el("div", { class: "line actions" },
      this.button("proposal-accept", "Accept", data, pending, () => this.decide(p, "accept"), "primary", `accept ${p.title}`),
      this.button("proposal-decline", "Decline", data, pending, () => this.decide(p, "decline"), "", `decline ${p.title}`)) : null,
    p.status === "accepted" ? el("ul", { class: "sub", "aria-label": "payments" },
      ...detail.payments.map((pay) => this.paymentRow(p, pay, busy.has(pay.id)))) : null,
    p.status === "accepted" && p.balance_minor > 0 ? el("div", { class: "line actions" },
      kept(this.drafts, `amount:${p.id}`, "input", { testid: "payment-amount", dataset: data, inputMode: "decimal", size: 9,
        placeholder: `amount ≤ ${toDecimal(p.balance_minor, p.currency)}`, "aria-label": `amount paid on ${p.title} (${p.currency})` }),
      kept(this.drafts, `method:${p.id}`, "select", { testid: "payment-method", dataset: data, "aria-label": "how it was paid" }, "card",
        ...METHODS.map(([v, t]) => el("option", { value: v, textContent: t }))),
      kept(this.drafts, `ref:${p.id}`, "input", { testid: "payment-reference", dataset: data, size: 12, maxLength: 128,
        "aria-label": "the payment's reference (the same reference is never recorded twice)" }, this.reference(p.id)),
      this.button("payment-record", "Record payment", data, pending, () => this.recordPayment(p), "primary", `record a payment on ${p.title}`)) : null,
    p.status === "accepted" ? el("ul", { class: "sub", "aria-label": "contracts" },
      ...detail.contracts.map((c) => this.contractRow(p, c, busy.has(c.id)))) : null,
    p.status === "accepted" && this.details.has(p.id) && !open ? el("div", { class: "line actions" }, // known to have none open
      this.button("contract-create", "Create contract", data, pending, () => this.createContract(p), "", `create a contract from ${p.title}`)) : null);
  }

  paymentRow(p, pay, pending) {
    const data = { paymentId: pay.id }, left = pay.amount_minor - pay.refunded_minor;
    return el("li", { testid: "payment-row", dataset: { paymentId: pay.id, refundedMinor: String(pay.refunded_minor) } },
      el("div", { class: "top" }, el("strong", { textContent: formatMoney(pay.amount_minor, pay.currency) }),
        el("span", { class: "meta", textContent: [pay.method.replace("_", " "), pay.external_reference, when(pay.recorded_at),
          pay.refunded_minor ? `refunded ${formatMoney(pay.refunded_minor, pay.currency)}` : ""].filter(Boolean).join(" · ") }),
        pending ? el("span", { class: "pending-mark", textContent: "pending" }) : null),
      left > 0 ? el("div", { class: "line actions" },
        kept(this.drafts, `refund:${pay.id}`, "input", { testid: "payment-refund-amount", dataset: data, inputMode: "decimal", size: 9,
          "aria-label": `amount to refund (${pay.currency})` }, toDecimal(left, pay.currency)),
        this.button("payment-refund", "Refund", data, pending, () => this.refund(p, pay), "", `refund the payment ${pay.external_reference}`)) : null);
  }

  contractRow(p, c, pending) {
    const data = { contractId: c.id }, live = c.status === "draft" || c.status === "sent";
    return el("li", { testid: "contract-row", dataset: { contractId: c.id, status: c.status } },
      el("div", { class: "top" }, el("span", { textContent: "Contract" }), el("span", { class: "pill " + c.status, textContent: c.status }),
        el("span", { class: "meta", textContent: [formatMoney(c.terms.amount_minor, c.terms.currency),
          c.signed_at ? `signed ${when(c.signed_at)} by ${c.signer_name}` : c.sent_at ? `sent ${when(c.sent_at)}` : `made ${when(c.created_at)}`,
          c.voided_at ? `void: ${c.void_reason}` : ""].filter(Boolean).join(" · ") }),
        pending ? el("span", { class: "pending-mark", textContent: "pending" }) : null),
      c.status === "draft" ? el("div", { class: "line actions" },
        this.button("contract-send", "Send", data, pending, () => this.contract(p, c, "send"), "primary", `send the contract for ${p.title}`)) : null,
      c.status === "sent" ? el("div", { class: "line actions" },
        kept(this.drafts, `signer:${c.id}`, "input", { testid: "contract-signer", dataset: data, maxLength: 200,
          placeholder: "signed by (name)", "aria-label": "name of the person who signed" }),
        this.button("contract-sign", "Sign", data, pending, () => this.contract(p, c, "sign"), "primary", `mark the contract for ${p.title} signed`)) : null,
      live ? el("div", { class: "line actions" },
        kept(this.drafts, `void:${c.id}`, "input", { testid: "contract-void-reason", dataset: data, maxLength: 500,
          placeholder: "reason to void", "aria-label": "reason to void the contract" }),
        this.button("contract-void", "Void", data, pending, () => this.contract(p, c, "void"), "", `void the contract for ${p.title}`)) : null);
  }

  button(testid, text, dataset, pending, onclick, cls = "", label = text) {
    return el("button", { type: "button", class: `small ${cls}`, testid, dataset, textContent: text, disabled: pending, onclick,
      "aria-label": label });
  }

  /** The payment form's external reference: one per form, kept until a payment is recorded with it. */
  reference(proposalId) {
    if (!this.drafts.has(`ref:${proposalId}`)) this.drafts.set(`ref:${proposalId}`, `console-${newKey()}`);
    return this.drafts.get(`ref:${proposalId}`);
  }

  value(key) { return (this.drafts.get(key) || "").trim(); }

  press(button, fields, label, p, extra = {}) {
    return this.ctx.press(button, fields, label, [p.lead_id], { title: p.title, currency: p.currency, ...extra });
  }

  sendProposal(e) {
    e.preventDefault();
    const leadId = this.ctx.openId();
    if (!leadId) return;
    const title = $("#proposal-title").value.trim(), currency = $("#proposal-currency").value.trim().toUpperCase();
    if (!/^[A-Z]{3}$/.test(currency)) return void notify("error", "The currency is three letters (USD, EUR...).");
    const amountMinor = parseMinor($("#proposal-amount").value, currency);
    if (!amountMinor) return void notify("error", `"${$("#proposal-amount").value}" is not an amount in ${currency}: write it like 1234.50.`);
    const validUntil = isoFromLocal(`${$("#proposal-valid").value}T23:59:59`);
    if (!validUntil) return void notify("error", "Choose until when the proposal is valid.");
    this.press("send_proposal", { leadId, title, amountMinor, currency, validUntil },
      `Sending the proposal "${title}" (${formatMoney(amountMinor, currency)}) to ${this.ctx.nameOf(leadId)}`,
      { lead_id: leadId, title, currency });
    $("#proposal-title").value = ""; $("#proposal-amount").value = "";
  }

  decide(p, how) {
    this.press(how === "accept" ? "accept_proposal" : "decline_proposal", { proposalId: p.id },
      `${how === "accept" ? "Accepting" : "Declining"} "${p.title}" for ${this.ctx.nameOf(p.lead_id)}`, p);
  }

  recordPayment(p) {
    const typed = this.value(`amount:${p.id}`), amountMinor = parseMinor(typed, p.currency);
    if (!amountMinor) return void notify("error", typed ? `"${typed}" is not an amount in ${p.currency}: write it like 1234.50.` : "Write the amount paid first.");
    const method = this.drafts.get(`method:${p.id}`) || "card", externalReference = this.value(`ref:${p.id}`) || this.reference(p.id);
    this.drafts.delete(`amount:${p.id}`);
    this.press("record_payment", { proposalId: p.id, amountMinor, currency: p.currency, method, externalReference },
      `Recording a payment of ${formatMoney(amountMinor, p.currency)} on "${p.title}"`, p, { balance: p.balance_minor });
    this.render();
  }

  refund(p, pay) {
    const typed = this.value(`refund:${pay.id}`) || toDecimal(pay.amount_minor - pay.refunded_minor, pay.currency);
    const amountMinor = parseMinor(typed, pay.currency);
    if (!amountMinor) return void notify("error", `"${typed}" is not an amount in ${pay.currency}: write it like 12.50.`);
    this.drafts.delete(`refund:${pay.id}`);
    this.press("refund_payment", { paymentId: pay.id, amountMinor },
      `Refunding ${formatMoney(amountMinor, pay.currency)} of the payment ${pay.external_reference} on "${p.title}"`, p);
  }

  createContract(p) {
    this.press("create_contract", { proposalId: p.id }, `Making a contract from "${p.title}"`, p);
  }

  contract(p, c, how) {
    const body = { contractId: c.id };
    if (how === "sign") {
      body.signerName = this.value(`signer:${c.id}`);
      if (!body.signerName) return void notify("error", "Write the name of the person who signed first.");
    }
    if (how === "void") {
      body.reason = this.value(`void:${c.id}`);
      if (!body.reason) return void notify("error", "Say why the contract is voided (the reason is kept with it).");
    }
    this.drafts.delete(`signer:${c.id}`); this.drafts.delete(`void:${c.id}`);
    const label = { send: `Sending the contract for "${p.title}"`, sign: `Marking the contract for "${p.title}" signed by ${body.signerName}`,
      void: `Voiding the contract for "${p.title}"` }[how];
    this.press({ send: "send_contract", sign: "sign_contract", void: "void_contract" }[how], body, label, p);
  }

  /** After an answer: a payment recorded (or its reference found taken) frees the form for the next payment. */
  answered(entry, answer) {
    if (entry.button !== "record_payment") return;
    const b = answer.body || {};
    if ((answer.status >= 200 && answer.status < 300) || problem(b.type) === "ReferenceReused") {
      if (this.drafts.get(`ref:${entry.body.proposalId}`) === entry.body.externalReference) this.drafts.delete(`ref:${entry.body.proposalId}`);
    }
  }
}
