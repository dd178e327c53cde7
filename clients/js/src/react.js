// React wrappers: thin components over the custom elements (elements.js), and the client in a context.
//
//   <CrmProvider client={client}>            registers the elements with this client; realtime from the root:
//     useCrmEvents(["leads.*"], onEvent, { onReload })      and useCrmState() → "live" | "reconnecting" | "offline"
//     <LeadStatusButton leadId={id} currentStatus="new" onDone={...} onRefused={...} />
//   </CrmProvider>
//
// React is a peer dependency; no JSX here, so the file runs as it is (a bundler resolves "react").
import { createContext, createElement, useContext, useEffect, useRef, useState } from "react";
import { defineElements } from "./elements.js";

const ClientContext = createContext(null);

export function CrmProvider({ client, children }) {
  if (client && typeof customElements !== "undefined") defineElements(client); // idempotent; before the children render
  return createElement(ClientContext.Provider, { value: client }, children);
}

export function useCrmClient() {
  const client = useContext(ClientContext);
  if (!client) throw new Error("crm-buttons/react: wrap the app in <CrmProvider client={createClient(...)}>");
  return client;
}

/** Subscribe at the app's root: onEvent(frame) for each event, onReload() when the app must read its data again. */
export function useCrmEvents(topics, onEvent, { onReload, keep = true } = {}) {
  const client = useCrmClient();
  const handlers = useRef({ onEvent, onReload });
  handlers.current = { onEvent, onReload };
  const key = JSON.stringify(topics);
  useEffect(() => client.subscribe(JSON.parse(key), (e) => handlers.current.onEvent?.(e),
    { keep, onReload: () => handlers.current.onReload?.() }), [client, key, keep]);
}

/** "live", "reconnecting" or "offline", as the subscriptions see it. */
export function useCrmState() {
  const client = useCrmClient();
  const [state, setState] = useState(client.state);
  useEffect(() => client.on("state", setState), [client]);
  return state;
}

const EVENTS = { onDone: "crm-done", onQueued: "crm-queued", onRefused: "crm-refused" };

/** A component for the element `tag`: its props turned into attributes by `attributes(props)`. */
function wrap(tag, attributes, displayName) {
  function Component(props) {
    const ref = useRef(null);
    const handlers = useRef(props);
    handlers.current = props;
    useEffect(() => {
      const el = ref.current;
      const offs = Object.entries(EVENTS).map(([prop, name]) => {
        const listener = (e) => handlers.current[prop]?.(e.detail, e);
        el.addEventListener(name, listener);
        return () => el.removeEventListener(name, listener);
      });
      return () => offs.forEach((off) => off());
    }, []);
    const attrs = Object.fromEntries(Object.entries(attributes(props)).filter(([, v]) => v !== undefined && v !== null && v !== false)
      .map(([k, v]) => [k, v === true ? "" : String(v)]));
    return createElement(tag, { ref, ...attrs, className: props.className, label: props.label, style: props.style });
  }
  Component.displayName = displayName;
  return Component;
}

export const BookingConfirmButton = wrap("crm-booking-confirm",
  (p) => ({ "appointment-id": p.appointmentId, "send-sms": p.sendSms }), "BookingConfirmButton");
export const SendSMSButton = wrap("crm-send-sms",
  (p) => ({ "lead-id": p.leadId, message: p.message, "template-id": p.templateId }), "SendSMSButton");
export const LeadStatusButton = wrap("crm-lead-status",
  (p) => ({ "lead-id": p.leadId, "current-status": p.currentStatus }), "LeadStatusButton");
export const LeadStatusBulkUpdateButton = wrap("crm-lead-bulk-status",
  (p) => ({ "lead-ids": Array.isArray(p.leadIds) ? p.leadIds.join(",") : p.leadIds, "target-status": p.targetStatus }),
  "LeadStatusBulkUpdateButton");
