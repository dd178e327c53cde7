// Checked by `tsc --noEmit` (make test): the declarations as an application uses them.
import { createClient, ForbiddenMove, Refusal, type Result } from "crm-buttons";
import { defineElements } from "crm-buttons/elements";
import { BookingConfirmButton, CrmProvider, LeadStatusBulkUpdateButton, useCrmState } from "crm-buttons/react";
import { createElement } from "react";

const client = createClient({ url: "https://crm.example.com", token: "a.b.c" });
const pressed: Promise<Result> = client.updateLeadStatus({ leadId: "L1", status: "contacted" });
pressed.then((r) => (r.state === "done" ? r.status : r.key)).catch((err: unknown) => {
  if (err instanceof ForbiddenMove) console.log(err.status, err.problem?.detail);
  else if (err instanceof Refusal) console.log(err.type);
});
client.press("confirm_booking", { appointmentId: "A1", sendSms: true });
// @ts-expect-error: a button's body is checked
client.press("send_sms", { appointment: "A1" });
const off: () => void = client.on("state", (s) => s === "live");
off();
client.subscribe(["leads.*"], (e) => e.topic, { onReload: () => undefined });
defineElements(client);
const state: "live" | "reconnecting" | "offline" = useCrmState();
createElement(CrmProvider, { client }, createElement(BookingConfirmButton, { appointmentId: "A1", onDone: (d) => d.status }));
createElement(LeadStatusBulkUpdateButton, { leadIds: ["a"], targetStatus: "lost" });
export { state };
