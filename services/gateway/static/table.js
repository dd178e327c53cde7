// The server's table (GET /api/buttons, services/gateway/catalog.py): each button's method and path,
// each read's and other route's, and the name of each problem type. Every request of the page is
// built here from a name (a button, a read, a route) and its fields; words.js keys its words by
// button name and problem name. No path and no problem type is typed in the page a second time.
//
//   sign-in ──► GET /api/buttons (If-None-Match: its ETag; 304 costs nothing) ──► kept in localStorage
//   a press or a read ──► waits for a table (the kept one at once: the page presses offline too)
const KEY = "crm.buttons";
const RETRY_CAP_MS = 30000;

let table = null;
let waiting = []; // resolvers of ready(), while there is no table

/** The table this browser kept (offline, the page still builds its presses). */
export function restore() {
  try { table = JSON.parse(localStorage.getItem(KEY) || "null"); } catch { table = null; }
}

function keep(fresh) {
  table = fresh;
  try { localStorage.setItem(KEY, JSON.stringify(fresh)); } catch { /* full: the one in memory serves */ }
  for (const resolve of waiting.splice(0)) resolve(table);
}

/** Read the table again (public; the token goes with it when there is one). Without a kept table, tried
 * again with backoff until there is one, or until `current()` says the page has moved on (signed out). */
export async function load(token, current = () => true) {
  for (let attempt = 0; current(); attempt++) {
    try {
      const response = await fetch("/api/buttons", { cache: "no-cache", headers: token ? { Authorization: "Bearer " + token } : {} });
      if (response.ok) return keep(await response.json());
    } catch { /* the network: the kept table serves meanwhile */ }
    if (table) return;
    await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(RETRY_CAP_MS, 500 * 2 ** attempt)));
  }
}

/** Resolves with the table as soon as there is one. */
export function ready() {
  return table ? Promise.resolve(table) : new Promise((resolve) => waiting.push(resolve));
}

function row(kind, name) {
  const found = table && table[kind][name];
  if (!found) throw new Error(`no ${kind.slice(0, -1)} ${name} in the server's table`);
  return found;
}

function fill(path, names, fields) {
  return names.reduce((p, n) => p.replace(`{${n}}`, encodeURIComponent(fields[n])), path);
}

/** The request of a press of button `name`: {method, path, body}; the path's fields are taken from `fields`,
 * the others are the body. */
export function press(name, fields = {}) {
  const b = row("buttons", name), body = { ...fields };
  for (const n of b.fields) delete body[n];
  return { method: b.method, path: fill(b.path, b.fields, fields), body };
}

/** The path of a read (or another route) `name`: its fields in the path, a read's query parameters given
 * (neither null nor undefined) in the query string. */
export function path(name, fields = {}) {
  const r = table && table.reads[name] ? row("reads", name) : row("routes", name);
  const query = (r.query || []).filter((n) => fields[n] != null).map((n) => `${n}=${encodeURIComponent(fields[n])}`);
  return fill(r.path, r.fields, fields) + (query.length ? "?" + query.join("&") : "");
}

/** The name of a problem type: its class in shared/problems.py ("OptedOut"...); null when unknown. */
export function problem(type) {
  const known = table && type && table.problems[type];
  return known ? known.name : null;
}
