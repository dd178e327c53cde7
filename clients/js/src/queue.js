// The presses not yet settled, in IndexedDB: a reload, a closed tab or a night offline never turns
// one press into two, nor into none.
//
//   press ──► written here (seq, Idempotency-Key) ──► sent, in seq order, one at a time ──► settled ──► removed
//                          ▲                                  │ no answer (network, 429/5xx after retries)
//                          └──── kept; tried again later ◄────┘ (backoff ≤ 30 s; at once on `online`, `flush()`)
//
// A refusal (4xx) settles its press like a success, and the next press goes. A 202 is delivered (the
// command is queued server side): its Location is kept and followed to the answer, and the next press goes.
// A 401 stops the queue with everything kept: a new token (client.setToken) sends it.
import { Undelivered, follow, withRetry } from "./http.js";
import { Unauthorized } from "./problems.js";

const REPLAY_CAP_MS = 30000;

export class Queue {
  /** store: Store; scope: string; send: {token(), url(path), fetch, attempts, base, cap};
   * emit(name, detail): "change" (entries), "settled" ({entry, status, body}), "queued" ({entry, why}),
   * "unauthorized" ({message}). */
  constructor({ store, scope, http, emit }) {
    Object.assign(this, { store, scope, http, emit });
    this.entries = []; this.running = false; this.timer = null; this.failures = 0; this.following = new Set();
    this.stopped = false; this.idle = [];
  }

  async open() {
    this.entries = await this.store.presses(this.scope);
    this.emit("change", this.entries);
    for (const e of this.entries) if (e.state === "accepted") this._follow(e);
    this.kick();
  }

  stop() { this.stopped = true; clearTimeout(this.timer); this.timer = null; }

  resume() {
    this.stopped = false;
    for (const e of this.entries) if (e.state === "accepted") this._follow(e);
    return this.kick();
  }

  /** Keep the press (durably) first, then send it. */
  async add(press) {
    const entry = { ...press, scope: this.scope, state: "pending", createdAt: new Date().toISOString() };
    entry.seq = await this.store.put(entry);
    this.entries.push(entry);
    this.emit("change", this.entries);
    this.kick();
    return entry;
  }

  /** Try now (the connection is back); resolves when the queue has stopped sending (sent, or waiting again). */
  kick() {
    clearTimeout(this.timer); this.timer = null;
    this.failures = 0;
    const done = new Promise((resolve) => this.idle.push(resolve));
    this._run();
    return done;
  }

  async _run() {
    if (this.running) return;
    this.running = true;
    try {
      let entry;
      while (!this.stopped && (entry = this.entries.find((e) => e.state === "pending"))) {
        if (!(await this._send(entry))) { this._later(); break; }
      }
    } finally {
      this.running = false;
      for (const resolve of this.idle.splice(0)) resolve(this.entries.filter((e) => e.state === "pending").length);
    }
  }

  _later() {
    if (this.stopped) return;
    const ms = Math.min(REPLAY_CAP_MS, 1000 * 2 ** this.failures++) * (0.5 + Math.random() / 2);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = null; this._run(); }, ms);
  }

  /** True when the entry has left the pending state (answered or accepted), false when it must wait. */
  async _send(entry) {
    let answer;
    const { token, url, fetch, attempts = 4, base, cap } = this.http;
    try {
      answer = await withRetry(entry.method, url(entry.path), { token: token(), body: entry.body, key: entry.key, fetch },
        { attempts: entry.tries ? 2 : attempts, base, cap });
    } catch (err) {
      if (err instanceof Unauthorized) { this.stop(); this.emit("unauthorized", { message: err.message, entry }); return false; }
      if (!(err instanceof Undelivered)) throw err;
      entry.tries = (entry.tries || 0) + 1;
      await this.store.put(entry);
      this.emit("queued", { entry, why: err.message, first: entry.tries === 1 });
      return false;
    }
    if (answer.status === 202 && answer.headers.get("Location")) {
      entry.state = "accepted"; entry.location = answer.headers.get("Location");
      await this.store.put(entry);
      this.emit("queued", { entry, why: "accepted", first: true });
      this._follow(entry);
      return true;
    }
    await this._done(entry, answer);
    return true;
  }

  async _follow(entry) {
    if (this.following.has(entry.seq)) return;
    this.following.add(entry.seq);
    try {
      const answer = await follow(this.http.url(entry.location), this.http.token(), { stopped: () => this.stopped,
        fetch: this.http.fetch, base: this.http.followMs });
      await this._done(entry, answer);
    } catch (err) {
      if (err instanceof Unauthorized) { this.stop(); this.emit("unauthorized", { message: err.message, entry }); }
    } finally { this.following.delete(entry.seq); }
  }

  async _done(entry, answer) {
    await this.store.remove(entry.seq);
    this.entries = this.entries.filter((e) => e.seq !== entry.seq);
    this.emit("change", this.entries);
    this.emit("settled", { entry, status: answer.status, body: answer.body });
  }
}
