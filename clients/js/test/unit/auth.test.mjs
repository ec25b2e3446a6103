import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ChatClient } from '../../dist/index.js';
import { FakeChat, waitFor, fast, record } from '../fake-server.mjs';

// The fake server refuses the tokens in `refused` with a 4001 close after the handshake.
async function server(refused) {
  const s = await new FakeChat().start();
  s.onConnect = (conn, url) => {
    if (refused.has(url.searchParams.get('token'))) {
      conn.close(4001, 'authentication failed');
      return false;
    }
  };
  return s;
}

test('4001: the token function is asked for a fresh token and the client connects with it', async (t) => {
  const s = await server(new Set(['expired']));
  t.after(() => s.stop());
  const tokens = ['expired', 'alice'];
  const calls = [];
  const c = new ChatClient({
    url: s.url,
    WebSocket,
    ...fast,
    token: async () => {
      const tok = tokens[Math.min(calls.length, tokens.length - 1)];
      calls.push(tok);
      return tok;
    },
  });
  t.after(() => c.close());
  const log = record(c, 'disconnected', 'connected', 'signedOut');
  await c.connect();
  await c.whenConnected();
  assert.deepEqual(calls, ['expired', 'alice']);
  const down = log.find((e) => e.name === 'disconnected');
  assert.equal(down.code, 4001);
  assert.equal(down.willReconnect, true);
  assert.equal(down.delayMs, 0, 'a refresh is tried at once');
  assert.equal(log.filter((e) => e.name === 'signedOut').length, 0);
});

test('4001 twice in a row signs out and stops', async (t) => {
  const s = await server(new Set(['bad']));
  t.after(() => s.stop());
  let calls = 0;
  const c = new ChatClient({ url: s.url, WebSocket, ...fast, token: () => (calls++, 'bad') });
  const log = record(c, 'disconnected', 'signedOut');
  await c.connect();
  await assert.rejects(c.whenConnected(), { name: 'ClientClosedError' });
  const out = log.find((e) => e.name === 'signedOut');
  assert.equal(out.code, 4001);
  assert.equal(out.willReconnect, false);
  assert.equal(calls, 2);
  assert.equal(s.connections, 2);
  await assert.rejects(c.roomInfo('x'), { name: 'ClientClosedError' });
  await assert.rejects(c.sendMessage('x', 'hi'), { name: 'ClientClosedError' });
  // Nothing else happens: no connection within many backoff periods.
  await new Promise((r) => setTimeout(r, 10 * fast.backoff.capMs));
  assert.equal(s.connections, 2);
  assert.equal(c.state, 'disconnected');
});

test('a fixed token is never retried after 4001', async (t) => {
  const s = await server(new Set(['bad']));
  t.after(() => s.stop());
  const c = new ChatClient({ url: s.url, WebSocket, ...fast, token: 'bad' });
  const log = record(c, 'signedOut');
  await c.connect();
  await waitFor(() => log.length === 1, 3000, 'signedOut');
  assert.equal(s.connections, 1);
});

test('a 4001 after a successful connection is refreshed again (the count restarts)', async (t) => {
  const refused = new Set();
  const s = await server(refused);
  t.after(() => s.stop());
  let n = 0;
  const c = new ChatClient({ url: s.url, WebSocket, ...fast, token: () => `t${++n}` });
  t.after(() => c.close());
  const log = record(c, 'connected', 'signedOut');
  await c.connect();
  await c.whenConnected();
  for (let round = 0; round < 2; round++) {
    // The current token becomes invalid, the server closes with 4001; the next one works.
    refused.add(`t${n}`);
    for (const conn of s.conns) conn.close(4001, 'authentication failed');
    await waitFor(() => log.filter((e) => e.name === 'connected').length === round + 2, 3000, 'reconnect');
  }
  assert.equal(log.filter((e) => e.name === 'signedOut').length, 0);
});

test('a token function that returns null signs out without connecting', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const c = new ChatClient({ url: s.url, WebSocket, ...fast, token: () => null });
  const log = record(c, 'signedOut');
  await c.connect();
  await waitFor(() => log.length === 1, 3000, 'signedOut');
  assert.equal(s.connections, 0);
});

test('a token function that throws is retried with backoff', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  let n = 0;
  const c = new ChatClient({
    url: s.url,
    WebSocket,
    ...fast,
    token: () => {
      if (++n < 3) throw new Error('identity provider down');
      return 'alice';
    },
  });
  t.after(() => c.close());
  const errors = [];
  c.on('error', (e) => errors.push(e.message));
  await c.connect();
  await c.whenConnected();
  assert.equal(n, 3);
  assert.equal(errors.length, 2);
});
