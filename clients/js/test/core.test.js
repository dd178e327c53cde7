import assert from "node:assert/strict";
import { test } from "node:test";
import { IDBFactory } from "fake-indexeddb";
import { BUTTONS, CommandParked, ForbiddenMove, NotFound, Refusal, SmsPaused, Unauthorized, buildPress, scopeOf } from "../src/index.js";
import { Store } from "../src/store.js";
import { client, gateway, json, token, until } from "./support.js";

const moved = (req) => json(200, { lead: { id: req.body.leadId, status: req.body.status } });

test("a press goes where the table says, with its token and one key, and resolves done", async () => {
  const gw = gateway(moved);
  const c = client(gw.fetch);
  const got = await c.updateLeadStatus({ leadId: "L1", status: "contacted" });
  assert.deepEqual(got, { state: "done", status: 200, body: { lead: { id: "L1", status: "contacted" } } });
  const [req] = gw.requests;
  assert.equal(req.method, BUTTONS.update_lead_status.method);
  assert.equal(req.path, BUTTONS.update_lead_status.path);
  assert.match(req.headers.Authorization, /^Bearer /);
  assert.match(req.headers["Idempotency-Key"], /^[0-9a-f-]{36}$/);
  assert.deepEqual(await c.pending(), []);
  c.close();
});

test("the key is written to IndexedDB before the request leaves", async () => {
  const indexedDB = new IDBFactory();
  let kept = null;
  const gw = gateway(async (req) => {
    const store = await new Store(indexedDB).open();
    kept = (await store.presses(scopeOf("http://127.0.0.1:8080", token()))).map((e) => e.key);
    store.close();
    return moved(req);
  });
  const c = client(gw.fetch, { indexedDB });
  await c.press("update_lead_status", { leadId: "L1", status: "contacted" });
  assert.deepEqual(kept, [gw.requests[0].headers["Idempotency-Key"]]);
  c.close();
});

for (const status of [429, 500, 502, 503, 504]) {
  test(`${status} is retried with the same key`, async () => {
    const gw = gateway((req, all) => (all.length < 3 ? json(status, { type: "about:blank", title: "busy" }, { "Retry-After": "0" }) : moved(req)));
    const c = client(gw.fetch);
    const got = await c.press("update_lead_status", { leadId: "L1", status: "contacted" });
    assert.equal(got.state, "done");
    assert.equal(gw.requests.length, 3);
    assert.equal(new Set(gw.requests.map((r) => r.headers["Idempotency-Key"])).size, 1);
    c.close();
  });
}

test("Retry-After is honoured", async () => {
  const gw = gateway((req, all) => (all.length < 2 ? json(503, { title: "busy" }, { "Retry-After": "0.3" }) : moved(req)));
  const c = client(gw.fetch);
  const started = Date.now();
  await c.press("update_lead_status", { leadId: "L1", status: "contacted" });
  assert.ok(Date.now() - started >= 280, `waited ${Date.now() - started} ms`);
  c.close();
});

test("a refusal rejects with its class from the table and is never retried", async () => {
  const problem = { type: "/problems/forbidden-status-change", title: "Status change not allowed", status: 409, detail: "won is final" };
  const gw = gateway(() => json(409, problem));
  const c = client(gw.fetch);
  const refused = [];
  c.on("refused", (e) => refused.push(e.refusal));
  await assert.rejects(c.updateLeadStatus({ leadId: "L1", status: "new" }), (err) => {
    assert.ok(err instanceof ForbiddenMove && err instanceof Refusal);
    assert.equal(err.status, 409);
    assert.equal(err.problem.detail, "won is final");
    assert.equal(err.message, "won is final");
    return true;
  });
  assert.equal(gw.requests.length, 1);
  assert.equal(refused.length, 1);
  assert.deepEqual(await c.pending(), []);
  c.close();
});

test("a problem type is believed only with its own status; an unknown one is a plain Refusal", async () => {
  const answers = [json(502, { type: "/problems/not-found", title: "Not found" }), json(404, { type: "/problems/not-found" }),
    json(422, { type: "/problems/nonsense", detail: "x".repeat(100000) })];
  const gw = gateway(() => answers.shift());
  const c = client(gw.fetch);
  await assert.rejects(c.confirmBooking({ appointmentId: "A1" }), (err) => err instanceof NotFound && gw.requests.length === 2);
  await assert.rejects(c.confirmBooking({ appointmentId: "A2" }), (err) => err.constructor === Refusal && err.message.length <= 500);
  c.close();
});

test("a parked command (a final 503) settles its press as a refusal, not retried", async () => {
  const gw = gateway(() => json(503, { type: "/problems/command-parked", title: "Command parked", status: 503 }));
  const c = client(gw.fetch);
  await assert.rejects(c.confirmBooking({ appointmentId: "A1" }), CommandParked);
  assert.equal(gw.requests.length, 1);
  c.close();
});

test("offline, a press is queued, then replayed once with its key by flush()", async () => {
  let up = false;
  const gw = gateway((req) => { if (!up) throw new TypeError("fetch failed"); return moved(req); });
  const c = client(gw.fetch);
  const queued = await c.updateLeadStatus({ leadId: "L1", status: "contacted" });
  assert.equal(queued.state, "queued");
  const [kept] = await c.pending();
  assert.equal(kept.key, queued.key);
  assert.deepEqual(kept.fields, { leadId: "L1", status: "contacted" });
  const done = [];
  c.on("done", (e) => done.push(e));
  up = true;
  assert.equal(await c.flush(), 0);
  assert.equal(done.length, 1);
  const sent = gw.requests.filter((r) => r.headers["Idempotency-Key"] === queued.key);
  assert.ok(sent.length >= 2 && sent.every((r) => r.body.status === "contacted"));
  assert.deepEqual(await c.pending(), []);
  c.close();
});

test("presses kept survive the client (a closed tab) and are replayed, in order, by the next one", async () => {
  const indexedDB = new IDBFactory();
  const down = gateway(() => { throw new TypeError("fetch failed"); });
  const first = client(down.fetch, { indexedDB });
  const a = await first.updateLeadStatus({ leadId: "L1", status: "contacted" });
  const b = await first.updateLeadStatus({ leadId: "L1", status: "qualified" });
  first.close();
  const gw = gateway(moved);
  const second = client(gw.fetch, { indexedDB });
  await until(async () => (await second.pending()).length === 0 && gw.requests.length === 2, 3000, "the replay");
  assert.deepEqual(gw.requests.map((r) => [r.headers["Idempotency-Key"], r.body.status]), [[a.key, "contacted"], [b.key, "qualified"]]);
  second.close();
});

test("a replay refused meanwhile settles its press, and the next one still goes", async () => {
  const indexedDB = new IDBFactory();
  const first = client(gateway(() => { throw new TypeError("down"); }).fetch, { indexedDB });
  await first.updateLeadStatus({ leadId: "L1", status: "won" });
  await first.sendSms({ leadId: "L1", message: "hi" });
  first.close();
  const gw = gateway((req) => (req.path.endsWith("update-status") ? json(409, { type: "/problems/status-conflict" }) : json(200, { sms: { status: "sent" } })));
  const second = client(gw.fetch, { indexedDB });
  const outcomes = [];
  second.on("outcome", (o) => outcomes.push([o.entry.button, o.status, o.refusal && o.refusal.name]));
  await until(() => outcomes.length === 2, 3000, "both outcomes");
  assert.deepEqual(outcomes, [["update_lead_status", 409, "StatusConflict"], ["send_sms", 200, null]]);
  second.close();
});

test("the scope: the issuer when the token has one, else the origin; another user sees nothing", async () => {
  const iss = token({ iss: "crm-prod" });
  assert.equal(scopeOf("http://localhost:8080", iss), scopeOf("http://127.0.0.1:8080/", iss));
  assert.notEqual(scopeOf("http://localhost:8080", token()), scopeOf("http://127.0.0.1:8080", token()));
  assert.notEqual(scopeOf("http://x", token({ sub: "a" })), scopeOf("http://x", token({ sub: "b" })));
  assert.throws(() => scopeOf("http://x", "not.a-token"), TypeError);
  const indexedDB = new IDBFactory();
  const down = client(gateway(() => { throw new TypeError("down"); }).fetch, { indexedDB, url: "http://localhost:8080", token: iss });
  const q = await down.updateLeadStatus({ leadId: "L1", status: "contacted" });
  down.close();
  const other = client(gateway(moved).fetch, { indexedDB, token: token({ iss: "crm-prod", sub: "agent-2" }) });
  assert.deepEqual(await other.pending(), []);
  other.close();
  const gw = gateway(moved);
  const failover = client(gw.fetch, { indexedDB, url: "http://127.0.0.1:9090", token: iss });
  await until(() => gw.requests.length === 1, 3000, "the replay through the other address");
  assert.equal(gw.requests[0].headers["Idempotency-Key"], q.key);
  assert.ok(gw.requests[0].url.startsWith("http://127.0.0.1:9090/"));
  failover.close();
});

test("a 202 is followed to its answer", async () => {
  const gw = gateway((req, all) => {
    if (req.method === "POST") return json(202, { status: "accepted" }, { Location: "/api/commands/bookings/c1" });
    return all.length < 3 ? json(202, { status: "pending" }) : json(200, { appointment: { id: "A1", status: "confirmed" } });
  });
  const c = client(gw.fetch);
  const got = await c.confirmBooking({ appointmentId: "A1" });
  assert.deepEqual(got, { state: "done", status: 200, body: { appointment: { id: "A1", status: "confirmed" } } });
  assert.deepEqual(gw.requests.map((r) => r.method), ["POST", "GET", "GET"]);
  c.close();
});

test("a refused token keeps the press; a new token sends it with its key", async () => {
  let good = "none";
  const gw = gateway((req) => (req.headers.Authorization === `Bearer ${good}` ? moved(req) : json(401, { detail: "expired" })));
  const c = client(gw.fetch);
  const unauthorized = [];
  c.on("unauthorized", (e) => unauthorized.push(e.message));
  await assert.rejects(c.updateLeadStatus({ leadId: "L1", status: "contacted" }), (err) => err instanceof Unauthorized && err.status === 401);
  assert.equal((await c.pending()).length, 1);
  assert.deepEqual(unauthorized, ["expired"]);
  const fresh = token();
  good = fresh;
  c.setToken(fresh);
  await until(async () => (await c.pending()).length === 0, 3000, "the press sent with the new token");
  assert.equal(new Set(gw.requests.map((r) => r.headers["Idempotency-Key"])).size, 1);
  assert.throws(() => c.setToken(token({ sub: "someone-else" })), TypeError);
  c.close();
});

test("the SMS breaker opens after three queued answers and refuses in the page", async () => {
  const gw = gateway(() => json(200, { sms: { status: "queued" } }));
  const c = client(gw.fetch, { breaker: { threshold: 3, cooldownMs: 60000 } });
  const states = [];
  c.on("breaker", (s) => states.push(s));
  for (let i = 0; i < 3; i++) await c.sendSms({ leadId: "L1", message: `m${i}` });
  await assert.rejects(c.sendSms({ leadId: "L1", message: "again" }), SmsPaused);
  assert.equal(gw.requests.length, 3);
  assert.deepEqual(states, ["open"]);
  await c.updateLeadStatus({ leadId: "L1", status: "contacted" }); // only SMS is paused
  c.close();
});

test("bad calls are TypeErrors, never requests", async () => {
  const gw = gateway(moved);
  const c = client(gw.fetch);
  await assert.rejects(c.press("no_such_button", {}), TypeError);
  await assert.rejects(c.press("__proto__", {}), TypeError);
  await assert.rejects(c.press("update_lead_status", "nope"), TypeError);
  await assert.rejects(c.press("start_campaign", {}), /campaignId is required/);
  await assert.rejects(c.press("attach_document", { leadId: "L1" }), TypeError);
  assert.equal(gw.requests.length, 0);
  assert.deepEqual(buildPress("start_campaign", { campaignId: "a/b" }), { method: "POST", path: "/api/campaigns/a%2Fb/start", body: {} });
  c.close();
});

test("read: the body of a 200, else the refusal", async () => {
  const gw = gateway((req) => (req.path === "/api/leads/L1" ? json(200, { lead: { id: "L1" } }) : json(404, { type: "/problems/not-found" })));
  const c = client(gw.fetch);
  assert.deepEqual(await c.read("get_lead", { leadId: "L1" }), { lead: { id: "L1" } });
  await assert.rejects(c.read("get_lead", { leadId: "L2" }), NotFound);
  c.close();
});

test("keep resolves as soon as the press is kept, before it is answered", async () => {
  let answer;
  const gw = gateway((req) => new Promise((resolve) => { answer = () => resolve(moved(req)); }));
  const c = client(gw.fetch);
  const { entry, settled } = await c.keep("update_lead_status", { leadId: "L1", status: "contacted" });
  assert.deepEqual((await c.pending()).map((e) => e.key), [entry.key]);
  await until(() => answer, 2000, "the request");
  answer();
  assert.equal((await settled).state, "done");
  assert.deepEqual(await c.pending(), []);
  c.close();
});
