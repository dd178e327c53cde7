// The one HTTP core: requests with the token, retries that are safe, 202s followed to their answer.
//
// A POST carries the Idempotency-Key of its press (made once, kept by queue.js before it leaves):
// every retry sends the same key, so the gateway answers a retry with the first answer, never a
// second effect. The retry table (the Python client's too, crm_client/http.py):
//
//   network error, 429, 500, 502, 503, 504 ──► again, after full-jitter backoff (never sooner than Retry-After)
//   a final problem among them (503 /problems/command-parked) ──► the answer
//   anything else (2xx, 202, 4xx) ──► the answer

import { Unauthorized } from "./problems.js";
import { PROBLEMS } from "./table.js";

export class Undelivered extends Error {} // no answer after the attempts allowed: the caller keeps the press

export const RETRY_STATUSES = Object.freeze([429, 500, 502, 503, 504]);
const FINAL = new Set(["CommandParked"]); // problems answered with a retryable status that no waiting changes
const BASE_MS = 400;
const CAP_MS = 30000;

export function newKey() { // crypto.randomUUID exists only in secure contexts (https, localhost)
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const online = () => globalThis.navigator?.onLine !== false; // Node has no navigator: online

/** Full jitter: anywhere in [0, min(cap, base * 2^attempt)], but never sooner than the server's Retry-After. */
export function backoff(attempt, retryAfter = null, { base = BASE_MS, cap = CAP_MS } = {}) {
  const jittered = Math.random() * Math.min(cap, base * 2 ** attempt);
  const told = retryAfterMs(retryAfter);
  return told === null ? jittered : Math.min(Math.max(jittered, told), Math.max(cap, told));
}

export function retryAfterMs(value) {
  if (value == null || value === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

/** The name of a problem type in the server's table ("OptedOut"...), null when unknown. */
export function problemName(type) {
  const known = typeof type === "string" && Object.hasOwn(PROBLEMS, type) ? PROBLEMS[type] : null;
  return known ? known.name : null;
}

/** Whether an answer is worth asking again: its status is in the table, and it is not a final problem. */
export function retryable(status, body = null) {
  if (!RETRY_STATUSES.includes(status)) return false;
  const name = problemName(body && body.type);
  return !(name && FINAL.has(name) && PROBLEMS[body.type].status === status);
}

/** One attempt (`body`: an object sent as JSON, or FormData). Resolves with {status, body, headers}; rejects
 * (TypeError) on a network error, Unauthorized on a 401. */
export async function request(method, url, { token, body, key, fetch: fetcher = globalThis.fetch } = {}) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  const form = typeof FormData !== "undefined" && body instanceof FormData; // the browser writes its Content-Type
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const response = await fetcher(url, { method, headers, body: body === undefined || form ? body : JSON.stringify(body),
    cache: "no-store" });
  const text = await response.text(); // a connection cut mid-body throws here: a network error too
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { detail: text.slice(0, 300) }; }
  if (response.status === 401) throw unauthorized(parsed);
  return { status: response.status, body: parsed, headers: response.headers };
}

/** 401: the token was refused (a press is kept; a new token sends it). */
function unauthorized(body) {
  return new Unauthorized(401, body && typeof body === "object" && body.detail ? body : { detail: "the token was not accepted" });
}

/** Try `attempts` times; the last answer that is not retryable, or Undelivered. */
export async function withRetry(method, url, options = {}, { attempts = 4, onRetry = () => {}, base, cap } = {}) {
  let last = null;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) await sleep(backoff(attempt - 1, last && last.headers.get("Retry-After"), { base, cap }));
    if (!online()) break; // no use trying now: the queue tries again when the page is back
    try {
      last = await request(method, url, options);
      if (!retryable(last.status, last.body)) return last;
    } catch (err) {
      if (err instanceof Unauthorized) throw err;
      last = null;
    }
    onRetry(attempt + 1, last);
  }
  throw new Undelivered(last ? `the server answered ${last.status}` : "the network is unreachable");
}

/** Poll a 202's Location until the command has its answer (202 while it has none), or `stopped()`. */
export async function follow(location, token, { stopped = () => false, fetch, base = 300 } = {}) {
  for (let attempt = 0; !stopped(); attempt++) {
    await sleep(Math.min(5000, base * 2 ** Math.min(attempt, 5)));
    if (stopped()) break;
    let res;
    try { res = await request("GET", location, { token, fetch }); } catch (err) {
      if (err instanceof Unauthorized) throw err;
      continue; // the network again: keep asking
    }
    if (res.status !== 202 && !retryable(res.status, res.body)) return res;
  }
  throw new Undelivered("stopped");
}

/** A file's bytes (GET with the token), retried like a read: {status, blob} when 200, else {status, body} (the problem). */
export async function getBlob(url, token, { attempts = 3, fetch: fetcher = globalThis.fetch } = {}) {
  let last = null;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) await sleep(backoff(attempt - 1, last && last.headers.get("Retry-After")));
    try {
      const response = await fetcher(url, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
      if (response.status === 401) throw unauthorized(await response.json().catch(() => null));
      if (response.status === 200) return { status: 200, blob: await response.blob() };
      last = response;
      if (!RETRY_STATUSES.includes(response.status)) return { status: response.status, body: await response.json().catch(() => ({})) };
    } catch (err) {
      if (err instanceof Unauthorized) throw err;
      last = null;
    }
  }
  throw new Undelivered(last ? `the server answered ${last.status}` : "the network is unreachable");
}
