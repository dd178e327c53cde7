// What an answer means, in words a person understands (not a status code).
import { formatMoney } from "./money.js";
import { when } from "./view.js";

const LEAD_KINDS = new Set(["status", "bulk", "sms", "create", "document_upload"]); // presses about a lead itself (its 404 is the lead's)

export function queuedWords(entry, why) {
  if (why === "accepted") return `${entry.label}: accepted; the service is busy or down, it takes effect as soon as it is back.`;
  return `${entry.label}: no connection. Kept in this browser; it is sent by itself when the connection returns.`;
}

const BULK_REASON = (reason) => (reason === "not_found" ? "no longer exists"
  : reason.replace(/^cannot move from (\w+) to (\w+)$/, (_, from, to) => (from === "won" ? "is won, which is final" : `is ${from}: it cannot go to ${to}`)));

/** [kind, text, details] for a press and its final answer. */
export function outcome(entry, answer, nameOf) {
  const b = answer.body || {}, status = answer.status;
  if (status >= 200 && status < 300) return success(entry, b, nameOf);
  const who = nameOf((entry.leadIds || [])[0]);
  if (status === 409 && entry.kind === "status") {
    const current = b.currentStatus;
    if (b.type === "/problems/status-conflict" || (current && entry.from && current !== entry.from))
      return ["error", `Someone moved ${who} to ${current} first: it cannot go to ${entry.body.status} now.`, []];
    return ["error", `${who} cannot move to ${entry.body.status} from ${current}.`, []];
  }
  if (status === 409 && entry.kind === "bulk") {
    const failed = b.failed || [];
    return ["error", `No lead was moved: ${failed.length} of ${entry.body.leadIds.length} cannot go to ${entry.body.status}.`,
      failed.map((f) => `${nameOf(f.leadId)}: ${BULK_REASON(f.reason)}`)];
  }
  if (status === 409 && b.type === "/problems/opted-out") return ["error", `${who} has opted out of SMS (replied STOP): nothing was sent.`, []];
  if (status === 409 && b.type === "/problems/appointment-not-scheduled" && entry.kind === "confirm")
    return ["error", `This appointment is ${b.currentStatus || "no longer scheduled"}: it cannot be confirmed.`, []];
  if (status === 409 && b.type === "/problems/appointment-in-the-past" && entry.kind === "confirm") return ["error", "This appointment has already started: it can no longer be confirmed.", []];
  const refused = refusal(entry, b);
  if (refused) return ["error", refused, []];
  if (status === 404) return ["error", LEAD_KINDS.has(entry.kind) ? `${entry.label}: ${who} no longer exists.`
    : `${entry.label}: it no longer exists${b.detail ? ` (${b.detail})` : ""}.`, []];
  if (status === 422 && b.type === "/problems/sms-refused") return ["error", `The SMS to ${who} was refused by the provider: ${b.detail || "the number cannot receive it"}.`, []];
  if (status === 422) return ["error", `${entry.label}: not accepted. ${b.detail || ""}`.trim(), (b.errors || []).map((e) => `${e.field}: ${e.message}`)];
  if (status === 503 && b.type === "/problems/command-parked")
    return ["error", `${entry.label}: the service could not carry it out after several tries; an operator has it.`, []];
  return ["error", `${entry.label}: it did not work (${b.title || "error " + status}). ${b.detail || ""}`.trim(), []];
}

function success(entry, b, nameOf) {
  const who = nameOf((entry.leadIds || [])[0]);
  switch (entry.kind) {
    case "status": return ["success", `${who} is now ${entry.body.status}.`, []];
    case "bulk": return ["success", b.updated === 0 ? `All ${entry.body.leadIds.length} were already ${entry.body.status}.`
      : `${b.updated} lead${b.updated === 1 ? "" : "s"} moved to ${entry.body.status}.`, []];
    case "sms": return b.sms && b.sms.status === "queued"
      ? ["success", `The SMS to ${who} is queued: the provider is unavailable, it is sent by itself when it is back.`, []]
      : ["success", `SMS sent to ${who}.`, []];
    case "confirm": return ["success", `Appointment with ${who} confirmed${entry.body.sendSms ? "; the lead is being texted" : ""}.`, []];
    case "create": return ["success", `${entry.body.name} was added.`, []];
    case "book": return ["success", `${who} is booked for ${when(entry.body.startsAt)}.`, []];
    case "reschedule": {
      const clashes = b.clashes || [];
      const moved = `The appointment with ${who} is moved to ${when(entry.body.startsAt)}`;
      return clashes.length ? ["warning", `${moved}, but it overlaps ${clashes.length === 1 ? "another appointment" : `${clashes.length} other appointments`} of ${who}:`,
        clashes.map((c) => `${when(c.starts_at)}, ${c.duration_minutes} min (${c.status.replace("_", " ")})`)] : ["success", `${moved}.`, []];
    }
    case "cancel": return ["success", `The appointment with ${who} is cancelled.`, []];
    case "complete": return ["success", `The appointment with ${who} is marked completed.`, []];
    case "no_show": return ["success", `The appointment with ${who} is marked a no-show.`, []];
    case "proposal": return ["success", `Proposal "${entry.title}" sent to ${who}.`, []];
    case "accept": return ["success", `"${entry.title}" is accepted; ${who} moves to won.`, []];
    case "decline": return ["success", `"${entry.title}" is declined; ${who} moves to lost.`, []];
    case "payment": return ["success", `Payment of ${money(entry.body.amountMinor, entry)} recorded on "${entry.title}"` +
      (b.proposal ? `; the balance is now ${money(b.proposal.balance_minor, entry)}.` : "."), []];
    case "refund": return ["success", `${money(entry.body.amountMinor, entry)} refunded on "${entry.title}"` +
      (b.proposal ? `; the balance is now ${money(b.proposal.balance_minor, entry)}.` : "."), []];
    case "contract": return ["success", `A contract for "${entry.title}" is drafted: send it when ready.`, []];
    case "contract_send": return ["success", `The contract for "${entry.title}" is sent.`, []];
    case "contract_sign": return ["success", `The contract for "${entry.title}" is signed by ${entry.body.signerName}.`, []];
    case "contract_void": return ["success", `The contract for "${entry.title}" is void.`, []];
    case "campaign_create": return ["success", `The campaign "${entry.title}" is created: start it when ready.`, []];
    case "campaign_start": return ["success", `"${entry.title}" is started` +
      (b.campaign ? `: ${b.campaign.counts.total} lead${b.campaign.counts.total === 1 ? "" : "s"} to text.` : "."), []];
    case "campaign_pause": return ["success", `"${entry.title}" is paused: nothing more is sent until it is resumed.`, []];
    case "campaign_resume": return ["success", `"${entry.title}" is sending again.`, []];
    case "campaign_cancel": return ["success", `"${entry.title}" is cancelled: nothing more is sent (what was sent stays sent).`, []];
    case "document_upload": return ["success", `${entry.filename} is attached to ${who}.`, []];
    case "document_delete": return ["success", `${entry.filename} is deleted.`, []];
    default: return ["success", `${entry.label}: done.`, []];
  }
}

const money = (minor, entry) => formatMoney(minor, entry.currency);

/** Words for the appointments' and deals' refusals (problem types of shared/problems.py); null for the others. */
function refusal(entry, b) {
  const now = b.currentStatus ? `is ${String(b.currentStatus).replace("_", " ")}` : "";
  switch (b.type) {
    case "/problems/appointment-in-the-past": return "This appointment has already started: it can no longer be moved.";
    case "/problems/appointment-closed": return `This appointment ${now || "is closed"}: it cannot change any more.`;
    case "/problems/appointment-not-started":
      return `This appointment has not started yet: it can be marked ${entry.kind === "no_show" ? "a no-show" : "completed"} once its time has come.`;
    case "/problems/proposal-not-open": return `"${entry.title}" ${now || "was already decided"}: it cannot be ${entry.kind === "accept" ? "accepted" : "declined"} now.`;
    case "/problems/proposal-expired": return `"${entry.title}" has expired: it can no longer be accepted. Send a new proposal.`;
    case "/problems/proposal-not-accepted": return `"${entry.title}" is not accepted: ${entry.kind === "payment" ? "a payment" : "a contract"} needs an accepted proposal.`;
    case "/problems/currency-mismatch": return `${entry.label}: the currency does not match the proposal's. ${b.detail || ""}`.trim();
    case "/problems/overpayment": {
      const balance = Number.isInteger(b.balanceMinor) ? b.balanceMinor : entry.balance;
      return `Not recorded: ${money(entry.body.amountMinor, entry)} is more than the balance left on "${entry.title}"` +
        (Number.isInteger(balance) ? ` (${money(balance, entry)}).` : ".");
    }
    case "/problems/reference-reused":
      return `Not recorded: the reference ${entry.body.externalReference} is already another payment. Nothing was recorded twice; use a new reference for a new payment.`;
    case "/problems/refund-too-large": return `Not refunded: ${money(entry.body.amountMinor, entry)} is more than what is left of that payment` +
      (Number.isInteger(b.refundableMinor) ? ` (${money(b.refundableMinor, entry)}).` : ".");
    case "/problems/contract-closed": return `This contract ${now || "is closed"}: it can no longer change.`;
    case "/problems/campaign-closed": return `"${entry.title}" ${now || "is over"}: it can no longer be ${CAMPAIGN_VERBS[entry.kind] || "changed"}.`;
    case "/problems/campaign-not-started": return `"${entry.title}" was never started: it cannot be ${CAMPAIGN_VERBS[entry.kind] || "changed"}. Start it first.`;
    case "/problems/not-found": return entry.kind === "campaign_create"
      ? `The campaign "${entry.title}" was not created: its template no longer exists. Choose another one.` : null;
    case "/problems/too-large": return `${entry.filename} was not attached: it is too large` +
      (Number.isInteger(b.maxBytes) ? ` (a document may hold at most ${fileSize(b.maxBytes)}).` : ".");
    case "/problems/content-type-mismatch": return `${entry.filename} was refused: it says it is ${fileKind(b.declared)}, ` +
      `but its content is ${b.detected ? fileKind(b.detected) : "something else"}. Check that it is the right file.`;
    case "/problems/unsupported-media-type": return `${entry.filename || entry.label} was refused: ${b.detail || "the server cannot take this kind of upload"}.`;
    case "/problems/conflict": return entry.kind === "contract"
      ? `"${entry.title}" already has a contract in progress: void it first to make another.` : null;
    default: return null;
  }
}

const CAMPAIGN_VERBS = { campaign_start: "started", campaign_pause: "paused", campaign_resume: "resumed", campaign_cancel: "cancelled" };

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
