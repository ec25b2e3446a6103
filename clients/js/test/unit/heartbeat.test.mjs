import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ChatClient } from '../../dist/index.js';
import { FakeChat, waitFor, fast, record } from '../fake-server.mjs';

test('a connection that stops answering heartbeats is dropped and replaced', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  // The first connection answers its first heartbeat, then nothing: a dead peer
  // whose TCP connection stays up.
  let answered = 0;
  s.onEvent = (conn, env) => s.connections === 1 && env.event_type === 'session.heartbeat' && answered++ > 0;
  const c = new ChatClient({
    url: s.url + '?user=alice',
    WebSocket,
    ...fast,
    heartbeat: { intervalMs: 30, timeoutMs: 100 },
  });
  t.after(() => c.close());
  const log = record(c, 'disconnected', 'connected');
  await c.connect();
  await waitFor(() => log.filter((e) => e.name === 'connected').length === 2, 3000, 'reconnect');
  const down = log.find((e) => e.name === 'disconnected');
  assert.equal(down.reason, 'heartbeat timeout');
  assert.equal(down.willReconnect, true);
  assert.ok(s.received.filter((r) => r.env.event_type === 'session.heartbeat').length >= 3);
});

test('a server that accepts but never answers is left after connectTimeoutMs', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  s.onEvent = () => s.connections === 1;
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast, connectTimeoutMs: 100 });
  t.after(() => c.close());
  const log = record(c, 'disconnected', 'connected');
  await c.connect();
  await c.whenConnected();
  assert.equal(log[0].name, 'disconnected');
  assert.equal(log[0].reason, 'connect timeout');
  assert.equal(s.connections, 2);
});
