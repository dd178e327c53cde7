// What an answer means, in words a person understands (not a status code).

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
  if (status === 409 && b.type === "/problems/appointment-not-scheduled")
    return ["error", `This appointment is ${b.currentStatus || "no longer scheduled"}: it cannot be confirmed.`, []];
  if (status === 409 && b.type === "/problems/appointment-in-the-past") return ["error", "This appointment has already started: it can no longer be confirmed.", []];
  if (status === 404) return ["error", `${entry.label}: ${who} no longer exists.`, []];
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
    default: return ["success", `${entry.label}: done.`, []];
  }
}
