// The browser's durable memory of the SDK, in IndexedDB (database "crm-buttons"):
//   presses    one row per press not yet settled: {seq, scope, key, method, path, body, button, fields, state, ...}
//   positions  one row per subscription: {id: scope + topics, epoch, position}
// Every row carries its scope (deployment, organisation, user): one browser, many identities, none sees another's.

const VERSION = 1;

export function promised(req) {
  return new Promise((resolve, reject) => { req.onsuccess = () => resolve(req.result); req.onerror = () => reject(req.error); });
}

export class Store {
  constructor(indexedDB = globalThis.indexedDB, name = "crm-buttons") { this.idb = indexedDB; this.name = name; this.db = null; }

  async open() {
    if (this.db) return this;
    if (!this.idb) throw new Error("crm-buttons needs IndexedDB (pass `indexedDB` to createClient outside a browser)");
    const req = this.idb.open(this.name, VERSION);
    req.onupgradeneeded = () => {
      const presses = req.result.createObjectStore("presses", { keyPath: "seq", autoIncrement: true });
      presses.createIndex("scope", "scope");
      req.result.createObjectStore("positions", { keyPath: "id" });
    };
    this.db = await promised(req);
    this.db.onversionchange = () => { this.db.close(); this.db = null; }; // a newer SDK in another tab upgrades
    return this;
  }

  close() { if (this.db) this.db.close(); this.db = null; }

  _store(name, mode = "readonly") { return this.db.transaction(name, mode).objectStore(name); }

  /** The presses of a scope, in the order they were made. */
  async presses(scope) {
    const rows = await promised(this._store("presses").index("scope").getAll(scope));
    return rows.sort((a, b) => a.seq - b.seq);
  }

  /** Written (and durable) before it resolves: its seq. */
  put(entry) { return promised(this._store("presses", "readwrite").put(entry)); }

  remove(seq) { return promised(this._store("presses", "readwrite").delete(seq)); }

  async position(id) { return (await promised(this._store("positions").get(id))) || null; }

  keepPosition(id, cursor) { return promised(this._store("positions", "readwrite").put({ id, ...cursor })); }
}
