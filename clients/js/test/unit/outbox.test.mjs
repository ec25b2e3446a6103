import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ChatClient, MemoryOutboxStorage, OutboxFullError, ServerError } from '../../dist/index.js';
import { FakeChat, waitFor, fast } from '../fake-server.mjs';

const sends = (s) => s.received.filter((r) => r.env.event_type === 'message.send').map((r) => r.env.data);

for (const mode of ['echo', 'fence']) {
  test(`[${mode}] sends made before connecting wait in the outbox and go out in order`, async (t) => {
    const s = await new FakeChat({ mode }).start();
    t.after(() => s.stop());
    const room = s.addRoom(['alice']);
    const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
    t.after(() => c.close());
    const ps = ['a', 'b', 'c'].map((x) => c.sendMessage(room, x));
    assert.equal(c.pendingMessages.length, 3);
    await c.connect();
    const got = await Promise.all(ps);
    assert.deepEqual(got.map((m) => [m.content, m.seq]), [['a', 1], ['b', 2], ['c', 3]]);
    assert.equal(c.pendingMessages.length, 0);
    assert.equal(s.messages(room).length, 3);
  });

  test(`[${mode}] a send whose answer was lost is sent again after the reconnect with the same client_msg_id, stored once`, async (t) => {
    const s = await new FakeChat({ mode }).start();
    t.after(() => s.stop());
    const room = s.addRoom(['alice']);
    const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast, autoTrackRooms: false });
    t.after(() => c.close());
    await c.connect();
    await c.whenConnected();
    let cut = false;
    s.onEvent = (conn, env) => {
      if (env.event_type === 'message.send' && !cut) {
        cut = true;
        // Stored, then the connection dies before the answer goes out.
        s.store(env.data.room_id, conn.user.username, env.data.content, env.data.client_msg_id);
        conn.ws.terminate();
        return true;
      }
    };
    const m = await c.sendMessage(room, 'hello');
    assert.equal(m.content, 'hello');
    assert.equal(s.messages(room).length, 1, 'stored exactly once');
    const frames = sends(s);
    assert.equal(frames.length, 2);
    assert.equal(frames[0].client_msg_id, frames[1].client_msg_id);
    assert.equal(m.client_msg_id, frames[0].client_msg_id);
    assert.equal(c.stats.resends, 1);
  });

  test(`[${mode}] 4013 is retried with the same client_msg_id; a refused send rejects and leaves the outbox`, async (t) => {
    const s = await new FakeChat({ mode }).start();
    t.after(() => s.stop());
    const room = s.addRoom(['alice']);
    const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
    t.after(() => c.close());
    const failed = [];
    c.on('sendFailed', (e) => failed.push(e));
    await c.connect();
    let unavailable = 2;
    s.onEvent = (conn, env) => {
      if (env.event_type === 'message.send' && unavailable > 0) {
        unavailable--;
        const rid = mode === 'echo' ? { request_id: env.request_id } : {};
        conn.push({ error: { code: 4013, detail: 'Service temporarily unavailable, try again.' }, ...rid });
        return true;
      }
    };
    const m = await c.sendMessage(room, 'eventually');
    assert.equal(m.seq, 1);
    const ids = sends(s).map((d) => d.client_msg_id);
    assert.equal(ids.length, 3);
    assert.equal(new Set(ids).size, 1);

    await assert.rejects(c.sendMessage(room, '   '), (err) => err instanceof ServerError && err.code === 4003 && err.eventType === 'message.send');
    assert.equal(failed.length, 1);
    assert.equal(c.pendingMessages.length, 0);
    assert.equal(s.messages(room).length, 1);
  });
}

test('the outbox is bounded', async (t) => {
  const c = new ChatClient({ url: 'ws://127.0.0.1:1/', WebSocket, ...fast, outbox: { max: 2 } });
  const p1 = c.sendMessage('r', 'a');
  const p2 = c.sendMessage('r', 'b');
  await assert.rejects(c.sendMessage('r', 'c'), OutboxFullError);
  assert.equal(c.pendingMessages.length, 2);
  await c.close();
  await assert.rejects(p1, { name: 'ClientClosedError' });
  await assert.rejects(p2, { name: 'ClientClosedError' });
});

test('a pluggable storage keeps the outbox: a later client sends what an earlier one could not', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const storage = new MemoryOutboxStorage();
  const saves = [];
  const spy = { load: () => storage.load(), save: (e) => (saves.push(e.length), storage.save(e)) };

  // A client that never connects (the page is closed before it can).
  const first = new ChatClient({ url: 'ws://127.0.0.1:1/', WebSocket, ...fast, outbox: { storage: spy } });
  const lost = [first.sendMessage(room, 'one', { clientMsgId: 'c-one' }), first.sendMessage(room, 'two', { clientMsgId: 'c-two' })];
  await first.close();
  await Promise.allSettled(lost);
  assert.deepEqual(storage.load().map((e) => e.clientMsgId), ['c-one', 'c-two']);

  const second = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast, outbox: { storage: spy } });
  t.after(() => second.close());
  const sent = [];
  second.on('sent', (e) => sent.push(e));
  await second.connect();
  await waitFor(() => sent.length === 2, 3000, 'restored messages sent');
  assert.deepEqual(sent.map((e) => [e.clientMsgId, e.message.content]), [['c-one', 'one'], ['c-two', 'two']]);
  await second.close();
  assert.deepEqual(storage.load(), []);
  assert.equal(saves.at(-1), 0);
  assert.deepEqual(s.messages(room).map((m) => m.content), ['one', 'two']);
});

test('the same client_msg_id twice is one message and both promises get it', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const a = c.sendMessage(room, 'x', { clientMsgId: 'c-same' });
  const b = c.sendMessage(room, 'x', { clientMsgId: 'c-same' });
  await c.connect();
  const [ma, mb] = await Promise.all([a, b]);
  assert.equal(ma.id, mb.id);
  assert.equal(s.messages(room).length, 1);
});
