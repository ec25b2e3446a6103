// Integration tests against the real example server on the in-memory store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
  assert.equal(alice.client.requestIdMode !== undefined, true);

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

test('the network between a client and the server is cut and restored: sends made during the cut go out after it', async (t) => {
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

  const count = 150;
  const senders = [carol, dave].map((p) => new Sender(p, [room.id], { count, intervalMs: 8 }).start());
  await waitFor(() => senders[0].sentSoFar >= count / 4, 10_000, 'a quarter sent');
  proxy.cut();
  const cutAt = senders[0].sentSoFar;
  // Carol notices the silent network by her heartbeat, and keeps sending into her outbox.
  await waitFor(() => carol.client.state !== 'connected', 10_000, 'carol notices the cut');
  await waitFor(() => senders[0].sentSoFar >= cutAt + 30, 10_000, 'sends during the cut');
  const queuedDuringCut = carol.client.pendingMessages.length;
  assert.ok(queuedDuringCut > 0, 'messages wait in the outbox during the cut');
  proxy.restore();
  await Promise.all(senders.map((s) => s.done));
  const stored = new Map([[room.id, await history(srv.url, 'dave', room.id)]]);
  await waitFor(() => caughtUp([carol, dave], stored), 10_000, 'both clients saw everything');
  const { problems, figures } = verify({ senders, peers: [carol, dave], stored });
  const down = carol.states.find((s) => s.state === 'disconnected');
  printFigures('network cut and restored (TCP proxy), memory store', figures, {
    'carol noticed the cut': down?.reason,
    'queued in carol\'s outbox during the cut': queuedDuringCut,
  });
  assert.deepEqual(problems, []);
  assert.equal(figures.sent, 2 * count);
  assert.equal(figures.stored, 2 * count);
  assert.ok(figures.perClient.carol.reconnects >= 1);
});
