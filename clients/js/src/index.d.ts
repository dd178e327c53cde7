// crm-buttons: the types of the core (index.js). The bodies of the buttons are generated (buttons.d.ts).
import type { Bodies, ButtonName, Buttons, ReadName } from "./buttons.js";
export type * from "./buttons.js";
export * from "./problems.js";

export type State = "live" | "reconnecting" | "offline";

/** What a press resolves to: its answer, or kept to be sent when the connection is back. */
export type Result = { state: "done"; status: number; body: any } | { state: "queued"; key: string };

/** Kept with a press and given back in the events; `key` chooses its Idempotency-Key. */
export interface Meta {
  key?: string;
  [name: string]: unknown;
}

/** A press kept in IndexedDB, not yet settled. */
export interface Entry {
  seq: number;
  scope: string;
  key: string;
  button: ButtonName;
  fields: Record<string, unknown>;
  method: string;
  path: string;
  body: unknown;
  state: "pending" | "accepted";
  createdAt: string;
  tries?: number;
  location?: string;
  [meta: string]: unknown;
}

export interface EventFrame {
  type: "event";
  id?: string;
  topic: string;
  epoch?: string;
  position?: number;
  data: any;
  [name: string]: unknown;
}

export interface Welcome {
  epoch: string | null;
  position: number | null;
  recovered: boolean;
  [name: string]: unknown;
}

export interface Events {
  state: State;
  change: Entry[];
  done: { entry: Entry; status: number; body: any };
  queued: { entry: Entry; why: string; first: boolean };
  refused: { entry: Entry; refusal: import("./problems.js").Refusal };
  outcome: { entry: Entry; status: number; body: any; refusal: import("./problems.js").Refusal | null };
  unauthorized: { message: string; entry?: Entry };
  breaker: "closed" | "open" | "half_open";
  welcome: Welcome;
  event: EventFrame;
}

export interface ClientOptions {
  /** The gateway (default: this page's origin). */
  url?: string;
  /** A bearer token with `org` and `sub` claims (and `iss`, which names the deployment). */
  token: string;
  build?: (name: ButtonName, fields: object) => { method: string; path: string; body: unknown } | Promise<{ method: string; path: string; body: unknown }>;
  retry?: { attempts?: number; baseMs?: number; capMs?: number };
  followMs?: number;
  breaker?: { threshold?: number; cooldownMs?: number };
  acceptedWaitMs?: number;
  onlineDelayMs?: number;
  fetch?: typeof fetch;
  indexedDB?: IDBFactory;
  WebSocket?: typeof WebSocket;
  dbName?: string;
}

export interface SubscribeOptions {
  /** Keep the position in IndexedDB, so that a reloaded page resumes (default true). */
  keep?: boolean;
  /** The server could not resume (recovered: false): read your data again. */
  onReload?: () => void;
  onWelcome?: (welcome: Welcome) => void;
}

export interface Client extends Buttons {}
export class Client {
  constructor(options: ClientOptions);
  readonly url: string;
  readonly scope: string;
  readonly state: State;
  readonly breaker: SmsBreaker;
  readonly ready: Promise<void>;
  press<N extends ButtonName>(name: N, body: Bodies[N], meta?: Meta): Promise<Result>;
  keep<N extends ButtonName>(name: N, body: Bodies[N], meta?: Meta): Promise<{ entry: Entry; settled: Promise<Result> }>;
  on<E extends keyof Events>(name: E, fn: (detail: Events[E]) => void): () => void;
  pending(): Promise<Entry[]>;
  flush(): Promise<number>;
  setToken(token: string): void;
  read(name: ReadName | "lead_statuses", fields?: Record<string, unknown>): Promise<any>;
  get(path: string, options?: { attempts?: number }): Promise<{ status: number; body: any; headers: Headers }>;
  blob(path: string): Promise<{ status: number; blob?: Blob; body?: any }>;
  subscribe(topics: string[], onEvent: (event: EventFrame) => void, options?: SubscribeOptions): () => void;
  href(path: string): string;
  close(): void;
}

export function createClient(options: ClientOptions): Client;
export function claims(token: string): { org: string; sub: string; iss?: string; exp?: number; [claim: string]: unknown } | null;
export function scopeOf(url: string, token: string): string;
export function buildPress(name: ButtonName, fields: object): { method: string; path: string; body: unknown };
export function pathOf(name: string, fields?: Record<string, unknown>): string;

export class SmsPaused extends Error {
  readonly remainingMs: number;
}
export class SmsBreaker {
  constructor(options?: { threshold?: number; cooldownMs?: number; onChange?: (state: string) => void });
  readonly state: "closed" | "open" | "half_open";
  allows(): boolean;
  remainingMs(): number;
  observe(status: number, body: unknown): void;
  providerDown(): void;
  providerUp(): void;
}

export class Undelivered extends Error {}
export const RETRY_STATUSES: readonly number[];
export function newKey(): string;
export function backoff(attempt: number, retryAfter?: string | null, options?: { base?: number; cap?: number }): number;
export function retryable(status: number, body?: unknown): boolean;
export function problemName(type: unknown): string | null;
export function request(method: string, url: string, options?: { token?: string; body?: unknown; key?: string; fetch?: typeof fetch }): Promise<{ status: number; body: any; headers: Headers }>;
export function withRetry(method: string, url: string, options?: { token?: string; body?: unknown; key?: string; fetch?: typeof fetch }, retry?: { attempts?: number; onRetry?: (attempt: number, last: unknown) => void; base?: number; cap?: number }): Promise<{ status: number; body: any; headers: Headers }>;
export function follow(location: string, token: string, options?: { stopped?: () => boolean; fetch?: typeof fetch; base?: number }): Promise<{ status: number; body: any; headers: Headers }>;
export function getBlob(url: string, token: string, options?: { attempts?: number; fetch?: typeof fetch }): Promise<{ status: number; blob?: Blob; body?: any }>;

type Row = { method: string; path: string; fields: string[]; [column: string]: unknown };
export const BUTTONS: Readonly<Record<ButtonName, Row>>;
export const READS: Readonly<Record<ReadName, Row>>;
export const ROUTES: Readonly<Record<string, Row>>;
export const PROBLEMS: Readonly<Record<string, { name: string; status: number; title: string }>>;
