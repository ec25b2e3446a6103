import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ChatClient } from '../../dist/index.js';
import { FakeChat, waitFor, fast } from '../fake-server.mjs';

test('chat.resync: listed rooms ahead are caught up, unlisted rooms dropped, new rooms tracked', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const a = s.addRoom(['alice']);
  const b = s.addRoom(['alice']);
  const quiet = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const seen = [];
  c.on('message', (m) => seen.push([m.room.id, m.seq]));
  const results = [];
  c.on('resync', (r) => results.push(r));
  const raw = [];
  c.on('chat.resync', (d) => raw.push(d));
  const removed = [];
  c.on('roomRemoved', (e) => removed.push(e));
  for (const r of [a, b, quiet]) c.trackRoom(r, 0);
  await c.connect();
  s.deliver(s.store(a, 'alice', 'a1'));
  await waitFor(() => seen.length === 1, 3000, 'a1');

  // The broker was away: a2, a3 were stored without dispatch, alice was
  // removed from b, added to d (which has a message already).
  s.store(a, 'bob', 'a2');
  s.store(a, 'bob', 'a3');
  s.rooms.get(b).members.delete('alice');
  const d = s.addRoom(['alice']);
  s.store(d, 'bob', 'd1');
  const before = c.stats.catchUpRequests;
  s.toUser('alice', {
    eventType: 'chat.resync',
    data: { rooms: [{ room_id: a, seq: 3 }, { room_id: quiet, seq: 0 }, { room_id: d, seq: 1 }], reason: 'broker' },
  });
  await waitFor(() => seen.length === 4, 3000, 'catch-up of a and d');
  // d is new to the user: its messages are delivered from seq 1.
  assert.deepEqual(seen.filter(([r]) => r === a), [[a, 1], [a, 2], [a, 3]]);
  assert.deepEqual(seen.filter(([r]) => r === d), [[d, 1]]);
  assert.equal(results.length, 1);
  assert.deepEqual(results[0], { reason: 'broker', caughtUp: [a], added: [d], removed: [b] });
  assert.equal(raw.length, 1);
  assert.deepEqual(removed, [{ roomId: b, reason: 'resync' }]);
  assert.deepEqual(c.trackedRooms.sort(), [a, quiet, d].sort());
  assert.equal(c.lastSeq(d), 1);
  // Only a and d were asked for; quiet was up to date.
  const asked = s.received.filter((r) => r.env.event_type === 'room.messages').slice(-(c.stats.catchUpRequests - before));
  assert.ok(asked.every((r) => r.env.data.room_id !== quiet));
});

test('chat.resync catches up a room the user was added to before any message: nothing is skipped', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const c = new ChatClient({ url: s.url + '?user=bob', WebSocket, ...fast });
  t.after(() => c.close());
  const seen = [];
  c.on('message', (m) => seen.push(m.seq));
  const results = [];
  c.on('resync', (r) => results.push(r));
  await c.connect();
  await c.whenConnected();
  const g = s.addRoom(['alice', 'bob']);
  s.toUser('bob', { eventType: 'roomaddmembers.dispatch', data: { room: s.detail(s.rooms.get(g)), members: [s.user('bob')] } });
  await waitFor(() => c.trackedRooms.includes(g), 3000, 'G tracked');
  // The broker was away: seq 1 was stored without dispatch.
  s.store(g, 'alice', 'one');
  s.toUser('bob', { eventType: 'chat.resync', data: { rooms: [{ room_id: g, seq: 1 }], reason: 'broker' } });
  await waitFor(() => results.length === 1, 3000, 'resync');
  assert.deepEqual(results[0].caughtUp, [g]);
  await waitFor(() => seen.length === 1, 3000, 'seq 1');
  // Then live again.
  s.deliver(s.store(g, 'alice', 'two'));
  await waitFor(() => seen.length === 2, 3000, 'seq 2');
  assert.deepEqual(seen, [1, 2]);
});
