// crm-buttons: the client half of the promise, for any front end.
//
//   const client = createClient({ url: "https://crm.example.com", token });
//   await client.updateLeadStatus({ leadId, status: "contacted" }); // {state: "done", status, body} or {state: "queued", key}
//   client.subscribe(["leads.*"], (event) => ..., { onReload: () => reloadData() });
//   client.on("state", (s) => ...);                                  // "live", "reconnecting", "offline"
//
// A press is kept in IndexedDB (with its one Idempotency-Key) before its request leaves, sent in order,
// retried (http.js's table), replayed after a reload or a night offline, and settled once: resolved
// with its answer, or rejected with its refusal (a class of problems.js, never retried). Queues and
// positions belong to a scope: (deployment, organisation, user), the deployment being the token's
// issuer when it has one, else the gateway's origin, so another address of the same deployment (a
// failover, localhost or 127.0.0.1) finds the same presses.
import { SmsBreaker, SmsPaused } from "./breaker.js";
import { getBlob, newKey, online, withRetry } from "./http.js";
import { Live } from "./live.js";
import { Unauthorized, refusal } from "./problems.js";
import { Queue } from "./queue.js";
import { Store } from "./store.js";
import { BUTTONS, READS, ROUTES } from "./table.js";

export * from "./problems.js";
export { SmsBreaker, SmsPaused } from "./breaker.js";
export { RETRY_STATUSES, Undelivered, backoff, follow, getBlob, newKey, problemName, request, retryable, withRetry } from "./http.js";
export { BUTTONS, PROBLEMS, READS, ROUTES } from "./table.js";

const ACCEPTED_WAIT_MS = 10000; // a 202: how long a press waits for the answer before it resolves "queued"
const ONLINE_DELAY_MS = 1000; // after the browser's `online`, the kept presses go this much later

/** The claims of a JWT (not verified: the gateway does that), or null when it is not one with org and sub. */
export function claims(token) {
  try {
    const part = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const text = atob(part + "=".repeat((4 - (part.length % 4)) % 4));
    const c = JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (ch) => ch.charCodeAt(0))));
    return c && typeof c.org === "string" && typeof c.sub === "string" ? c : null;
  } catch { return null; }
}

/** (deployment, organisation, user): the token's issuer, else the gateway's origin; then org and sub. */
export function scopeOf(url, token) {
  const c = claims(token);
  if (!c) throw new TypeError("crm-buttons: the token is not an access token with `org` and `sub` claims");
  const deployment = typeof c.iss === "string" && c.iss ? `iss:${c.iss}` : new URL(url).origin;
  return `${deployment}\n${c.org}\n${c.sub}`;
}

const camel = (name) => name.replace(/_([a-z])/g, (_, ch) => ch.toUpperCase());

function fill(path, names, fields) {
  return names.reduce((p, n) => {
    if (fields[n] == null || fields[n] === "") throw new TypeError(`crm-buttons: ${n} is required`);
    return p.replace(`{${n}}`, encodeURIComponent(fields[n]));
  }, path);
}

/** The request of a press of button `name`: {method, path, body}; the path's fields taken from `fields`. */
export function buildPress(name, fields = {}, buttons = BUTTONS) {
  const b = Object.hasOwn(buttons, name) ? buttons[name] : null;
  if (!b) throw new TypeError(`crm-buttons: no button ${String(name).slice(0, 64)} in the server's table`);
  if (b.upload) throw new TypeError(`crm-buttons: ${name} uploads a file: send it with withRetry and a FormData`);
  if (!fields || typeof fields !== "object" || Array.isArray(fields)) throw new TypeError(`crm-buttons: ${name} takes an object`);
  const body = { ...fields };
  for (const n of b.fields) delete body[n];
  return { method: b.method, path: fill(b.path, b.fields, fields), body };
}

/** The path of a read (or another route) `name`: its fields in the path, the query parameters given in the query. */
export function pathOf(name, fields = {}) {
  const r = Object.hasOwn(READS, name) ? READS[name] : Object.hasOwn(ROUTES, name) ? ROUTES[name] : null;
  if (!r) throw new TypeError(`crm-buttons: no read ${String(name).slice(0, 64)} in the server's table`);
  const query = (r.query || []).filter((n) => fields[n] != null).map((n) => `${n}=${encodeURIComponent(fields[n])}`);
  return fill(r.path, r.fields, fields) + (query.length ? "?" + query.join("&") : "");
}

export class Client {
  /**
   * url: the gateway (default: this page's origin); token: a bearer token with org and sub.
   * Optional: build(name, fields) → {method, path, body} (default: this release's table); retry {attempts, baseMs,
   * capMs}; followMs (the first wait polling a 202); breaker {threshold, cooldownMs}; acceptedWaitMs; onlineDelayMs; and, outside a
   * browser, fetch, indexedDB, WebSocket; dbName.
   */
  constructor({ url = globalThis.location && globalThis.location.origin, token, build, retry = {}, followMs, breaker = {},
    acceptedWaitMs = ACCEPTED_WAIT_MS, onlineDelayMs = ONLINE_DELAY_MS, fetch = globalThis.fetch?.bind(globalThis), indexedDB = globalThis.indexedDB,
    WebSocket = globalThis.WebSocket, dbName } = {}) {
    if (!url) throw new TypeError("crm-buttons: createClient needs the gateway's url");
    this.url = new URL(url).origin; // the API is at /api, the websocket at /ws
    this.scope = scopeOf(this.url, token);
    this.token = token;
    this.build = build || ((name, fields) => buildPress(name, fields));
    this.fetch = fetch; this.WebSocket = WebSocket; this.acceptedWaitMs = acceptedWaitMs;
    this.listeners = new Map(); this.waiting = new Map(); this.subscriptions = new Set(); this.state = online() ? "reconnecting" : "offline";
    this.breaker = new SmsBreaker({ ...breaker, onChange: (state) => this._emit("breaker", state) });
    this.store = new Store(indexedDB, dbName);
    this.queue = new Queue({
      store: this.store, scope: this.scope, emit: (name, detail) => this._queueEvent(name, detail),
      http: { token: () => this.token, url: (path) => this.href(path), fetch: this.fetch, attempts: retry.attempts,
        base: retry.baseMs, cap: retry.capMs, followMs },
    });
    // Back online: the kept presses go, a moment later (a page being left sees `online` too, for instance when
    // its browser's offline emulation is lifted for a reload; the moment lets it go first), never after pagehide.
    this.onOnline = () => {
      clearTimeout(this.onlineTimer);
      this.onlineTimer = setTimeout(() => { if (online()) this.queue.kick(); }, onlineDelayMs);
    };
    this.onPageHide = () => clearTimeout(this.onlineTimer);
    if (typeof globalThis.addEventListener === "function") {
      globalThis.addEventListener("online", this.onOnline);
      globalThis.addEventListener("pagehide", this.onPageHide);
    }
    this.ready = this.store.open().then(() => this.queue.open());
    this.ready.catch(() => {}); // reported by the calls that wait on it
  }

  href(path) { return new URL(path, this.url).href; }

  /** Listen: "state" (live | reconnecting | offline), "change" (the presses kept), "done", "queued" ({entry, why,
   * first}: not delivered now, `first` at its first failure; or why "accepted": a 202, followed), "refused",
   * "outcome" (every settled press: {entry, status, body, refusal}), "unauthorized", "breaker", "welcome", "event"
   * (every event a subscription applies: the elements follow their lead's status by it).
   * Returns the function that stops listening. */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  _emit(name, detail) {
    for (const fn of [...(this.listeners.get(name) || [])]) {
      try { fn(detail); } catch (err) { setTimeout(() => { throw err; }); } // a listener's error is its own
    }
  }

  /** Press the button `name` with its body. Resolves {state: "done", status, body} or {state: "queued", key};
   * rejects with a Refusal (its class from the server's table), or SmsPaused, or a TypeError for a bad call.
   * `meta` is kept with the press and given back in the events (`key` to choose its Idempotency-Key). */
  async press(name, body, meta = {}) {
    return (await this.keep(name, body, meta)).settled;
  }

  /** What press() does, resolving as soon as the press is kept in IndexedDB: {entry, settled}, `settled` being
   * the promise press() returns (whoever does not wait on it catches it). */
  async keep(name, body, meta = {}) {
    const request = await this.build(name, body);
    if (name === "send_sms" && !this.breaker.allows()) throw new SmsPaused(this.breaker.remainingMs());
    await this.ready;
    const key = meta.key || newKey();
    const settled = new Promise((resolve, reject) => this.waiting.set(key, { resolve, reject }));
    const entry = await this.queue.add({ ...meta, ...request, key, button: name, fields: body });
    if (this.queue.stopped) this._settle(key, "resolve", { state: "queued", key }); // kept until a new token
    return { entry, settled };
  }

  _settle(key, how, value) {
    const waiter = this.waiting.get(key);
    if (!waiter) return;
    this.waiting.delete(key);
    waiter[how](value);
  }

  _queueEvent(name, detail) {
    if (name === "change") return this._emit("change", [...detail]);
    if (name === "queued") {
      const { entry, why } = detail;
      if (why === "accepted") setTimeout(() => this._settle(entry.key, "resolve", { state: "queued", key: entry.key }), this.acceptedWaitMs);
      else { // the queue waits at this press: those behind it wait too
        for (const e of this.queue.entries) if (e.state === "pending") this._settle(e.key, "resolve", { state: "queued", key: e.key });
      }
      return this._emit("queued", detail);
    }
    if (name === "unauthorized") {
      const err = new Unauthorized(401, { detail: detail.message });
      for (const key of [...this.waiting.keys()]) {
        if (key === detail.entry.key) this._settle(key, "reject", err);
        else this._settle(key, "resolve", { state: "queued", key });
      }
      return this._emit("unauthorized", detail);
    }
    if (name === "settled") {
      const { entry, status, body } = detail;
      if (entry.button === "send_sms") this.breaker.observe(status, body);
      const refused = status >= 400 ? refusal(status, body) : null;
      this._emit("outcome", { entry, status, body, refusal: refused });
      if (refused) {
        this._emit("refused", { entry, refusal: refused });
        this._settle(entry.key, "reject", refused);
      } else {
        this._emit("done", { entry, status, body });
        this._settle(entry.key, "resolve", { state: "done", status, body });
      }
    }
  }

  /** The presses kept for this scope, in order, not yet settled. */
  async pending() { await this.ready; return this.queue.entries.map((e) => ({ ...e })); }

  /** Send what is kept now; resolves with the number still kept when the queue has stopped sending. */
  async flush() { await this.ready; return this.queue.resume(); }

  /** A new token for the same identity (an expired one refused): the presses kept go with it. */
  setToken(token) {
    if (scopeOf(this.url, token) !== this.scope) throw new TypeError("crm-buttons: another identity needs another client");
    this.token = token;
    this.queue.resume();
  }

  /** The body (200) of the read `name` (e.g. "get_lead", {leadId}); rejects with its Refusal, or Undelivered. */
  async read(name, fields = {}) {
    const res = await this.get(pathOf(name, fields));
    if (res.status >= 200 && res.status < 300) return res.body;
    throw refusal(res.status, res.body);
  }

  /** A GET of `path`, retried by the table: {status, body, headers}. */
  get(path, { attempts = 3 } = {}) {
    return withRetry("GET", this.href(path), { token: this.token, fetch: this.fetch }, { attempts });
  }

  /** A file's bytes: {status, blob} when 200, else {status, body}. */
  blob(path) { return getBlob(this.href(path), this.token, { fetch: this.fetch }); }

  /** Events of `topics` ("leads.*", "sms.#"...) to onEvent(frame), resumed with no gap after a drop and, with `keep`
   * (the default), after a reload: the position is kept in IndexedDB. onReload() when the server could not resume
   * (recovered: false: read your data again). Returns the function that unsubscribes. */
  subscribe(topics, onEvent, { keep = true, onReload = () => {}, onWelcome = () => {} } = {}) {
    if (!Array.isArray(topics) || !topics.length || !topics.every((t) => typeof t === "string")) {
      throw new TypeError("crm-buttons: subscribe takes a list of topic patterns");
    }
    const id = `${this.scope}\n${[...topics].sort().join(",")}`;
    const ws = new URL("/ws", this.url);
    ws.protocol = ws.protocol === "https:" ? "wss:" : "ws:";
    let live = null, stopped = false;
    const start = async () => {
      const cursor = keep ? await this.ready.then(() => this.store.position(id)).catch(() => null) : null;
      if (stopped) return;
      live = new Live({
        url: ws.href, token: () => this.token, topics: [...topics], cursor: cursor && { epoch: cursor.epoch, position: cursor.position },
        keep: keep ? (c) => { this.store.keepPosition(id, c).catch(() => {}); } : () => {},
        onEvent: (frame) => { try { onEvent(frame); } finally { this._emit("event", frame); } }, onReload,
        onWelcome: (w) => { onWelcome(w); this._emit("welcome", w); },
        onState: (state) => { this.state = state; this._emit("state", state); if (state === "live") this.queue.kick(); },
        onAuthFailed: (message) => this._emit("unauthorized", { message }),
        WebSocket: this.WebSocket,
      }).start();
      this.subscriptions.add(live);
    };
    start();
    return () => { stopped = true; if (live) { live.stop(); this.subscriptions.delete(live); } };
  }

  /** Stop sending, listening and subscribing (what is kept stays kept for the next client of this scope). */
  close() {
    this.queue.stop(); this.breaker.stop();
    for (const live of this.subscriptions) live.stop();
    this.subscriptions.clear();
    clearTimeout(this.onlineTimer);
    if (typeof globalThis.removeEventListener === "function") {
      globalThis.removeEventListener("online", this.onOnline);
      globalThis.removeEventListener("pagehide", this.onPageHide);
    }
    this.ready.then(() => this.store.close(), () => {});
  }
}

for (const name of Object.keys(BUTTONS)) { // client.updateLeadStatus(body) is client.press("update_lead_status", body)
  Client.prototype[camel(name)] = function pressButton(body, meta) { return this.press(name, body, meta); };
}

/** The client of one identity (the token's) on one gateway. */
export function createClient(options) { return new Client(options); }
