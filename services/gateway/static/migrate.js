// One-time move of the presses an older console kept in its own IndexedDB ("crm-console", store "presses",
// rows {seq, principal: "org\nuser", key, button, method, path, body, label, leadIds, ...}) into the SDK's
// client, each with its original Idempotency-Key, so a press made offline before the upgrade still takes
// effect, and once. Remove this file (and its call in main.js) once no browser can hold such a press: the
// console on the SDK shipped with issue 18; a few months later every kept press is long sent or forgotten.
import * as table from "./table.js";

const OLD_DB = "crm-console";

function promised(req) {
  return new Promise((resolve, reject) => { req.onsuccess = () => resolve(req.result); req.onerror = () => reject(req.error); });
}

/** The old database, or null when this browser never had one (opened without creating it). */
async function openOld() {
  const req = indexedDB.open(OLD_DB);
  req.onupgradeneeded = () => req.transaction.abort(); // it did not exist: leave it so
  try { return await promised(req); } catch { return null; }
}

/** The fields of an old press: its body, and its path's fields read back from the path (JSON buttons only). */
function fieldsOf(entry, buttons) {
  const b = buttons[entry.button];
  if (!b || b.upload) return null;
  const parts = b.path.split(/\{(\w+)\}/); // literal, name, literal, name, ...
  const pattern = parts.map((p, i) => (i % 2 ? "([^/]+)" : p.replace(/[.*+?^$()|[\]\\]/g, "\\$&"))).join("");
  const found = new RegExp(`^${pattern}$`).exec(entry.path);
  if (!found) return null;
  const fields = { ...(entry.body || {}) };
  parts.forEach((name, i) => { if (i % 2) fields[name] = decodeURIComponent(found[(i + 1) / 2]); });
  return fields;
}

/** Move the old presses of `principal` ("org\nuser") into `client`, in order, then delete them from the old database. */
export async function adoptOldPresses(client, principal) {
  const db = await openOld();
  if (!db) return;
  let empty = false;
  try {
    if (!db.objectStoreNames.contains("presses")) return;
    const all = await promised(db.transaction("presses").objectStore("presses").getAll());
    const mine = all.filter((e) => e.principal === principal).sort((a, b) => a.seq - b.seq);
    if (!mine.length) return void (empty = !all.length); // another identity's: moved at its own sign-in
    const { buttons } = await table.ready();
    const kept = new Set((await client.pending()).map((e) => e.key)); // moved already, before a tab closed mid-way
    for (const old of mine) {
      const fields = fieldsOf(old, buttons);
      if (fields && !kept.has(old.key)) await adopt(client, old, fields);
      // moved first, deleted after: a tab closed between the two moves it again with the same key (applied once)
      await promised(db.transaction("presses", "readwrite").objectStore("presses").delete(old.seq));
    }
    empty = all.length === mine.length;
  } finally {
    db.close();
    if (empty) indexedDB.deleteDatabase(OLD_DB);
  }
}

/** Resolves once the client keeps the press; its answer comes through the client's events. */
async function adopt(client, old, fields) {
  const { seq, principal, method, path, body, state, location, tries, createdAt, ...meta } = old;
  const { settled } = await client.keep(old.button, fields, meta);
  settled.catch(() => {}); // a refusal is an outcome like an answer: the console hears of both by the events
}
