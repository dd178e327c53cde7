// A React app that installed crm-buttons from npm: the client at the root, the components in the screen.
import { useState } from "react";
import { createRoot } from "react-dom/client";
import { createClient } from "crm-buttons";
import { BookingConfirmButton, CrmProvider, LeadStatusBulkUpdateButton, LeadStatusButton, SendSMSButton, useCrmEvents,
  useCrmState } from "crm-buttons/react";

const q = new URLSearchParams(location.search);
const client = createClient({ url: q.get("gateway") || "http://127.0.0.1:8080", token: q.get("token") });
window.crmClient = client; // for the browser tests

function Screen() {
  const state = useCrmState();
  const [events, setEvents] = useState([]);
  const [said, setSaid] = useState("");
  useCrmEvents(["leads.*"], (e) => setEvents((all) => [...all, e.topic]));
  const lead = q.get("lead");
  return (
    <main>
      <p>Connection: <strong data-testid="state">{state}</strong> · <span data-testid="said">{said}</span></p>
      <BookingConfirmButton appointmentId={q.get("appointment")} sendSms onDone={() => setSaid("confirmed")} />
      <SendSMSButton leadId={lead} message="Hello from React" onRefused={(d) => setSaid(`refused ${d.status}`)} />
      <LeadStatusButton leadId={lead} currentStatus={q.get("status") || "new"} onDone={(d) => setSaid(`moved to ${d.body.lead.status}`)} />
      <LeadStatusBulkUpdateButton leadIds={(q.get("leads") || "").split(",")} targetStatus="lost" />
      <ol data-testid="events">{events.map((t, i) => <li key={i}>{t}</li>)}</ol>
    </main>
  );
}

createRoot(document.getElementById("root")).render(<CrmProvider client={client}><Screen /></CrmProvider>);
