// The console's shell (page, scripts, style, and the SDK's files it imports from /sdk/) kept for opening the page offline.
// Network first, so a new version shows at once; the cache only when the network fails.
// The API, the websocket and the development sign-in are never touched: they go to the network as they are.
const CACHE = "crm-console-v6";
const SDK = ["index.js", "http.js", "queue.js", "live.js", "breaker.js", "store.js", "problems.js", "table.js"]; // index.js's imports
const SHELL = ["/", "/static/console.css", "/static/main.js", "/static/view.js", "/static/sms.js", "/static/words.js",
  "/static/money.js", "/static/appointments.js", "/static/deals.js", "/static/campaigns.js", "/static/documents.js",
  "/static/table.js", "/static/migrate.js", ...SDK.map((name) => `/sdk/${name}`)];

self.addEventListener("install", (e) => e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting())));
self.addEventListener("activate", (e) => e.waitUntil(caches.keys() // an older version's shell goes
  .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n)))).then(() => self.clients.claim())));
self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname !== "/" && !url.pathname.startsWith("/static/") && !url.pathname.startsWith("/sdk/")) return;
  e.respondWith(fetch(e.request).then((response) => {
    if (response.ok) { const copy = response.clone(); caches.open(CACHE).then((c) => c.put(e.request, copy)); }
    return response;
  }).catch(() => caches.match(e.request, { ignoreSearch: true, ignoreVary: true }))); // /sdk/ varies by Origin (CORS): one copy serves
});
