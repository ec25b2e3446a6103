import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ChatClient, FENCE_EVENT, ServerError } from '../../dist/index.js';
import { FakeChat, waitFor, fast } from '../fake-server.mjs';

for (const mode of ['echo', 'fence']) {
  test(`[${mode}] pipelined requests each settle with their own answer or error`, async (t) => {
    const s = await new FakeChat({ mode }).start();
    t.after(() => s.stop());
    const a = s.addRoom(['alice']);
    const b = s.addRoom(['alice']);
    const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
    t.after(() => c.close());
    await c.connect();
    await c.whenConnected();
    assert.equal(c.requestIdMode, mode);
    const results = await Promise.allSettled([
      c.sendMessage(a, 'one'),
      c.sendMessage(a, ''),
      c.roomInfo('no-such-room'),
      c.roomInfo(b),
      c.heartbeat(),
      c.sendMessage(b, 'two'),
      c.request('custom.event', { x: 1 }),
      c.typing(a),
    ]);
    const got = results.map((r) => (r.status === 'fulfilled' ? 'ok' : `${r.reason.code}`));
    assert.deepEqual(got, ['ok', '4003', '4004', 'ok', 'ok', 'ok', '0', 'ok']);
    assert.equal(results[0].value.content, 'one');
    assert.equal(results[3].value.id, b);
    assert.equal(results[5].value.room.id, b);
    assert.ok(results[2].reason instanceof ServerError);
    assert.equal(results[2].reason.eventType, 'room.info');
    assert.equal(results[6].reason.detail, 'invalid event type');

    const sent = s.received.map((r) => r.env);
    if (mode === 'echo') {
      const ids = sent.map((e) => e.request_id);
      assert.ok(ids.every((id) => typeof id === 'string' && id.length >= 1 && id.length <= 64), 'every request has a request_id');
      assert.equal(new Set(ids).size, ids.length, 'request ids are unique');
      assert.ok(!sent.some((e) => e.event_type === FENCE_EVENT));
    } else {
      // Each built-in request is followed by a fence, a host's event by a heartbeat.
      const kinds = sent.slice(1).map((e) => e.event_type);
      for (let i = 0; i < kinds.length; i++) {
        if (kinds[i] === 'custom.event') assert.equal(kinds[i + 1], 'session.heartbeat');
        else if (kinds[i] !== FENCE_EVENT && kinds[i] !== 'session.heartbeat') assert.equal(kinds[i + 1], FENCE_EVENT, `after ${kinds[i]}`);
      }
    }
  });
}

test('[echo] answers out of order still settle the right promise', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const a = s.addRoom(['alice']);
  const b = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  await c.connect();
  await c.whenConnected();
  const held = [];
  s.onEvent = (conn, env) => {
    if (env.event_type === 'room.info' && held.length < 2) {
      held.push(() => s.handle(conn, env));
      if (held.length === 2) {
        held[1]();
        held[0]();
      }
      return true;
    }
  };
  const [ia, ib] = await Promise.all([c.roomInfo(a), c.roomInfo(b)]);
  assert.equal(ia.id, a);
  assert.equal(ib.id, b);
});

test('a request without an answer times out; an error envelope nobody asked for is an error event', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const errors = [];
  c.on('error', (e) => errors.push(e));
  await c.connect();
  await c.whenConnected();
  s.onEvent = (conn, env) => env.event_type === 'room.info';
  await assert.rejects(c.request('room.info', { room_id: room }, { timeoutMs: 100 }), { name: 'RequestTimeoutError' });
  for (const conn of s.conns) conn.push({ error: { code: 4003, detail: ['Invalid JSON.'] } });
  await waitFor(() => errors.length === 1, 3000, 'error event');
  assert.equal(errors[0].code, 4003);
});

test('requests made while disconnected wait for the connection; a lost connection rejects those in flight', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const early = c.roomInfo(room);
  await c.connect();
  assert.equal((await early).id, room);
  s.onEvent = (conn, env) => {
    if (env.event_type === 'room.info') {
      conn.ws.terminate();
      return true;
    }
  };
  await assert.rejects(c.roomInfo(room), { name: 'ConnectionLostError' });
});

for (const mode of ['echo', 'fence']) {
  test(`[${mode}] room.create resolves with its own room when another room's roomcreate arrives in its window`, async (t) => {
    const s = await new FakeChat({ mode }).start();
    t.after(() => s.stop());
    const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
    t.after(() => c.close());
    await c.connect();
    await c.whenConnected();
    const alice = s.user('alice');
    const bob = s.user('bob');
    const carol = s.user('carol');
    const room = (id, type, name, members) => ({
      ...s.detail({ id, members: new Set(members.map((u) => u.username)) }),
      type,
      ...(name ? { name } : {}),
    });
    s.onEvent = (conn, env) => {
      if (env.event_type !== 'room.create') return false;
      const d = env.data;
      const mine = d.type === 'OneToOneChat' ? room('mine-dm', d.type, undefined, [alice, bob]) : room('mine-group', d.type, d.name, [alice, bob]);
      // Someone else's new room with alice lands first (and one after).
      conn.push({ eventType: 'roomcreate.dispatch', data: room('other-dm', 'OneToOneChat', undefined, [carol, alice]) });
      conn.push({ eventType: 'roomcreate.dispatch', data: room('other-group', 'GroupChat', 'other', [carol, alice]) });
      conn.push({ eventType: 'roomcreate.dispatch', data: mine });
      s.handle(conn, { ...env, event_type: 'message.typing' }); // the final frame / fence answer
      return true;
    };
    const dm = await c.createRoom({ type: 'OneToOneChat', participants: [bob.id] });
    assert.equal(dm.id, 'mine-dm');
    const group = await c.createRoom({ type: 'GroupChat', name: 'trip', participants: [bob.id] });
    assert.equal(group.id, 'mine-group');
  });
}

test('a catch-up merges a stale answer of another device with its own', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const seen = [];
  c.on('message', (m) => seen.push(m.seq));
  c.trackRoom(room, 0);
  await c.connect();
  await waitFor(() => c.stats.catchUpRequests === 1, 3000, 'first catch-up');
  await c.roomInfo(room);
  s.store(room, 'bob', 'm1');
  s.store(room, 'bob', 'm2');
  s.onEvent = (conn, env) => {
    if (env.event_type === 'room.messages') {
      // Another device's answer to the same question, computed before m3 was stored.
      conn.push({
        eventType: 'roommessages.dispatch',
        data: { data: { room_id: room, messages: [s.messages(room)[0]] }, after_seq: 0, limit: 100, has_more: false },
      });
    }
    return false;
  };
  s.deliver(s.store(room, 'bob', 'm3'));
  await waitFor(() => seen.length === 3, 3000, 'catch-up');
  assert.deepEqual(seen, [1, 2, 3]);
});
