import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { backoffCeiling, backoffDelay, ChatClient } from '../../dist/index.js';
import { FakeChat, waitFor, fast, record } from '../fake-server.mjs';

test('the ceiling doubles from the base and stops at the cap', () => {
  const o = { baseMs: 100, capMs: 1000 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 50, 5000].map((a) => backoffCeiling(a, o)),
    [100, 200, 400, 800, 1000, 1000, 1000, 1000],
  );
  assert.deepEqual([0, 1, 5, 10].map((a) => backoffCeiling(a)), [1000, 2000, 30000, 30000], 'defaults 1 s .. 30 s');
});

test('full jitter: every delay lies in [0, ceiling)', () => {
  const o = { baseMs: 100, capMs: 1000 };
  const cases = [
    { random: 0, attempt: 0, want: 0 },
    { random: 0.5, attempt: 0, want: 50 },
    { random: 0.5, attempt: 3, want: 400 },
    { random: 0.999999, attempt: 10, want: 999 },
  ];
  for (const c of cases) {
    assert.equal(backoffDelay(c.attempt, { ...o, random: () => c.random }), c.want, JSON.stringify(c));
  }
  for (let attempt = 0; attempt < 8; attempt++) {
    const ceil = backoffCeiling(attempt, o);
    const d = Array.from({ length: 2000 }, () => backoffDelay(attempt, o));
    assert.ok(Math.min(...d) >= 0, `attempt ${attempt}: below 0`);
    assert.ok(Math.max(...d) < ceil, `attempt ${attempt}: not below ${ceil}`);
    // Full jitter spreads over the whole range (not "ceiling plus a little").
    assert.ok(Math.min(...d) < ceil * 0.1 && Math.max(...d) > ceil * 0.9, `attempt ${attempt}: not spread`);
  }
});

test('after a slow-consumer close the delay is at least slowConsumerMs', () => {
  const o = { baseMs: 100, capMs: 1000, slowConsumerMs: 5000 };
  for (const r of [0, 0.3, 0.999999]) {
    const d = backoffDelay(4, { ...o, random: () => r }, true);
    assert.ok(d >= 5000 && d < 5000 + backoffCeiling(4, o), `random ${r}: ${d}`);
  }
  assert.ok(backoffDelay(0, { random: () => 0 }, true) >= 5000, 'default slowConsumerMs is 5 s');
});

test('a field of 0 or below is its default, as documented', () => {
  const cases = [
    { name: 'baseMs 0', o: { baseMs: 0 }, ceiling: [1000, 2000] },
    { name: 'baseMs -5', o: { baseMs: -5 }, ceiling: [1000, 2000] },
    { name: 'capMs 0', o: { baseMs: 100, capMs: 0 }, ceiling: [100, 200] },
    { name: 'capMs -1, attempt 20', o: { capMs: -1 }, attempt: 20, ceiling: [30000] },
    { name: 'NaN', o: { baseMs: NaN, capMs: NaN }, ceiling: [1000, 2000] },
  ];
  for (const c of cases) {
    const got = c.ceiling.map((_, i) => backoffCeiling((c.attempt ?? 0) + i, c.o));
    assert.deepEqual(got, c.ceiling, c.name);
  }
  for (const slowConsumerMs of [0, -1]) {
    const d = backoffDelay(0, { slowConsumerMs, random: () => 0 }, true);
    assert.equal(d, 5000, `slowConsumerMs ${slowConsumerMs}: the 4008 floor stays`);
  }
});

test('{baseMs: 0} against a server answering 1013 waits between attempts (no tight loop)', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  s.onConnect = (conn) => {
    if (s.connections <= 3) {
      conn.close(1013, 'try again later');
      return false;
    }
  };
  // capMs keeps the test short; baseMs 0 means the default 1000, capped at 40.
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast, backoff: { baseMs: 0, capMs: 40, random: () => 0.5 } });
  t.after(() => c.close());
  const log = record(c, 'disconnected');
  await c.connect();
  await c.whenConnected();
  const downs = log.filter((e) => e.name === 'disconnected');
  assert.equal(downs.length, 3);
  for (const e of downs) assert.equal(e.delayMs, 20, `attempt ${e.attempt}`);
});

test('a client reconnects after 1013 with delays within the bounds, then connects', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  s.onConnect = (conn) => {
    if (s.connections <= 5) {
      conn.close(1013, 'try again later');
      return false;
    }
  };
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const log = record(c, 'disconnected', 'connected', 'signedOut');
  await c.connect();
  await c.whenConnected();
  const downs = log.filter((e) => e.name === 'disconnected');
  assert.equal(downs.length, 5);
  downs.forEach((e, i) => {
    assert.equal(e.code, 1013);
    assert.equal(e.willReconnect, true, '1013 never signs out');
    assert.ok(e.delayMs >= 0 && e.delayMs < backoffCeiling(i, fast.backoff), `retry ${i}: ${e.delayMs}`);
  });
  assert.equal(log.filter((e) => e.name === 'signedOut').length, 0);
});

test('close codes: 1001, 1011, 1013, 1007, 1009 and unknown 4xxx reconnect; 4008 waits longer; 1000 stops', async (t) => {
  const cases = [
    { code: 1001, reconnect: true },
    { code: 1011, reconnect: true },
    { code: 1013, reconnect: true },
    { code: 1007, reconnect: true },
    { code: 1009, reconnect: true },
    { code: 4006, reconnect: true },
    { code: 4008, reconnect: true, slow: true },
    { code: 1000, reconnect: false },
  ];
  for (const tc of cases) {
    const s = await new FakeChat().start();
    let first;
    s.onEvent = (conn, env) => {
      if (env.event_type === 'session.heartbeat' && s.connections === 1 && !first) {
        first = conn;
        s.handle(conn, env);
        // Close once the client is connected.
        setTimeout(() => conn.close(tc.code, 'bye'), 0);
        return true;
      }
    };
    const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
    const log = record(c, 'disconnected', 'connected');
    await c.connect();
    const down = await waitFor(() => log.find((e) => e.name === 'disconnected'), 3000, `close ${tc.code}`);
    assert.equal(down.code, tc.code);
    assert.equal(down.willReconnect, tc.reconnect, `code ${tc.code}`);
    if (tc.slow) assert.ok(down.delayMs >= fast.backoff.slowConsumerMs, `4008 delay ${down.delayMs}`);
    else if (tc.reconnect) assert.ok(down.delayMs < fast.backoff.capMs, `code ${tc.code} delay ${down.delayMs}`);
    if (tc.reconnect) await waitFor(() => log.filter((e) => e.name === 'connected').length === 2, 3000, `reconnect after ${tc.code}`);
    else assert.equal(c.state, 'disconnected');
    await c.close();
    await s.stop();
  }
});

test('a server that is not there: connecting, disconnected, connecting ... then connected when it comes', async (t) => {
  const s = await new FakeChat().start();
  const port = s.port;
  await s.stop();
  const c = new ChatClient({ url: `ws://127.0.0.1:${port}/messaging/?user=alice`, WebSocket, ...fast });
  t.after(() => c.close());
  const log = record(c, 'disconnected', 'connected');
  await c.connect();
  await waitFor(() => log.filter((e) => e.name === 'disconnected').length >= 3, 3000, 'retries');
  assert.ok(log.every((e) => e.name !== 'disconnected' || e.willReconnect));
  let s2;
  try {
    s2 = await new FakeChat().start(port);
  } catch (err) {
    t.skip(`port ${port} was taken meanwhile: ${err.message}`);
    return;
  }
  t.after(() => s2.stop());
  await c.whenConnected();
  assert.equal(c.state, 'connected');
});
