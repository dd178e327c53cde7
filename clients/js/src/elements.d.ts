import type { Client } from "./index.js";

/** Register <crm-booking-confirm>, <crm-send-sms>, <crm-lead-status>, <crm-lead-bulk-status> and <crm-press>,
 * pressing through `client` (called again with another client, they all move to it). */
export function defineElements(client: Client): void;
export function refusalWords(err: unknown): string;

export type ElementState = "idle" | "pending" | "queued" | "done" | "refused";
declare class CrmElement extends HTMLElement {
  press(): Promise<void>;
}
export class BookingConfirmElement extends CrmElement {}
export class SendSmsElement extends CrmElement {}
export class LeadStatusElement extends CrmElement {}
export class LeadBulkStatusElement extends CrmElement {}
export class PressElement extends CrmElement {}
export const ELEMENTS: Readonly<Record<string, typeof CrmElement>>;
