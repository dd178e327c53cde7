// The one HTTP core: requests with the token, retries that are safe, 202s followed to their answer.
//
// A POST carries the Idempotency-Key of its press (made once, kept by queue.js): every retry
// sends the same key, so the gateway answers a retry with the first answer, never a second effect.
// Retried by themselves: network errors, 429 and 5xx (honouring Retry-After), with exponential
// backoff and full jitter. Anything else is the answer.

import { problem } from "./table.js";

export class Unauthorized extends Error {}
export class Undelivered extends Error {} // no answer after the attempts allowed: the caller keeps the press

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

/** Full jitter: anywhere in [0, min(cap, base * 2^attempt)], but never sooner than the server's Retry-After. */
export function backoff(attempt, retryAfter = null, { base = BASE_MS, cap = CAP_MS } = {}) {
  const jittered = Math.random() * Math.min(cap, base * 2 ** attempt);
  const told = retryAfterMs(retryAfter);
  return told === null ? jittered : Math.min(Math.max(jittered, told), Math.max(cap, told));
}

function retryAfterMs(value) {
  if (value == null || value === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

export const retryable = (status) => status === 429 || status >= 500;

/** One attempt (`body`: an object sent as JSON, or FormData). Resolves with {status, body, headers}; rejects (TypeError) on a network error. */
export async function request(method, path, { token, body, key } = {}) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  const form = body instanceof FormData; // a multipart upload: the browser writes its Content-Type (with the boundary)
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const response = await fetch(path, { method, headers, body: body === undefined || form ? body : JSON.stringify(body),
    cache: "no-store" });
  const text = await response.text(); // a connection cut mid-body throws here: a network error too
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { detail: text.slice(0, 300) }; }
  if (response.status === 401) throw new Unauthorized((parsed && parsed.detail) || "the token was not accepted");
  return { status: response.status, body: parsed, headers: response.headers };
}

/** Try `attempts` times; the last answer that is not retryable, or Undelivered. */
export async function withRetry(method, path, options = {}, { attempts = 4, onRetry = () => {} } = {}) {
  let last = null;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) await sleep(backoff(attempt - 1, last && last.headers.get("Retry-After")));
    if (!navigator.onLine) break; // no use trying now: the queue tries again when the page is back
    try {
      last = await request(method, path, options);
      if (!retryable(last.status)) return last;
    } catch (err) {
      if (err instanceof Unauthorized) throw err;
      last = null;
    }
    onRetry(attempt + 1, last);
  }
  throw new Undelivered(last ? `the server answered ${last.status}` : "the network is unreachable");
}

/** Poll a 202's Location until the command has its answer (202 while it has none). */
export async function follow(location, token, { stopped = () => false } = {}) {
  for (let attempt = 0; !stopped(); attempt++) {
    await sleep(Math.min(5000, 300 * 2 ** Math.min(attempt, 5)));
    let res;
    try { res = await request("GET", location, { token }); } catch (err) {
      if (err instanceof Unauthorized) throw err;
      continue; // the network again: keep asking
    }
    if (res.status !== 202 && !retryable(res.status)) return res;
    if (res.status === 503 && res.body && problem(res.body.type) === "CommandParked") return res; // final, though a 503
  }
  throw new Undelivered("stopped");
}

/** A read, retried a few times. */
export async function get(path, token) {
  const res = await withRetry("GET", path, { token }, { attempts: 3 });
  return res;
}

/** A file's bytes (GET with the token), retried like a read: {status, blob} when 200, else {status, body} (the problem). */
export async function getBlob(path, token, { attempts = 3 } = {}) {
  let last = null;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) await sleep(backoff(attempt - 1, last && last.headers.get("Retry-After")));
    try {
      const response = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
      if (response.status === 401) throw new Unauthorized("the token was not accepted");
      if (response.status === 200) return { status: 200, blob: await response.blob() };
      last = response;
      if (!retryable(response.status)) return { status: response.status, body: await response.json().catch(() => ({})) };
    } catch (err) {
      if (err instanceof Unauthorized) throw err;
      last = null;
    }
  }
  throw new Undelivered(last ? `the server answered ${last.status}` : "the network is unreachable");
}
