import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ChatClient } from '../../dist/index.js';
import { FakeChat, waitFor, fast } from '../fake-server.mjs';

for (const mode of ['echo', 'fence']) {
  test(`[${mode}] gap fill: history in pages, then a gap fetched before the newer message`, async (t) => {
    const s = await new FakeChat({ mode, pageCap: 2 }).start();
    t.after(() => s.stop());
    const room = s.addRoom(['alice']);
    for (let i = 1; i <= 5; i++) s.store(room, 'alice', `m${i}`);
    const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
    t.after(() => c.close());
    const seen = [];
    c.on('message', (m) => seen.push(m.seq));
    c.trackRoom(room, 0);
    await c.connect();
    await waitFor(() => seen.length === 5, 3000, 'history');
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
    assert.ok(c.stats.catchUpRequests >= 3, 'has_more is followed');

    // 6 and 7 are stored but their dispatches are lost; 8 arrives.
    s.store(room, 'alice', 'm6');
    s.store(room, 'alice', 'm7');
    s.deliver(s.store(room, 'alice', 'm8'));
    await waitFor(() => seen.length === 8, 3000, 'gap fill');
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(c.stats.gapsDetected, 1);
    assert.equal(c.lastSeq(room), 8);
  });

  test(`[${mode}] live messages during a catch-up wait; duplicates are dropped by (room, seq)`, async (t) => {
    const s = await new FakeChat({ mode }).start();
    t.after(() => s.stop());
    const room = s.addRoom(['alice']);
    const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
    t.after(() => c.close());
    const seen = [];
    c.on('message', (m) => seen.push(m.seq));
    c.trackRoom(room, 0);
    await c.connect();
    await c.whenConnected();
    s.deliver(s.store(room, 'alice', 'm1'));
    await waitFor(() => seen.length === 1, 3000, 'm1');

    // 2 and 3 lost; 4 shows the gap. While the catch-up is being answered,
    // 5 is stored and delivered live (it arrives before the catch-up's answer,
    // which contains it too).
    s.store(room, 'alice', 'm2');
    s.store(room, 'alice', 'm3');
    let held = false;
    s.onEvent = (conn, env) => {
      if (env.event_type === 'room.messages' && !held) {
        held = true;
        s.deliver(s.store(room, 'alice', 'm5'));
        s.deliver(s.messages(room)[0]); // and an old one again
        s.handle(conn, env);
        return true;
      }
    };
    s.deliver(s.store(room, 'alice', 'm4'));
    await waitFor(() => seen.length === 5, 3000, 'catch-up');
    // Everything again: live and by catch-up.
    for (const m of s.messages(room)) s.deliver(m);
    await c.roomInfo(room); // a round trip: every frame before it was handled
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
    // m1 during the catch-up, then all five: six dropped (m5 waited, it was no duplicate).
    assert.equal(c.stats.duplicatesDropped, 6);
  });
}

test('a gap left by a deleted message does not stop delivery', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const seen = [];
  c.on('message', (m) => seen.push(m.seq));
  c.trackRoom(room, 0);
  await c.connect();
  await c.whenConnected();
  s.deliver(s.store(room, 'alice', 'm1'));
  s.store(room, 'alice', 'deleted');
  s.messages(room).splice(1, 1); // hard-deleted: seq 2 is gone for good
  s.deliver(s.store(room, 'alice', 'm3'));
  await waitFor(() => seen.length === 2, 3000, 'm3');
  assert.deepEqual(seen, [1, 3]);
});

test('after a reconnect every tracked room is caught up', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const rooms = [s.addRoom(['alice', 'bob']), s.addRoom(['alice']), s.addRoom(['alice', 'carol'])];
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const seen = new Map(rooms.map((r) => [r, []]));
  c.on('message', (m) => seen.get(m.room.id).push(m.seq));
  await c.connect();
  await c.listRooms(); // the rooms are tracked from room.list
  assert.deepEqual(c.trackedRooms.sort(), [...rooms].sort());
  for (const r of rooms) s.deliver(s.store(r, 'bob', 'before'));
  await waitFor(() => [...seen.values()].every((l) => l.length === 1), 3000, 'live');
  // The connection drops; messages stored meanwhile are not delivered.
  s.dropDispatch = () => true;
  for (const conn of s.conns) conn.ws.terminate();
  for (const r of rooms) for (let i = 0; i < 3; i++) s.deliver(s.store(r, 'bob', 'while away'));
  s.dropDispatch = null;
  await waitFor(() => [...seen.values()].every((l) => l.length === 4), 3000, 'catch-up after reconnect');
  for (const r of rooms) assert.deepEqual(seen.get(r), [1, 2, 3, 4]);
});

test('a room the user lost (4002 on catch-up) is no longer tracked', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const removed = [];
  c.on('roomRemoved', (e) => removed.push(e));
  await c.connect();
  await c.whenConnected();
  s.rooms.get(room).members.delete('alice');
  c.trackRoom(room, 0);
  await waitFor(() => removed.length === 1, 3000, 'roomRemoved');
  assert.equal(removed[0].roomId, room);
  assert.deepEqual(c.trackedRooms, []);
});

// docs/protocol.md#delivery: a room the client learns of without a known
// position (being added, a first message of a room it did not know) starts
// at seq 0, and is caught up after every reconnect like every tracked room.
test('a room the user was added to is caught up after a reconnect from seq 0: no message is skipped', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const c = new ChatClient({ url: s.url + '?user=bob', WebSocket, ...fast });
  t.after(() => c.close());
  const seen = [];
  c.on('message', (m) => seen.push(m.seq));
  await c.connect();
  await c.whenConnected();
  // Bob is added to G before any message of it.
  const g = s.addRoom(['alice', 'bob']);
  s.toUser('bob', { eventType: 'roomaddmembers.dispatch', data: { room: s.detail(s.rooms.get(g)), members: [s.user('bob')] } });
  await waitFor(() => c.trackedRooms.includes(g), 3000, 'G tracked');
  // His connection drops; Alice sends seq 1 meanwhile.
  s.dropDispatch = () => true;
  for (const conn of s.conns) conn.ws.terminate();
  s.deliver(s.store(g, 'alice', 'one'));
  s.dropDispatch = null;
  await waitFor(() => c.stats.connections === 2, 3000, 'reconnect');
  // After the reconnect Alice sends seq 2.
  s.deliver(s.store(g, 'alice', 'two'));
  await waitFor(() => seen.includes(2), 3000, 'seq 2');
  await c.roomInfo(g); // a round trip: every frame before it was handled
  assert.deepEqual(seen, [1, 2]);
  assert.equal(c.lastSeq(g), 2);
});

test('a first message of a room the client did not know is delivered after the room\'s earlier messages', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const c = new ChatClient({ url: s.url + '?user=bob', WebSocket, ...fast });
  t.after(() => c.close());
  const seen = [];
  c.on('message', (m) => seen.push(m.seq));
  await c.connect();
  await c.whenConnected();
  // Bob was added while away (the roomaddmembers.dispatch never reached him) and Alice wrote twice.
  const g = s.addRoom(['alice', 'bob']);
  s.store(g, 'alice', 'one');
  s.store(g, 'alice', 'two');
  s.deliver(s.store(g, 'alice', 'three'));
  await waitFor(() => seen.length === 3, 3000, 'the room from seq 1');
  assert.deepEqual(seen, [1, 2, 3]);
});
