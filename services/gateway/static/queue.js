// The presses not yet answered, in IndexedDB: a reload, a crash or a night offline never turns
// one press into two, nor into none.
//
//   press ──► written here (seq, Idempotency-Key) ──► sent, in seq order, one at a time ──► outcome ──► removed
//                          ▲                                  │ no answer (network, 5xx after retries)
//                          └──── kept; tried again later ◄────┘ (backoff ≤ 30 s; at once on `online` / websocket live)
//
// A refusal (4xx) is an outcome like a success: it is reported against its press and the next
// press goes. A 202 is delivered (the command is queued server side): its Location is kept and
// followed to the answer, and the next press goes.
import { Unauthorized, Undelivered, follow, withRetry } from "./api.js";

const DB = "crm-console";
const STORE = "presses";
const REPLAY_CAP_MS = 30000;

function promised(req) {
  return new Promise((resolve, reject) => { req.onsuccess = () => resolve(req.result); req.onerror = () => reject(req.error); });
}

function openDb() {
  const req = indexedDB.open(DB, 1);
  req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "seq", autoIncrement: true });
  return promised(req);
}

export class Queue {
  /** deliver events: onChange(entries), onOutcome(entry, answer), onQueued(entry, why), onUnauthorized(message) */
  constructor({ principal, token, onChange, onOutcome, onQueued, onUnauthorized }) {
    Object.assign(this, { principal, token, onChange, onOutcome, onQueued, onUnauthorized });
    this.entries = []; this.running = false; this.timer = null; this.failures = 0; this.following = new Set();
    this.stopped = false;
  }

  async open() {
    this.db = await openDb();
    const all = await promised(this.db.transaction(STORE).objectStore(STORE).getAll());
    this.entries = all.filter((e) => e.principal === this.principal).sort((a, b) => a.seq - b.seq);
    this.onChange(this.entries);
    for (const e of this.entries) if (e.state === "accepted") this._follow(e);
    this.kick();
  }

  stop() { this.stopped = true; clearTimeout(this.timer); }

  /** Keep the press (durably) first, then send it. */
  async add(press) {
    const entry = { ...press, principal: this.principal, state: "pending", createdAt: new Date().toISOString() };
    entry.seq = await this._write(entry);
    this.entries.push(entry);
    this.onChange(this.entries);
    this.kick();
    return entry;
  }

  /** Try now (the connection is back). */
  kick() {
    clearTimeout(this.timer); this.timer = null;
    this.failures = 0;
    this._run();
  }

  async _run() {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      let entry;
      while (!this.stopped && (entry = this.entries.find((e) => e.state === "pending"))) {
        if (!(await this._send(entry))) return this._later();
      }
    } finally { this.running = false; }
  }

  _later() {
    const ms = Math.min(REPLAY_CAP_MS, 1000 * 2 ** this.failures++) * (0.5 + Math.random() / 2);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = null; this._run(); }, ms);
  }

  /** True when the entry has left the pending state (answered or accepted), false when it must wait. */
  async _send(entry) {
    let answer;
    try {
      answer = await withRetry(entry.method, entry.path, { token: this.token, body: entry.body, key: entry.key },
        { attempts: entry.tries ? 2 : 4 });
    } catch (err) {
      if (err instanceof Unauthorized) { this.stop(); this.onUnauthorized(err.message); return false; }
      if (!(err instanceof Undelivered)) throw err;
      if (!entry.tries) this.onQueued(entry, err.message);
      entry.tries = (entry.tries || 0) + 1;
      await this._write(entry);
      return false;
    }
    if (answer.status === 202 && answer.headers.get("Location")) {
      entry.state = "accepted"; entry.location = answer.headers.get("Location");
      await this._write(entry);
      this.onQueued(entry, "accepted");
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
      const answer = await follow(entry.location, this.token, { stopped: () => this.stopped });
      await this._done(entry, answer);
    } catch (err) {
      if (err instanceof Unauthorized) { this.stop(); this.onUnauthorized(err.message); }
    } finally { this.following.delete(entry.seq); }
  }

  async _done(entry, answer) {
    await promised(this.db.transaction(STORE, "readwrite").objectStore(STORE).delete(entry.seq));
    this.entries = this.entries.filter((e) => e.seq !== entry.seq);
    this.onChange(this.entries);
    this.onOutcome(entry, answer);
  }

  _write(entry) {
    return promised(this.db.transaction(STORE, "readwrite").objectStore(STORE).put(entry));
  }
}
