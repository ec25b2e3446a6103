import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ChatClient } from '../../dist/index.js';
import { FakeChat, waitFor, fast, record } from '../fake-server.mjs';

// docs/protocol.md#deleted-users: 4011 "user deleted" is final.

test('4011 at the handshake signs out at once: no token refresh, no reconnect', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  s.onConnect = (conn) => {
    conn.close(4011, 'user deleted');
    return false;
  };
  let calls = 0;
  const c = new ChatClient({ url: s.url, WebSocket, ...fast, token: () => (calls++, 'alice') });
  const log = record(c, 'disconnected', 'signedOut');
  await c.connect();
  await assert.rejects(c.whenConnected(), { name: 'ClientClosedError' });
  const out = log.find((e) => e.name === 'signedOut');
  assert.equal(out.code, 4011);
  assert.equal(out.closeReason, 'user deleted');
  assert.equal(out.willReconnect, false);
  assert.equal(calls, 1, 'the token function is not asked again');
  assert.equal(log.filter((e) => e.name === 'disconnected' && e.willReconnect).length, 0);
  // Nothing else happens: no connection within many backoff periods.
  await new Promise((r) => setTimeout(r, 10 * fast.backoff.capMs));
  assert.equal(s.connections, 1);
  assert.equal(c.state, 'disconnected');
  await assert.rejects(c.sendMessage('x', 'hi'), { name: 'ClientClosedError' });
});

test('4011 on an open connection signs out and stops', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const c = new ChatClient({ url: s.url, WebSocket, ...fast, token: 'alice' });
  const log = record(c, 'connected', 'disconnected', 'signedOut');
  await c.connect();
  await c.whenConnected();
  for (const conn of s.conns) conn.close(4011, 'user deleted');
  await waitFor(() => log.some((e) => e.name === 'signedOut'), 3000, 'signedOut');
  const out = log.find((e) => e.name === 'signedOut');
  assert.equal(out.code, 4011);
  assert.equal(out.willReconnect, false);
  await new Promise((r) => setTimeout(r, 10 * fast.backoff.capMs));
  assert.equal(s.connections, 1, 'no reconnect');
  assert.equal(log.filter((e) => e.name === 'connected').length, 1);
  await assert.rejects(c.roomInfo('x'), { name: 'ClientClosedError' });
});
