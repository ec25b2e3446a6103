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
  await waitFor(() => seen.length === 3, 3000, 'catch-up of a');
  assert.deepEqual(seen, [[a, 1], [a, 2], [a, 3]]);
  assert.equal(results.length, 1);
  assert.deepEqual(results[0], { reason: 'broker', caughtUp: [a], added: [d], removed: [b] });
  assert.equal(raw.length, 1);
  assert.deepEqual(removed, [{ roomId: b, reason: 'resync' }]);
  assert.deepEqual(c.trackedRooms.sort(), [a, quiet, d].sort());
  assert.equal(c.lastSeq(d), 1, 'a new room is tracked from its latest seq');
  // Only a (and d, added with its seq) were asked for; quiet was up to date.
  const asked = s.received.filter((r) => r.env.event_type === 'room.messages').slice(-(c.stats.catchUpRequests - before));
  assert.ok(asked.every((r) => r.env.data.room_id !== quiet));
});
