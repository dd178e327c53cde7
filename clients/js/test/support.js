// A gateway in a function (fetch) and a websocket stand-in: the core's logic tested with no network.
import { IDBFactory } from "fake-indexeddb";
import { createClient } from "../src/index.js";

export function token({ org = "acme", sub = "agent-1", iss } = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256" })}.${b64({ org, sub, ...(iss ? { iss } : {}), exp: 4102444800 })}.sig`;
}

export const json = (status, body, headers = {}) =>
  new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

/** fetch(url, init) answered by `answer(request)` in turn; every request recorded. */
export function gateway(answer) {
  const requests = [];
  const fetch = async (url, init = {}) => {
    const req = { url: String(url), path: new URL(url).pathname + new URL(url).search, method: init.method || "GET",
      headers: init.headers || {}, body: init.body ? JSON.parse(init.body) : undefined };
    requests.push(req);
    return answer(req, requests);
  };
  return { fetch, requests };
}

export function client(fetch, options = {}) {
  return createClient({ url: "http://127.0.0.1:8080", token: token(), fetch, indexedDB: options.indexedDB || new IDBFactory(),
    retry: { baseMs: 1, capMs: 5 }, followMs: 1, WebSocket: options.WebSocket, ...options });
}

/** Resolves when `check()` is truthy; fails after `ms`. */
export async function until(check, ms = 3000, what = "the condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export class FakeSocket {
  static all = [];
  constructor(url) { this.url = url; this.sent = []; this.readyState = 0; FakeSocket.all.push(this); setTimeout(() => { this.readyState = 1; this.onopen?.(); }); }
  send(data) { this.sent.push(JSON.parse(data)); }
  close(code = 1000, reason = "") { if (this.readyState === 3) return; this.readyState = 3; setTimeout(() => this.onclose?.({ code, reason })); }
  receive(frame) { this.onmessage?.({ data: JSON.stringify(frame) }); }
  drop() { this.readyState = 3; this.onclose?.({ code: 1006, reason: "" }); }
}
