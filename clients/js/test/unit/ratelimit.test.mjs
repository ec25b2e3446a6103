// The outbox's replay against the server's per-user send limit
// (docs/protocol.md#rate-limits): a message the user made while offline is
// never lost to a 4029; a message made while connected is refused by one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ChatClient, parseGoDuration, rateLimitHintMs, ServerError } from '../../dist/index.js';
import { ReplayPacer } from '../../dist/pacing.js';
import { FakeChat, waitFor, fast, record } from '../fake-server.mjs';

const sends = (s) => s.received.filter((r) => r.env.event_type === 'message.send');

test('parseGoDuration reads durations as Go prints them', () => {
  const cases = [
    ['20s', 20000],
    ['1m0s', 60000],
    ['1h30m0s', 5400000],
    ['200ms', 200],
    ['1.5s', 1500],
    ['500µs', 0.5],
    ['100us', 0.1],
    ['', undefined],
    ['20', undefined],
    ['s', undefined],
    ['20x', undefined],
    ['20s junk', undefined],
  ];
  for (const [in_, want] of cases) assert.equal(parseGoDuration(in_), want, in_);
});

test('rateLimitHintMs: the refill interval of the limit a 4029 states', () => {
  const cases = [
    ['Rate limit exceeded: 100 events per 20s for message.send.', 200],
    ['Rate limit exceeded: 30 events per 1m0s for message.send.', 2000],
    ['Rate limit exceeded: 1 events per 300ms for message.send.', 300],
    ['Rate limit exceeded: 3 events per 1m0s for unknown events.', 20000],
    ['Rate limit exceeded.', undefined],
    ['Rate limit exceeded: 0 events per 1s for x.', undefined],
    [{ detail: 'x' }, undefined],
    [['100 events per 20s'], undefined],
  ];
  for (const [detail, want] of cases) assert.equal(rateLimitHintMs(detail), want, JSON.stringify(detail));
});

test('ReplayPacer: no pacing before a 4029; then one at a time at the stated rate; a refused window counts once', () => {
  let now = 1000;
  const p = new ReplayPacer({ baseMs: 1000, capMs: 30000, random: () => 0.5 }, () => now);
  assert.equal(p.wait(5), 0, 'not limited: any number in flight');
  const tickets = [p.ticket(), p.ticket(), p.ticket()];
  // The first refusal of a window starts a hold: 200 ms + jitter in [0, 200).
  assert.equal(p.rateLimited(tickets[0], 'Rate limit exceeded: 100 events per 20s for message.send.'), 300);
  // The others of the same window are covered by it: no longer hold, no backoff step.
  assert.equal(p.rateLimited(tickets[1], 'Rate limit exceeded: 100 events per 20s for message.send.'), 300);
  assert.equal(p.rateLimited(tickets[2], 'Rate limit exceeded: 100 events per 20s for message.send.'), 300);
  assert.equal(p.wait(0), 300);
  now += 300;
  assert.equal(p.wait(0), 0);
  const t = p.ticket();
  assert.equal(p.wait(1), 200, 'the next one not before the interval');
  now += 200;
  assert.equal(p.wait(1), -1, 'one at a time: wait for the answer');
  assert.equal(p.wait(0), 0);
  // A 4029 in a row doubles the jitter's ceiling: 200 + 0.5 * 400.
  assert.equal(p.rateLimited(t, 'Rate limit exceeded: 100 events per 20s for message.send.'), 400);
  p.succeeded();
  const t2 = p.ticket();
  now += 1000;
  assert.equal(p.rateLimited(t2, 'Rate limit exceeded: 100 events per 20s for message.send.'), 300, 'a success restarts the backoff');
  // Without a hint: the client's backoff (full jitter from baseMs).
  const q = new ReplayPacer({ baseMs: 1000, capMs: 30000, random: () => 0.5 }, () => now);
  assert.equal(q.rateLimited(q.ticket(), 'slow down'), 500);
  assert.equal(q.rateLimited(q.ticket(), 'slow down'), 1000);
  q.reset();
  assert.equal(q.wait(3), 0, 'reset: no pacing');
});

for (const mode of ['echo', 'fence']) {
  test(`[${mode}] a replay past the send limit loses nothing: 4029s keep the messages, which go out paced, in order`, { timeout: 10_000 }, async (t) => {
    // 5 at once, then one every 40 ms.
    const s = await new FakeChat({ mode, sendLimit: { events: 5, perMs: 200 } }).start();
    t.after(() => s.stop());
    const room = s.addRoom(['alice']);
    const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
    t.after(() => c.close());
    const log = record(c, 'sendFailed', 'sendDelayed', 'sent');
    // Written while offline.
    const texts = Array.from({ length: 20 }, (_, i) => `m${i}`);
    const ps = texts.map((x) => c.sendMessage(room, x));
    await c.connect();
    const got = await Promise.all(ps);
    assert.deepEqual(got.map((m) => m.content), texts);
    assert.deepEqual(s.messages(room).map((m) => m.content), texts, 'stored once each, in order');
    assert.equal(log.filter((e) => e.name === 'sendFailed').length, 0);
    assert.equal(c.pendingMessages.length, 0);
    assert.ok(s.refused.length > 0, 'the replay ran into the limit');
    assert.equal(c.stats.rateLimited, s.refused.length);
    const delayed = log.filter((e) => e.name === 'sendDelayed');
    assert.equal(delayed.length, s.refused.length);
    assert.ok(delayed.every((e) => e.error instanceof ServerError && e.error.code === 4029));
    // Paced: once the first 4029 was answered, the replayed sends that
    // were stored went out at least the stated interval apart.
    const firstRefusal = s.refused[0].at;
    const storedAt = new Map(s.messages(room).map((m) => [m.client_msg_id, 0]));
    const later = sends(s).filter((r) => r.at > firstRefusal && storedAt.has(r.env.data.client_msg_id));
    const accepted = later.filter((r) => !s.refused.some((x) => x.clientMsgId === r.env.data.client_msg_id && x.at === r.at));
    for (let i = 1; i < accepted.length; i++) {
      const gap = accepted[i].at - accepted[i - 1].at;
      assert.ok(gap >= 35, `replayed sends ${i - 1} and ${i} went out ${gap} ms apart (the limit allows one per 40 ms)`);
    }
    // Far fewer refusals than messages: the window refused together, then paced.
    assert.ok(s.refused.length < texts.length, `${s.refused.length} refusals for ${texts.length} messages`);
  });
}

test('a 4029 to a message made while connected is a refusal: rejected, sendFailed, out of the outbox', { timeout: 10_000 }, async (t) => {
  const s = await new FakeChat({ sendLimit: { events: 2, perMs: 60000 } }).start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const log = record(c, 'sendFailed', 'sendDelayed');
  await c.connect();
  await c.whenConnected();
  await c.sendMessage(room, 'one');
  await c.sendMessage(room, 'two');
  await assert.rejects(c.sendMessage(room, 'three'), (err) => err instanceof ServerError && err.code === 4029);
  assert.equal(log.filter((e) => e.name === 'sendFailed').length, 1);
  assert.equal(log.filter((e) => e.name === 'sendDelayed').length, 0);
  assert.equal(c.pendingMessages.length, 0);
  assert.equal(sends(s).length, 3, 'sent once, not retried');
  assert.deepEqual(s.messages(room).map((m) => m.content), ['one', 'two']);
});

test('a message made while connected during a replay waits behind it and is paced with it, not refused', { timeout: 10_000 }, async (t) => {
  const s = await new FakeChat({ sendLimit: { events: 3, perMs: 150 } }).start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const failed = [];
  c.on('sendFailed', (e) => failed.push(e));
  const offline = Array.from({ length: 8 }, (_, i) => c.sendMessage(room, `offline ${i}`));
  await c.connect();
  await c.whenConnected();
  await waitFor(() => s.refused.length > 0, 3000, 'the replay hits the limit');
  const live = c.sendMessage(room, 'typed during the replay');
  await Promise.all([...offline, live]);
  assert.deepEqual(failed, []);
  assert.equal(s.messages(room).at(-1).content, 'typed during the replay');
  assert.equal(s.messages(room).length, 9);
});

test('the retry hint is honoured: the next replayed send waits at least the interval the 4029 states', { timeout: 10_000 }, async (t) => {
  // One send per 300 ms; the client's own backoff is much shorter (fast: 10 ms base).
  const s = await new FakeChat({ sendLimit: { events: 1, perMs: 300 } }).start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  const delays = [];
  c.on('sendDelayed', (e) => delays.push(e.delayMs));
  const ps = ['a', 'b', 'c'].map((x) => c.sendMessage(room, x));
  await c.connect();
  await Promise.all(ps);
  assert.ok(delays.length > 0);
  assert.ok(delays.every((d) => d >= 300), `delays ${delays}`);
  assert.deepEqual(s.messages(room).map((m) => m.content), ['a', 'b', 'c']);
});

test('a message resent by the client (after 4013) that meets 4029 is kept, not refused', { timeout: 10_000 }, async (t) => {
  const s = await new FakeChat().start();
  t.after(() => s.stop());
  const room = s.addRoom(['alice']);
  const c = new ChatClient({ url: s.url + '?user=alice', WebSocket, ...fast });
  t.after(() => c.close());
  await c.connect();
  await c.whenConnected();
  const answers = [
    { code: 4013, detail: 'Service temporarily unavailable, try again.' },
    { code: 4029, detail: 'Rate limit exceeded: 10 events per 1s for message.send.' },
  ];
  s.onEvent = (conn, env) => {
    if (env.event_type !== 'message.send' || answers.length === 0) return false;
    conn.push({ error: answers.shift(), request_id: env.request_id });
    return true;
  };
  const m = await c.sendMessage(room, 'persistent');
  assert.equal(m.content, 'persistent');
  assert.equal(sends(s).length, 3);
  assert.equal(c.stats.rateLimited, 1);
});
