// Integration tests against the real example server on the in-memory store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameRejectedError } from '../../dist/index.js';
import {
  buildServer,
  caughtUp,
  freePort,
  history,
  newClient,
  printFigures,
  Sender,
  startProxy,
  startServer,
  startStripProxy,
  userId,
  verify,
  waitFor,
} from './harness.mjs';

let bin;
test.before(async () => {
  bin = await buildServer();
});

test('a conversation between two clients: every message stored once, seen by both in order', async (t) => {
  const srv = await startServer(bin, await freePort());
  t.after(() => srv.stop());
  const alice = await newClient(srv.url, 'alice');
  const bob = await newClient(srv.url, 'bob');
  t.after(() => Promise.all([alice.client.close(), bob.client.close()]));
  const bobId = await userId(srv, 'bob');
  const group = await alice.client.createRoom({ type: 'GroupChat', name: 'trip', participants: [bobId] });
  const dm = await alice.client.createRoom({ type: 'OneToOneChat', participants: [bobId] });
  const rooms = [group.id, dm.id];
  // Bob learns of the rooms from their roomcreate.dispatch and tracks them from seq 0.
  await waitFor(() => rooms.every((r) => bob.client.lastSeq(r) === 0), 5000, 'bob tracks the rooms');
  assert.equal(alice.client.requestIdMode, 'echo', 'the server echoes request_id');
  assert.equal(bob.client.requestIdMode, 'echo');

  const senders = [alice, bob].map((p) => new Sender(p, rooms, { count: 60, intervalMs: 2 }).start());
  await Promise.all(senders.map((s) => s.done));
  const stored = new Map();
  for (const r of rooms) stored.set(r, await history(srv.url, 'alice', r));
  await waitFor(() => caughtUp([alice, bob], stored), 10_000, 'both clients saw everything');
  const { problems, figures } = verify({ senders, peers: [alice, bob], stored });
  printFigures('conversation, memory store', figures, { 'request_id mode': alice.client.requestIdMode });
  assert.deepEqual(problems, []);
  assert.equal(figures.sent, 120);
  assert.equal(figures.stored, 120);
  assert.equal(figures.lost, 0);
  assert.equal(figures.duplicatesSeen, 0);
});

test('the network is cut and restored: the outbox replays past the send limit (100 at once, then one per 200 ms) and loses nothing', async (t) => {
  // The server's default send limit applies.
  const srv = await startServer(bin, await freePort());
  t.after(() => srv.stop());
  const proxy = await startProxy(srv.port);
  t.after(() => proxy.close());
  const carol = await newClient(proxy.url, 'carol');
  const dave = await newClient(srv.url, 'dave');
  t.after(() => Promise.all([carol.client.close(), dave.client.close()]));
  const daveId = await userId(srv, 'dave');
  const room = await carol.client.createRoom({ type: 'GroupChat', name: 'cut', participants: [daveId] });
  await waitFor(() => dave.client.lastSeq(room.id) === 0, 5000, 'dave tracks the room');

  const count = 140;
  const senders = [
    new Sender(carol, [room.id], { count, intervalMs: 8 }),
    // Dave talks at the same time, connected, within the limit.
    new Sender(dave, [room.id], { count: 60, intervalMs: 20 }),
  ].map((s) => s.start());
  await waitFor(() => senders[0].sentSoFar >= 10, 10_000, 'carol sends');
  proxy.cut();
  const cutAt = Date.now();
  // Carol notices the silent network by her heartbeat, and keeps writing into her outbox.
  await waitFor(() => carol.client.state !== 'connected', 10_000, 'carol notices the cut');
  await waitFor(() => carol.client.pendingMessages.length >= 110 || senders[0].sentSoFar === count, 10_000, 'sends during the cut');
  const queuedDuringCut = carol.client.pendingMessages.length;
  const cutMs = Date.now() - cutAt;
  proxy.restore();
  const restoredAt = Date.now();
  await Promise.all(senders.map((s) => s.done));
  const replayMs = Date.now() - restoredAt;
  const stored = new Map([[room.id, await history(srv.url, 'dave', room.id)]]);
  await waitFor(() => caughtUp([carol, dave], stored), 10_000, 'both clients saw everything');
  const { problems, figures } = verify({ senders, peers: [carol, dave], stored });
  const down = carol.states.find((s) => s.state === 'disconnected');
  printFigures('network cut and restored (TCP proxy), memory store, default send limit', figures, {
    'carol noticed the cut': down?.reason,
    "queued in carol's outbox during the cut": queuedDuringCut,
    'cut (ms)': cutMs,
    'restore to every send stored (ms)': replayMs,
  });
  assert.deepEqual(problems, []);
  assert.equal(figures.sent, count + 60);
  assert.equal(figures.stored, count + 60);
  assert.ok(queuedDuringCut >= 100, `the replay is past the burst of 100: ${queuedDuringCut} queued`);
  assert.ok(figures.perClient.carol.rateLimited > 0, 'the replay ran into the send limit');
  assert.ok(figures.perClient.carol.reconnects >= 1);
});

test('a server without request_id (a proxy strips it): the client falls back to fence mode; the conversation holds', async (t) => {
  const srv = await startServer(bin, await freePort());
  t.after(() => srv.stop());
  const strip = await startStripProxy(srv.port);
  t.after(() => strip.close());
  const erin = await newClient(strip.url, 'erin', {}, 'fence');
  const frank = await newClient(srv.url, 'frank');
  t.after(() => Promise.all([erin.client.close(), frank.client.close()]));
  assert.equal(erin.client.requestIdMode, 'fence');
  assert.equal(frank.client.requestIdMode, 'echo');
  const frankId = await userId(srv, 'frank');
  const group = await erin.client.createRoom({ type: 'GroupChat', name: 'fence', participants: [frankId] });
  const dm = await erin.client.createRoom({ type: 'OneToOneChat', participants: [frankId] });
  assert.equal(group.name, 'fence');
  const rooms = [group.id, dm.id];
  await waitFor(() => rooms.every((r) => frank.client.lastSeq(r) === 0), 5000, 'frank tracks the rooms');
  // A request refused in fence mode settles with its own error.
  await assert.rejects(erin.client.roomInfo('00000000-0000-0000-0000-000000000000'), (err) => err.code === 4004 || err.code === 4002);
  const senders = [erin, frank].map((p) => new Sender(p, rooms, { count: 40, intervalMs: 3 }).start());
  await Promise.all(senders.map((s) => s.done));
  const listed = await erin.client.listRooms();
  assert.deepEqual(listed.map((r) => r.id).sort(), [...rooms].sort());
  const stored = new Map();
  for (const r of rooms) stored.set(r, await history(srv.url, 'frank', r));
  await waitFor(() => caughtUp([erin, frank], stored), 10_000, 'both clients saw everything');
  const { problems, figures } = verify({ senders, peers: [erin, frank], stored });
  printFigures('request_id stripped for one client (fence mode), memory store', figures, { 'request_ids stripped by the proxy': strip.stripped });
  assert.deepEqual(problems, []);
  assert.equal(figures.stored, 80);
  assert.ok(strip.stripped > 40, `${strip.stripped} request_ids stripped`);
});

test('a message over the server\'s read limit: 1009, refused, never sent again; the messages around it are stored once', async (t) => {
  const srv = await startServer(bin, await freePort());
  t.after(() => srv.stop());
  // maxFrameBytes 0: the client does not know the server's limit (64 KiB) beforehand.
  const gina = await newClient(srv.url, 'gina', { maxFrameBytes: 0 });
  t.after(() => gina.client.close());
  const room = await gina.client.createRoom({ type: 'GroupChat', name: 'big', participants: [] });
  const big = 'x'.repeat(70_000);
  const results = await Promise.allSettled(['before', big, 'after'].map((x) => gina.client.sendMessage(room.id, x)));
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.ok(results[1].reason instanceof FrameRejectedError && results[1].reason.code === 1009, String(results[1].reason));
  const closed = gina.states.find((s) => s.state === 'disconnected');
  assert.equal(closed.code, 1009);
  await gina.client.whenConnected();
  const stored = await history(srv.url, 'gina', room.id);
  assert.deepEqual(stored.map((m) => m.content), ['before', 'after']);
  // The limit the close stated is kept: the next big message is refused before it is sent.
  const connections = gina.client.stats.connections;
  await assert.rejects(gina.client.sendMessage(room.id, big), FrameRejectedError);
  assert.equal(gina.client.stats.connections, connections);
  console.log(`1009: refused ${results[1].reason.message}; stored ${stored.length} of 2 others, each once`);
});

test('presence: queryPresence answers the announced state, and presence.dispatch follows a close', async (t) => {
  const srv = await startServer(bin, await freePort(), { CHATMUX_PRESENCE_GRACE: '200ms', CHATMUX_PRESENCE_INTERVAL: '100ms' });
  t.after(() => srv.stop());
  const erin = await newClient(srv.url, 'erin');
  const finn = await newClient(srv.url, 'finn');
  t.after(() => erin.client.close());
  const finnId = await userId(srv, 'finn');
  const erinId = await userId(srv, 'erin');
  const room = await erin.client.createRoom({ type: 'GroupChat', name: 'presence', participants: [finnId] });
  const users = await erin.client.queryPresence(room.id);
  assert.deepEqual(users.map((u) => [u.user_id, u.online]), [[erinId, true], [finnId, true]].sort((a, b) => a[0] - b[0]));
  assert.deepEqual((await erin.client.queryPresence([finnId, 999999])).map((u) => u.user_id), [finnId], 'a stranger is left out');
  const seen = [];
  erin.client.on('presence.dispatch', (d) => seen.push(d));
  await finn.client.close();
  await waitFor(() => seen.some((d) => d.user_id === finnId && !d.online), 10_000, 'finn announced offline');
  const off = seen.find((d) => d.user_id === finnId);
  assert.equal(off.room_id, room.id);
  assert.equal(off.username, 'finn');
  assert.match(off.last_seen, /^\d{4}-\d\d-\d\dT/);
  assert.equal((await erin.client.queryPresence(room.id)).find((u) => u.user_id === finnId).online, false);
});
