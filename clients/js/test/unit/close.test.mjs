// Close codes (docs/protocol.md#close-codes): 1013 reconnects with backoff
// and never signs out; 1007 and 1009 reconnect and never send the frame
// that caused them again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { backoffCeiling, ChatClient, ClientClosedError, ConnectionClosedError, FrameRejectedError } from '../../dist/index.js';
import { FakeChat, waitFor, fast, record } from '../fake-server.mjs';

const sendFrames = (s) => s.received.filter((r) => r.env.event_type === 'message.send');

test('1013 reconnects with backoff and never signs out: after a 4001 refresh, with a fixed token, many in a row', { timeout: 10_000 }, async (t) => {
  const cases = [
    // The first token is refused (4001); with the fresh one the server is busy 6 times (1013).
    { name: 'after a 4001 refresh', tokens: ['expired', 'alice'], refuse: ['4001', '1013', '1013', '1013', '1013', '1013', '1013'] },
    { name: 'a fixed token', token: 'alice', refuse: ['1013', '1013', '1013', '1013', '1013', '1013'] },
  ];
  for (const tc of cases) {
    const s = await new FakeChat().start();
    const room = s.addRoom(['alice']);
    const refuse = [...tc.refuse];
    s.onConnect = (conn) => {
      const code = refuse.shift();
      if (!code) return true;
      conn.close(Number(code), code === '4001' ? 'authentication failed' : 'try again later');
      return false;
    };
    const calls = [];
    const token = tc.token ?? (() => {
      const tok = tc.tokens[Math.min(calls.length, tc.tokens.length - 1)];
      calls.push(tok);
      return tok;
    });
    const c = new ChatClient({ url: s.url, WebSocket, ...fast, token });
    const log = record(c, 'disconnected', 'connected', 'signedOut');
    // A message written meanwhile waits and is stored once connected.
    const sent = c.sendMessage(room, 'while the server is busy');
    await c.connect();
    await c.whenConnected();
    assert.equal((await sent).content, 'while the server is busy', tc.name);
    assert.equal(log.filter((e) => e.name === 'signedOut').length, 0, `${tc.name}: never signed out`);
    const busy = log.filter((e) => e.name === 'disconnected' && e.code === 1013);
    assert.equal(busy.length, 6, tc.name);
    busy.forEach((e, i) => {
      assert.equal(e.willReconnect, true, `${tc.name}: 1013 #${i} reconnects`);
      assert.ok(e.delayMs >= 0 && e.delayMs < backoffCeiling(e.attempt - 1, fast.backoff), `${tc.name}: 1013 #${i} waited ${e.delayMs}`);
    });
    // The retries back off: attempt numbers grow by one each time.
    assert.deepEqual(busy.map((e) => e.attempt), [1, 2, 3, 4, 5, 6], tc.name);
    if (tc.tokens) assert.equal(calls.length, 8, 'the token function is asked before every attempt');
    assert.equal(s.messages(room).length, 1);
    await c.close();
    await s.stop();
  }
});

for (const mode of ['echo', 'fence']) {
  test(`[${mode}] 1009: the frame over the server's limit is never sent again; the others are stored once; the limit is learnt`, { timeout: 10_000 }, async (t) => {
    const s = await new FakeChat({ mode, readLimit: 4096 }).start();
    t.after(() => s.stop());
    const room = s.addRoom(['alice']);
    // The client does not know the server's limit beforehand.
    const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast, maxFrameBytes: 0 });
    t.after(() => c.close());
    const failed = record(c, 'sendFailed');
    await c.connect();
    await c.whenConnected();
    const big = 'x'.repeat(6000);
    const [a, tooBig, b] = await Promise.allSettled([c.sendMessage(room, 'a'), c.sendMessage(room, big), c.sendMessage(room, 'b')]);
    assert.equal(a.status, 'fulfilled');
    assert.equal(b.status, 'fulfilled');
    assert.equal(tooBig.status, 'rejected');
    assert.ok(tooBig.reason instanceof FrameRejectedError && tooBig.reason.code === 1009, String(tooBig.reason));
    assert.equal(failed.length, 1);
    assert.equal(failed[0].error, tooBig.reason);
    assert.deepEqual(s.messages(room).map((m) => m.content).sort(), ['a', 'b']);
    assert.equal(s.received.filter((r) => r.tooBig).length, 1, 'the big frame was sent once');
    assert.equal(c.stats.connections, 2, 'reconnected after the 1009');
    assert.equal(c.pendingMessages.length, 0);
    // The limit the close stated is kept: a big frame is refused before it is sent.
    await assert.rejects(c.sendMessage(room, big), (err) => err instanceof FrameRejectedError && err.code === 1009);
    await assert.rejects(c.request('room.info', { room_id: big }), FrameRejectedError);
    assert.equal(s.received.filter((r) => r.tooBig).length, 1);
    assert.equal(c.stats.connections, 2);
  });

  test(`[${mode}] 1007: the frame the server could not read is never sent again; the others are stored once`, { timeout: 10_000 }, async (t) => {
    const s = await new FakeChat({ mode }).start();
    t.after(() => s.stop());
    const room = s.addRoom(['alice']);
    s.invalidUtf8 = (env) => env.event_type === 'message.send' && env.data?.content === 'BAD';
    const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
    t.after(() => c.close());
    const failed = record(c, 'sendFailed');
    const log = record(c, 'disconnected');
    await c.connect();
    await c.whenConnected();
    const [a, bad, b] = await Promise.allSettled(['a', 'BAD', 'b'].map((x) => c.sendMessage(room, x)));
    assert.equal(a.status, 'fulfilled');
    assert.equal(b.status, 'fulfilled');
    assert.ok(bad.reason instanceof FrameRejectedError && bad.reason.code === 1007, String(bad.reason));
    assert.equal(failed.length, 1);
    assert.deepEqual(s.messages(room).map((m) => m.content), ['a', 'b']);
    assert.equal(sendFrames(s).filter((r) => r.env.data.content === 'BAD').length, 1, 'BAD was sent once');
    const down = log.find((e) => e.code === 1007);
    assert.equal(down.willReconnect, true);
  });
}

test('1009 without a stated limit: the largest unanswered frame is the one refused', { timeout: 10_000 }, async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  s.onEvent = (conn, env) => {
    if (env.event_type !== 'message.send' || env.data.content.length < 1000) return false;
    conn.queue = [];
    conn.ws.close(1009, '');
    return true;
  };
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const pending = Promise.allSettled(['a', 'y'.repeat(2000), 'b'].map((x) => c.sendMessage(room, x)));
  await c.connect();
  const results = await pending;
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.ok(results[1].reason instanceof FrameRejectedError);
  assert.deepEqual(s.messages(room).map((m) => m.content), ['a', 'b']);
});

test('a message whose frame is over maxFrameBytes (default 64 KiB) is refused at once and never sent', { timeout: 10_000 }, async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  await c.connect();
  await c.whenConnected();
  await assert.rejects(c.sendMessage(room, 'z'.repeat(70_000)), (err) => err instanceof FrameRejectedError && err.code === 1009);
  assert.equal(c.pendingMessages.length, 0);
  const ok = await c.sendMessage(room, 'z'.repeat(60_000));
  assert.equal(ok.content.length, 60_000);
  assert.equal(sendFrames(s).length, 1);
});

// docs/protocol.md#close-codes: 1000 asks for nothing. The client ends the
// session: nothing is left pending, unsent messages stay in the outbox, and
// connect() starts again.
test('1000 from the server ends the session: promises settle with ConnectionClosedError, the outbox is kept for connect()', { timeout: 10_000 }, async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const log = record(c, 'disconnected', 'sent');
  await c.connect();
  await c.whenConnected();
  // The server closes with 1000 on the message.send, without handling it.
  s.onEvent = (conn, env) => {
    if (env.event_type !== 'message.send') return false;
    conn.close(1000, 'bye');
    return true;
  };
  let outcome;
  c.sendMessage(room, 'kept').then(
    (m) => (outcome = { value: m }),
    (err) => (outcome = { err }),
  );
  await waitFor(() => outcome, 3000, 'the send promise settles');
  assert.ok(outcome.err instanceof ConnectionClosedError, String(outcome.err));
  assert.ok(outcome.err instanceof ClientClosedError, 'a kind of ClientClosedError');
  const down = log.find((e) => e.name === 'disconnected');
  assert.equal(down.code, 1000);
  assert.equal(down.willReconnect, false);
  assert.equal(c.state, 'disconnected');
  // Nothing waits for ever: whenConnected and new requests reject at once.
  await assert.rejects(c.whenConnected(), ConnectionClosedError);
  await assert.rejects(c.roomInfo(room), ConnectionClosedError);
  await assert.rejects(c.sendMessage(room, 'after the close'), ConnectionClosedError);
  assert.equal(s.connections, 1, 'no reconnect');
  // The unsent message stays in the outbox; connect() sends it, stored once.
  assert.deepEqual(c.pendingMessages.map((e) => e.content), ['kept']);
  s.onEvent = null;
  await c.connect();
  await c.whenConnected();
  await waitFor(() => log.some((e) => e.name === 'sent'), 3000, 'the kept message is sent');
  assert.deepEqual(s.messages(room).map((m) => m.content), ['kept']);
  assert.equal(c.pendingMessages.length, 0);
  assert.equal((await c.sendMessage(room, 'again')).content, 'again');
});

test('a request waiting for the connection when the server closes with 1000 rejects with ConnectionClosedError', { timeout: 10_000 }, async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  // The server closes with 1000 before it answers the first heartbeat.
  s.onConnect = (conn) => {
    setTimeout(() => conn.close(1000, ''), 20);
  };
  s.onEvent = () => true;
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast, requestTimeoutMs: 60_000 });
  t.after(() => c.close());
  const settled = { waiting: null, connected: null };
  c.roomInfo(room).catch((err) => (settled.waiting = err));
  c.whenConnected().catch((err) => (settled.connected = err));
  await c.connect();
  await waitFor(() => settled.waiting && settled.connected, 3000, 'both settle');
  assert.ok(settled.waiting instanceof ConnectionClosedError, String(settled.waiting));
  assert.ok(settled.connected instanceof ConnectionClosedError, String(settled.connected));
});
