// The live feed: one websocket, resumed from the last applied position after any drop (and, with a
// kept position, after a reload).
//
// hello {token, topics, resume: {epoch, position}} ──► welcome {epoch, position, recovered}
//   recovered: the events after our position follow, then live: nothing missed, nothing twice
//   not recovered (or a first connection): onReload() — the page reads its data again by REST
// Each event is applied once: skipped when its position is not past ours (same epoch) or its id
// was seen. The state it reports is the truth: "live" only while welcomed on an open socket,
// "offline" when the browser is offline or the server cannot be reached, "reconnecting" otherwise.
import { online } from "./http.js";

const DEFAULT_PING_S = 15;
const win = () => (typeof globalThis.addEventListener === "function" ? globalThis : null); // Node has no window

export class Live {
  /** url: the websocket's address; token(): the current token; cursor: a kept {epoch, position} or null;
   * keep(cursor): called after each applied event (the client writes it to IndexedDB). */
  constructor({ url, token, topics, cursor = null, keep = () => {}, onEvent, onReload = () => {}, onState = () => {},
    onAuthFailed = () => {}, onWelcome = () => {}, WebSocket: Socket = globalThis.WebSocket }) {
    Object.assign(this, { url, token, topics, cursor, keep, onEvent, onReload, onState, onAuthFailed, onWelcome, Socket });
    this.seen = new Set(); this.ws = null; this.timer = null; this.delay = 300; this.failures = 0;
    this.state = null; this.stopped = false; this.welcomed = false; this.lastFrame = 0; this.pingS = null;
    this.onOnline = () => { this._set(); this.reconnectNow(); };
    this.onOffline = () => { this._abandon("browser offline"); this._set(); };
    this.watchdog = setInterval(() => this._checkAlive(), 1000);
  }

  start() {
    win()?.addEventListener("online", this.onOnline); win()?.addEventListener("offline", this.onOffline);
    this._connect();
    return this;
  }

  stop() {
    this.stopped = true; clearTimeout(this.timer); clearInterval(this.watchdog);
    win()?.removeEventListener("online", this.onOnline); win()?.removeEventListener("offline", this.onOffline);
    if (this.ws) this.ws.close(1000, "unsubscribed");
  }

  reconnectNow() {
    if (this.stopped || (this.ws && this.ws.readyState <= 1)) return;
    clearTimeout(this.timer); this.delay = 300; this._connect();
  }

  _set() {
    const state = !online() || this.failures >= 3 ? "offline" : this.welcomed ? "live" : "reconnecting";
    if (state !== this.state) { this.state = state; this.onState(state); }
  }

  _connect() {
    this.timer = null;
    if (this.stopped) return;
    let sock;
    try { sock = new this.Socket(this.url); } catch { return this._closed(null, { code: 1006 }); }
    this.ws = sock; this.welcomed = false; this.lastPing = 0; this._set();
    sock.onopen = () => {
      const hello = { type: "hello", token: this.token(), topics: this.topics };
      if (this.cursor && this.cursor.epoch != null && Number.isInteger(this.cursor.position)) {
        hello.resume = { epoch: this.cursor.epoch, position: this.cursor.position };
      }
      sock.send(JSON.stringify(hello));
    };
    sock.onmessage = (m) => this._frame(sock, m.data);
    sock.onclose = (e) => this._closed(sock, e);
  }

  _frame(sock, data) {
    if (sock !== this.ws) return;
    this.lastFrame = Date.now();
    let frame;
    try { frame = JSON.parse(data); } catch { return; }
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "ping") { // the interval is the server's (WS_PING_INTERVAL): learn it from the pings
      const now = Date.now();
      this.pingS = this.lastPing ? Math.min(DEFAULT_PING_S, Math.max(1, (now - this.lastPing) / 1000)) : DEFAULT_PING_S;
      this.lastPing = now;
      try { sock.send('{"type":"pong"}'); } catch { /* closing */ }
    } else if (frame.type === "welcome") this._welcome(frame);
    else if (frame.type === "event") this._event(frame);
  }

  _welcome(frame) {
    this.welcomed = true; this.failures = 0; this.delay = 300;
    const interval = Number(frame.ping_interval ?? frame.pingInterval);
    if (interval > 0) this.pingS = interval;
    const recovered = frame.recovered === true && this.cursor !== null;
    if (!recovered) {
      this.cursor = frame.epoch != null && Number.isInteger(frame.position) ? { epoch: frame.epoch, position: frame.position } : null;
      if (this.cursor) this.keep(this.cursor);
    }
    this.onWelcome({ ...frame, recovered });
    this._set();
    if (!recovered) this.onReload();
  }

  _event(frame) {
    if (frame.id != null) {
      if (this.seen.has(frame.id)) return;
      this.seen.add(frame.id);
      if (this.seen.size > 5000) this.seen = new Set([...this.seen].slice(-2500));
    }
    if (Number.isInteger(frame.position)) {
      const epoch = frame.epoch ?? (this.cursor && this.cursor.epoch);
      if (this.cursor && this.cursor.epoch === epoch && frame.position <= this.cursor.position) return;
      this.cursor = { epoch, position: frame.position };
      try { this.onEvent(frame); } finally { this.keep(this.cursor); }
    } else this.onEvent(frame);
  }

  _closed(sock, e) {
    if (sock !== this.ws) return;
    this.ws = null;
    const wasLive = this.welcomed; this.welcomed = false;
    if (e.code === 4401 || e.code === 4403) { this.stop(); this._set(); return this.onAuthFailed(e.reason || "the token was refused"); }
    if (!wasLive) this.failures++;
    this._set();
    if (this.stopped) return;
    const wait = online() ? Math.random() * this.delay : 5000;
    this.delay = Math.min(this.delay * 2, 8000);
    this.timer = setTimeout(() => this._connect(), wait);
  }

  _checkAlive() { // no frame at all for 2 pings and a bit: the server is gone though the socket looks open
    if (!this.pingS || !this.ws || !this.welcomed) return;
    if (Date.now() - this.lastFrame > (2 * this.pingS + 3) * 1000) this._abandon("no ping");
  }

  /** Give a socket up at once (a dead server never finishes the closing handshake), then reconnect. */
  _abandon(reason) {
    const sock = this.ws;
    if (!sock) return;
    sock.onclose = sock.onmessage = null;
    try { sock.close(4000, reason); } catch { /* already closed */ }
    this._closed(sock, { code: 4000, reason });
  }
}
