// What an answer means, in words a person understands (not a status code): keyed by button name
// and by problem name (the server's table, table.js: the type an answer carries, named as in shared/problems.py).
import { formatMoney } from "./money.js";
import { problem } from "./table.js";
import { when } from "./view.js";

export function queuedWords(entry, why) {
  if (why === "accepted") return `${entry.label}: accepted; the service is busy or down, it takes effect as soon as it is back.`;
  return `${entry.label}: no connection. Kept in this browser; it is sent by itself when the connection returns.`;
}

const BULK_REASON = (reason) => (reason === "not_found" ? "no longer exists"
  : reason.replace(/^cannot move from (\w+) to (\w+)$/, (_, from, to) => (from === "won" ? "is won, which is final" : `is ${from}: it cannot go to ${to}`)));

/** [kind, text, details] for a press and its final answer. */
export function outcome(entry, answer, nameOf) {
  const b = answer.body || {}, status = answer.status, who = nameOf((entry.leadIds || [])[0]);
  if (status >= 200 && status < 300) return (DONE[entry.button] || DONE.any)(entry, b, who);
  const name = problem(b.type), words = (REFUSED[entry.button] || {})[name] || REFUSED.any[name];
  const refused = words && words(entry, b, who, nameOf);
  if (refused) return Array.isArray(refused) ? refused : ["error", refused, []];
  if (status === 404) return ["error", `${entry.label}: it no longer exists${b.detail ? ` (${b.detail})` : ""}.`, []];
  if (status === 422) return ["error", `${entry.label}: not accepted. ${b.detail || ""}`.trim(), (b.errors || []).map((e) => `${e.field}: ${e.message}`)];
  return ["error", `${entry.label}: it did not work (${b.title || "error " + status}). ${b.detail || ""}`.trim(), []];
}

const ok = (text) => ["success", text, []];
const money = (minor, entry) => formatMoney(minor, entry.currency);
const balance = (b, entry) => (b.proposal ? `; the balance is now ${money(b.proposal.balance_minor, entry)}.` : ".");

/** Success, by button: (entry, body, who) -> [kind, text, details]. */
export const DONE = {
  update_lead_status: (e, b, who) => ok(`${who} is now ${e.body.status}.`),
  bulk_update_lead_status: (e, b) => ok(b.updated === 0 ? `All ${e.body.leadIds.length} were already ${e.body.status}.`
    : `${b.updated} lead${b.updated === 1 ? "" : "s"} moved to ${e.body.status}.`),
  send_sms: (e, b, who) => ok(b.sms && b.sms.status === "queued"
    ? `The SMS to ${who} is queued: the provider is unavailable, it is sent by itself when it is back.` : `SMS sent to ${who}.`),
  create_lead: (e) => ok(`${e.body.name} was added.`),
  create_appointment: (e, b, who) => ok(`${who} is booked for ${when(e.body.startsAt)}.`),
  confirm_booking: (e, b, who) => ok(`Appointment with ${who} confirmed${e.body.sendSms ? "; the lead is being texted" : ""}.`),
  reschedule_appointment: (e, b, who) => {
    const clashes = b.clashes || [], moved = `The appointment with ${who} is moved to ${when(e.body.startsAt)}`;
    return clashes.length ? ["warning", `${moved}, but it overlaps ${clashes.length === 1 ? "another appointment" : `${clashes.length} other appointments`} of ${who}:`,
      clashes.map((c) => `${when(c.starts_at)}, ${c.duration_minutes} min (${c.status.replace("_", " ")})`)] : ok(`${moved}.`);
  },
  cancel_appointment: (e, b, who) => ok(`The appointment with ${who} is cancelled.`),
  complete_appointment: (e, b, who) => ok(`The appointment with ${who} is marked completed.`),
  mark_no_show: (e, b, who) => ok(`The appointment with ${who} is marked a no-show.`),
  send_proposal: (e, b, who) => ok(`Proposal "${e.title}" sent to ${who}.`),
  accept_proposal: (e, b, who) => ok(`"${e.title}" is accepted; ${who} moves to won.`),
  decline_proposal: (e, b, who) => ok(`"${e.title}" is declined; ${who} moves to lost.`),
  record_payment: (e, b) => ok(`Payment of ${money(e.body.amountMinor, e)} recorded on "${e.title}"${balance(b, e)}`),
  refund_payment: (e, b) => ok(`${money(e.body.amountMinor, e)} refunded on "${e.title}"${balance(b, e)}`),
  create_contract: (e) => ok(`A contract for "${e.title}" is drafted: send it when ready.`),
  send_contract: (e) => ok(`The contract for "${e.title}" is sent.`),
  sign_contract: (e) => ok(`The contract for "${e.title}" is signed by ${e.body.signerName}.`),
  void_contract: (e) => ok(`The contract for "${e.title}" is void.`),
  create_campaign: (e) => ok(`The campaign "${e.title}" is created: start it when ready.`),
  start_campaign: (e, b) => ok(`"${e.title}" is started` +
    (b.campaign ? `: ${b.campaign.counts.total} lead${b.campaign.counts.total === 1 ? "" : "s"} to text.` : ".")),
  pause_campaign: (e) => ok(`"${e.title}" is paused: nothing more is sent until it is resumed.`),
  resume_campaign: (e) => ok(`"${e.title}" is sending again.`),
  cancel_campaign: (e) => ok(`"${e.title}" is cancelled: nothing more is sent (what was sent stays sent).`),
  attach_document: (e, b, who) => ok(`${e.filename} is attached to ${who}.`),
  delete_document: (e) => ok(`${e.filename} is deleted.`),
  any: (e) => ok(`${e.label}: done.`),
};

const now = (b, otherwise) => (b.currentStatus ? `is ${String(b.currentStatus).replace("_", " ")}` : otherwise);
const leadGone = (e, b, who) => `${e.label}: ${who} no longer exists.`;
const closed = (e, b) => `This appointment ${now(b, "is closed")}: it cannot change any more.`;
const notStarted = (how) => () => `This appointment has not started yet: it can be marked ${how} once its time has come.`;
const contractClosed = (e, b) => `This contract ${now(b, "is closed")}: it can no longer change.`;
const campaignClosed = (verb) => (e, b) => `"${e.title}" ${now(b, "is over")}: it can no longer be ${verb}.`;
const neverStarted = (verb) => (e) => `"${e.title}" was never started: it cannot be ${verb}. Start it first.`;
const proposalNotOpen = (verb) => (e, b) => `"${e.title}" ${now(b, "was already decided")}: it cannot be ${verb} now.`;
const notAccepted = (what) => (e) => `"${e.title}" is not accepted: ${what} needs an accepted proposal.`;

/** Refusals, by button and problem name ("any": whichever button): (entry, body, who, nameOf) -> text, or
 * [kind, text, details]; a name with no words here is said by its status (404, 422, any other). */
export const REFUSED = {
  update_lead_status: {
    StatusConflict: (e, b, who) => `Someone moved ${who} to ${b.currentStatus} first: it cannot go to ${e.body.status} now.`,
    ForbiddenMove: (e, b, who) => (b.currentStatus && e.from && b.currentStatus !== e.from
      ? REFUSED.update_lead_status.StatusConflict(e, b, who) : `${who} cannot move to ${e.body.status} from ${b.currentStatus}.`),
    NotFound: leadGone,
  },
  bulk_update_lead_status: {
    BulkRefused: (e, b, who, nameOf) => {
      const failed = b.failed || [];
      return ["error", `No lead was moved: ${failed.length} of ${e.body.leadIds.length} cannot go to ${e.body.status}.`,
        failed.map((f) => `${nameOf(f.leadId)}: ${BULK_REASON(f.reason)}`)];
    },
  },
  send_sms: {
    OptedOut: (e, b, who) => `${who} has opted out of SMS (replied STOP): nothing was sent.`,
    ProviderRefused: (e, b, who) => `The SMS to ${who} was refused by the provider: ${b.detail || "the number cannot receive it"}.`,
    NotFound: leadGone,
  },
  confirm_booking: {
    NotScheduled: (e, b) => `This appointment is ${b.currentStatus || "no longer scheduled"}: it cannot be confirmed.`,
    AlreadyStarted: () => "This appointment has already started: it can no longer be confirmed.",
  },
  reschedule_appointment: {
    AlreadyStarted: () => "This appointment has already started: it can no longer be moved.",
    AppointmentClosed: closed,
  },
  cancel_appointment: { AppointmentClosed: closed },
  complete_appointment: { AppointmentClosed: closed, NotStarted: notStarted("completed") },
  mark_no_show: { AppointmentClosed: closed, NotStarted: notStarted("a no-show") },
  accept_proposal: {
    ProposalNotOpen: proposalNotOpen("accepted"),
    ProposalExpired: (e) => `"${e.title}" has expired: it can no longer be accepted. Send a new proposal.`,
  },
  decline_proposal: { ProposalNotOpen: proposalNotOpen("declined") },
  record_payment: {
    ProposalNotAccepted: notAccepted("a payment"),
    CurrencyMismatch: (e, b) => `${e.label}: the currency does not match the proposal's. ${b.detail || ""}`.trim(),
    Overpayment: (e, b) => {
      const left = Number.isInteger(b.balanceMinor) ? b.balanceMinor : e.balance;
      return `Not recorded: ${money(e.body.amountMinor, e)} is more than the balance left on "${e.title}"` +
        (Number.isInteger(left) ? ` (${money(left, e)}).` : ".");
    },
    ReferenceReused: (e) => `Not recorded: the reference ${e.body.externalReference} is already another payment. ` +
      "Nothing was recorded twice; use a new reference for a new payment.",
  },
  refund_payment: {
    RefundTooLarge: (e, b) => `Not refunded: ${money(e.body.amountMinor, e)} is more than what is left of that payment` +
      (Number.isInteger(b.refundableMinor) ? ` (${money(b.refundableMinor, e)}).` : "."),
  },
  create_contract: {
    ProposalNotAccepted: notAccepted("a contract"),
    AlreadyExists: (e) => `"${e.title}" already has a contract in progress: void it first to make another.`,
  },
  send_contract: { ContractClosed: contractClosed },
  sign_contract: { ContractClosed: contractClosed },
  void_contract: { ContractClosed: contractClosed },
  create_campaign: {
    NotFound: (e) => `The campaign "${e.title}" was not created: its template no longer exists. Choose another one.`,
  },
  start_campaign: { CampaignClosed: campaignClosed("started") },
  pause_campaign: { CampaignClosed: campaignClosed("paused"), CampaignNotStarted: neverStarted("paused") },
  resume_campaign: { CampaignClosed: campaignClosed("resumed"), CampaignNotStarted: neverStarted("resumed") },
  cancel_campaign: { CampaignClosed: campaignClosed("cancelled") },
  attach_document: {
    NotFound: leadGone,
    TooLarge: (e, b) => `${e.filename} was not attached: it is too large` +
      (Number.isInteger(b.maxBytes) ? ` (a document may hold at most ${fileSize(b.maxBytes)}).` : "."),
    ContentTypeMismatch: (e, b) => `${e.filename} was refused: it says it is ${fileKind(b.declared)}, ` +
      `but its content is ${b.detected ? fileKind(b.detected) : "something else"}. Check that it is the right file.`,
  },
  any: {
    UnsupportedMediaType: (e, b) => `${e.filename || e.label} was refused: ${b.detail || "the server cannot take this kind of upload"}.`,
    CommandParked: (e) => `${e.label}: the service could not carry it out after several tries; an operator has it.`,
  },
};

/** A campaign's counts in words: "3 of 40 sent · 1 skipped (opted out or gone) · 36 waiting". */
export function campaignProgress(campaign) {
  const c = campaign.counts;
  if (campaign.status === "draft") return "Not started: the audience is counted when it starts.";
  const parts = [`${c.sent} of ${c.total} sent`];
  if (c.sending) parts.push(`${c.sending} sending`);
  if (c.waiting) parts.push(`${c.waiting} waiting`);
  if (c.skipped) parts.push(`${c.skipped} skipped`);
  if (c.failed) parts.push(`${c.failed} failed`);
  return parts.join(" · ");
}

const SKIPPED = { opted_out: "opted out of SMS", cancelled: "the campaign was cancelled", "not found": "the lead no longer exists" };

/** A campaign target's outcome, beside its state. */
export function targetWords(t, now = Date.now()) {
  if (t.state === "waiting") return t.next_at && new Date(t.next_at).getTime() > now ? `quiet hours: goes at ${when(t.next_at)}` : "next in line";
  if (t.state === "skipped" || t.state === "failed") return (t.reason && (SKIPPED[t.reason] || t.reason)) || "";
  return when(t.updated_at);
}

const KINDS = { "application/pdf": "a PDF", "image/png": "a PNG image", "image/jpeg": "a JPEG image", "image/gif": "a GIF image",
  "text/plain": "text", "text/csv": "a CSV table", "application/json": "JSON", "application/zip": "a zip archive",
  "application/octet-stream": "a file of unknown type" };
const OFFICE = [["wordprocessingml", "a Word document"], ["spreadsheetml", "an Excel workbook"], ["presentationml", "a PowerPoint deck"],
  ["opendocument.text", "an OpenDocument text"], ["opendocument.spreadsheet", "an OpenDocument spreadsheet"]];

/** A content type in words ("image/png" -> "a PNG image"); the type itself when it has no name here. */
export function fileKind(type) {
  const t = String(type || "").toLowerCase();
  if (KINDS[t]) return KINDS[t];
  const office = OFFICE.find(([part]) => t.includes(part));
  if (office) return office[1];
  if (t.startsWith("image/")) return `an image (${t.slice(6)})`;
  if (t.startsWith("text/")) return `text (${t.slice(5)})`;
  return t || "a file of unknown type";
}

/** Bytes for people: "812 bytes", "4.2 kB", "10 MB" (powers of 1000, as the browser's language writes them). */
export function fileSize(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1000) return `${bytes} byte${bytes === 1 ? "" : "s"}`;
  const units = ["kilobyte", "megabyte", "gigabyte", "terabyte"];
  let value = bytes / 1000, i = 0;
  while (value >= 1000 && i < units.length - 1) { value /= 1000; i++; }
  return new Intl.NumberFormat(undefined, { style: "unit", unit: units[i], unitDisplay: "short",
    maximumFractionDigits: value < 10 ? 1 : 0 }).format(value);
}
