import assert from "node:assert/strict";
import { test } from "node:test";
import { IDBFactory } from "fake-indexeddb";
import { FakeSocket, client, gateway, json, until } from "./support.js";

const ev = (position, id = `e${position}`) => ({ type: "event", id, topic: "leads.status_changed", epoch: "E1", position, data: { leadId: "L1" } });

test("subscribe: hello with the topics, events once, position kept; a reloaded page resumes from it", async () => {
  const indexedDB = new IDBFactory();
  FakeSocket.all = [];
  const first = client(gateway(() => json(200, {})).fetch, { indexedDB, WebSocket: FakeSocket });
  const got = [], reloads = [], states = [];
  first.on("state", (s) => states.push(s));
  first.subscribe(["leads.*"], (e) => got.push(e.position), { onReload: () => reloads.push(1) });
  await until(() => FakeSocket.all[0]?.sent.length === 1, 2000, "the hello");
  const sock = FakeSocket.all[0];
  assert.equal(sock.url, "ws://127.0.0.1:8080/ws");
  assert.deepEqual(sock.sent[0].topics, ["leads.*"]);
  assert.equal(sock.sent[0].resume, undefined);
  sock.receive({ type: "welcome", epoch: "E1", position: 10, recovered: false });
  assert.deepEqual(reloads, [1]);
  sock.receive(ev(11)); sock.receive(ev(12)); sock.receive(ev(12)); sock.receive(ev(11, "other"));
  assert.deepEqual(got, [11, 12]);
  assert.equal(states.at(-1), "live");
  first.close();

  FakeSocket.all = [];
  const second = client(gateway(() => json(200, {})).fetch, { indexedDB, WebSocket: FakeSocket });
  const again = [], welcomes = [];
  second.subscribe(["leads.*"], (e) => again.push(e.position), { onWelcome: (w) => welcomes.push(w.recovered), onReload: () => reloads.push(2) });
  await until(() => FakeSocket.all[0]?.sent.length === 1, 2000, "the second hello");
  assert.deepEqual(FakeSocket.all[0].sent[0].resume, { epoch: "E1", position: 12 });
  FakeSocket.all[0].receive({ type: "welcome", epoch: "E1", position: 14, recovered: true });
  FakeSocket.all[0].receive(ev(12)); FakeSocket.all[0].receive(ev(13));
  assert.deepEqual(again, [13]);
  assert.deepEqual(welcomes, [true]);
  assert.deepEqual(reloads, [1]);
  second.close();
});

test("a dropped socket reconnects and resumes; recovered: false asks the app to reload", async () => {
  FakeSocket.all = [];
  const c = client(gateway(() => json(200, {})).fetch, { WebSocket: FakeSocket });
  const got = [], reloads = [], states = [];
  c.on("state", (s) => states.push(s));
  c.subscribe(["leads.*", "sms.*"], (e) => got.push(e.position), { keep: false, onReload: () => reloads.push(1) });
  await until(() => FakeSocket.all[0]?.sent.length === 1, 2000, "the hello");
  FakeSocket.all[0].receive({ type: "welcome", epoch: "E1", position: 5, recovered: false });
  FakeSocket.all[0].receive(ev(6));
  FakeSocket.all[0].drop();
  assert.equal(states.at(-1), "reconnecting");
  await until(() => FakeSocket.all[1]?.sent.length === 1, 3000, "the reconnection");
  assert.deepEqual(FakeSocket.all[1].sent[0].resume, { epoch: "E1", position: 6 });
  FakeSocket.all[1].receive({ type: "welcome", epoch: "E2", position: 1, recovered: false });
  assert.deepEqual(reloads, [1, 1]);
  FakeSocket.all[1].receive({ ...ev(2), epoch: "E2" });
  assert.deepEqual(got, [6, 2]);
  c.close();
});

test("a refused token on the socket stops it and says unauthorized", async () => {
  FakeSocket.all = [];
  const c = client(gateway(() => json(200, {})).fetch, { WebSocket: FakeSocket });
  const said = [];
  c.on("unauthorized", (e) => said.push(e.message));
  c.subscribe(["leads.*"], () => {});
  await until(() => FakeSocket.all[0]?.sent.length === 1, 2000, "the hello");
  FakeSocket.all[0].close(4401, "token expired");
  await until(() => said.length === 1, 2000, "unauthorized");
  assert.deepEqual(said, ["token expired"]);
  assert.equal(FakeSocket.all.length, 1);
  c.close();
});

test("hostile frames are ignored", async () => {
  FakeSocket.all = [];
  const c = client(gateway(() => json(200, {})).fetch, { WebSocket: FakeSocket });
  const got = [];
  c.subscribe(["leads.*"], (e) => got.push(e));
  await until(() => FakeSocket.all[0]?.sent.length === 1, 2000, "the hello");
  const sock = FakeSocket.all[0];
  for (const data of ["not json", "null", "42", '"text"', "[]", '{"type":"event"}']) sock.onmessage({ data });
  assert.equal(got.length, 1); // the last: an event with no position, passed on as it is
  assert.throws(() => c.subscribe("leads.*", () => {}), TypeError);
  c.close();
});
