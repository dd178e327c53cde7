import type { ReactElement, ReactNode, CSSProperties } from "react";
import type { Client, EventFrame, State } from "./index.js";
import type { Refusal } from "./problems.js";

export interface CrmEvents {
  onDone?: (detail: { status: number; body: any }, event: Event) => void;
  onQueued?: (detail: { key: string }, event: Event) => void;
  onRefused?: (detail: { status: number | null; problem: any; refusal: Refusal | Error }, event: Event) => void;
  className?: string;
  style?: CSSProperties;
  label?: string;
}

export function CrmProvider(props: { client: Client; children?: ReactNode }): ReactElement;
export function useCrmClient(): Client;
export function useCrmEvents(topics: string[], onEvent: (event: EventFrame) => void, options?: { onReload?: () => void; keep?: boolean }): void;
export function useCrmState(): State;

export function BookingConfirmButton(props: CrmEvents & { appointmentId: string; sendSms?: boolean }): ReactElement;
export function SendSMSButton(props: CrmEvents & { leadId: string; message?: string; templateId?: string }): ReactElement;
export function LeadStatusButton(props: CrmEvents & { leadId: string; currentStatus: string }): ReactElement;
export function LeadStatusBulkUpdateButton(props: CrmEvents & { leadIds: string[] | string; targetStatus: string }): ReactElement;
