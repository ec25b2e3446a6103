import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ChatClient, decodeFrames } from '../../dist/index.js';
import { FakeChat, waitFor, fast } from '../fake-server.mjs';

test('decodeFrames: one object, a batch array, bytes', () => {
  const cases = [
    { in: '{"eventType":"a","data":{}}', want: ['a'] },
    { in: '[{"eventType":"a","data":{}},{"eventType":"b","data":[]},{"status":"success"}]', want: ['a', 'b', undefined] },
    { in: Buffer.from('[{"eventType":"x"}]'), want: ['x'] },
    { in: new TextEncoder().encode('{"eventType":"y"}').buffer, want: ['y'] },
    { in: '[1, null, "s", {"eventType":"z"}]', want: ['z'] },
  ];
  for (const c of cases) assert.deepEqual(decodeFrames(c.in).map((f) => f.eventType), c.want);
  assert.throws(() => decodeFrames('not json'), SyntaxError);
});

test('chatmux.batch.v1 is asked for by default and batched frames are split in order', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const seen = [];
  c.on('message', (m) => seen.push(m.seq));
  const typing = [];
  c.on('messagetyping.dispatch', (d) => typing.push(d.username));
  c.trackRoom(room, 0);
  await c.connect();
  await c.whenConnected();
  const conn = [...s.conns][0];
  assert.equal(conn.batched, true);
  const before = conn.batches.length;
  // One turn: ten messages and a typing dispatch go out as one WebSocket message.
  for (let i = 0; i < 10; i++) s.deliver(s.store(room, 'bob', `m${i}`));
  conn.push({ eventType: 'messagetyping.dispatch', data: { username: 'bob', room_id: room, user_id: 2 } });
  await waitFor(() => seen.length === 10 && typing.length === 1, 3000, 'batch');
  assert.ok(conn.batches.slice(before).includes(11), `batches: ${conn.batches}`);
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

test('batch: false asks for no subprotocol', async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast, batch: false });
  t.after(() => c.close());
  await c.connect();
  await c.whenConnected();
  assert.equal([...s.conns][0].batched, false);
});
