// chat.resync end to end (docs/protocol.md#resync, docs/protocol.md#faults):
// two nodes on PostgreSQL and a Redis of the test's own. Redis is killed
// (SIGKILL, by its PID) while clients on both nodes send, and started again
// on the same port about 2 s later. While it is away, each node drops the
// room dispatches of its connections (they cannot be vouched for); once it
// is back, every connection gets chat.resync and its client catches up.
// Afterwards every client has every room's history exactly once, in order.
// Needs TEST_DATABASE_URL, psql and redis-server: skipped without them,
// unless CHATMUX_REQUIRE_SERVICES=1, which makes it fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildServer,
  caughtUp,
  databaseSchema,
  databaseURL,
  freePort,
  hasRedisServer,
  history,
  newClient,
  printFigures,
  Sender,
  startRedis,
  startServer,
  userId,
  verify,
  waitFor,
} from './harness.mjs';

test('PostgreSQL, two nodes, Redis killed and restarted during continuous sending: every client gets chat.resync and ends with every room, once, in order', async (t) => {
  const base = databaseURL(t);
  if (!base) return;
  if (!(await hasRedisServer())) {
    if (process.env.CHATMUX_REQUIRE_SERVICES === '1') throw new Error('redis-server is not on PATH and CHATMUX_REQUIRE_SERVICES=1');
    t.skip('redis-server is not on PATH');
    return;
  }
  const bin = await buildServer();
  const redisPort = await freePort();
  let redis = await startRedis(redisPort);
  t.after(() => redis.kill());
  const env = { DATABASE_URL: await databaseSchema(t, base), REDIS_URL: `redis://127.0.0.1:${redisPort}/0` };
  const nodeA = await startServer(bin, await freePort(), env);
  t.after(() => nodeA.stop());
  const nodeB = await startServer(bin, await freePort(), env);
  t.after(() => nodeB.stop());

  const names = ['alice', 'bob', 'carol', 'dan'];
  const ids = {};
  for (const n of names) ids[n] = await userId(nodeA, n);
  // alice and carol on node A, bob and dan on node B, and a second device
  // of bob's on node A that only reads. While Redis is away each send
  // waits for a try to reach it (tens of ms): the heartbeat is given
  // longer than the other tests give it, so that the connections stay up
  // and chat.resync, not a reconnect, is what repairs the delivery.
  const patient = { heartbeat: { intervalMs: 1000, timeoutMs: 5000 }, requestTimeoutMs: 10_000 };
  const alice = await newClient(nodeA.url, 'alice', patient);
  const bob = await newClient(nodeB.url, 'bob', patient);
  const carol = await newClient(nodeA.url, 'carol', patient);
  const dan = await newClient(nodeB.url, 'dan', patient);
  const bob2 = await newClient(nodeA.url, 'bob', patient);
  bob2.name = 'bob (2nd device, node A)';
  alice.name = 'alice (node A)';
  bob.name = 'bob (node B)';
  carol.name = 'carol (node A)';
  dan.name = 'dan (node B)';
  const peers = [alice, bob, carol, dan, bob2];
  t.after(() => Promise.all(peers.map((p) => p.client.close())));

  const all = (await alice.client.createRoom({ type: 'GroupChat', name: 'all', participants: [ids.bob, ids.carol, ids.dan] })).id;
  const ab = (await alice.client.createRoom({ type: 'OneToOneChat', participants: [ids.bob] })).id;
  const cd = (await carol.client.createRoom({ type: 'OneToOneChat', participants: [ids.dan] })).id;
  const member = { [all]: peers, [ab]: [alice, bob, bob2], [cd]: [carol, dan] };
  for (const [room, ps] of Object.entries(member)) {
    await waitFor(() => ps.every((p) => p.client.lastSeq(room) === 0), 5000, 'rooms tracked');
  }

  // About 3 s of sending; the outage is in the middle of it.
  const count = 80;
  const senders = [
    new Sender(alice, [all, ab], { count, intervalMs: 35 }),
    new Sender(bob, [all, ab], { count, intervalMs: 35 }),
    new Sender(carol, [all, cd], { count, intervalMs: 35 }),
    new Sender(dan, [all, cd], { count, intervalMs: 35 }),
  ].map((s) => s.start());
  await waitFor(() => senders.every((s) => s.sentSoFar >= count / 5), 20_000, 'a fifth sent each');
  const killedAt = Date.now();
  await redis.kill();
  const sentAtKill = senders.reduce((n, s) => n + s.sentSoFar, 0);
  // Redis is away for about 2 s while everyone keeps sending.
  await new Promise((r) => setTimeout(r, 2000));
  const sentWhileDown = senders.reduce((n, s) => n + s.sentSoFar, 0) - sentAtKill;
  // A node may be back on Redis before startRedis has seen it answer.
  const restartedAt = Date.now();
  redis = await startRedis(redisPort);
  const upAt = Date.now();
  try {
    await waitFor(() => peers.every((p) => p.resyncs.some((r) => r.at >= restartedAt)), 20_000, 'chat.resync on every connection');
  } catch (err) {
    const got = peers.map((p) => `${p.name}: ${p.resyncs.map((r) => r.at - restartedAt).join('/') || 'none'}`).join('; ');
    throw new Error(`${err.message} (ms after the restart: ${got}; node A: ${nodeA.stderr()}; node B: ${nodeB.stderr()})`);
  }
  const resyncedAt = Date.now();
  await Promise.all(senders.map((s) => s.done));
  const doneAt = Date.now();

  const stored = new Map();
  for (const [r, who] of [[all, 'alice'], [ab, 'alice'], [cd, 'carol']]) stored.set(r, await history(nodeA.url, who, r));
  const results = [];
  for (const p of peers) {
    const mine = new Map([...stored].filter(([r]) => member[r].includes(p)));
    await waitFor(() => caughtUp([p], mine), 15_000, `${p.name} caught up`);
    results.push(verify({ senders: [], peers: [p], stored: mine }));
  }
  const total = verify({ senders, peers: [], stored });
  for (const r of results) Object.assign(total.figures.perClient, r.figures.perClient);
  const problems = [...total.problems, ...results.flatMap((r) => r.problems)];
  const resyncMs = peers.map((p) => p.resyncs.find((r) => r.at >= restartedAt).at - restartedAt);
  const caughtUpRooms = peers.map((p) => p.resyncs.filter((r) => r.at >= restartedAt).reduce((n, r) => n + r.caughtUp.length, 0));
  printFigures('Redis killed (SIGKILL) and restarted, two nodes on PostgreSQL', total.figures, {
    'Redis away (ms)': restartedAt - killedAt,
    'Redis restart to answering PING (ms)': upAt - restartedAt,
    'restart to every client resynced, to every send stored (ms)': `${resyncedAt - restartedAt}, ${doneAt - restartedAt}`,
    'messages handed to sendMessage while Redis was away': sentWhileDown,
    'Redis back to chat.resync, per client (ms)': resyncMs.join(', '),
    'chat.resync per client': peers.map((p) => p.resyncs.length).join(', '),
    'rooms caught up on chat.resync, per client': caughtUpRooms.join(', '),
    'connections dropped': peers.reduce((n, p) => n + p.client.stats.connections - 1, 0),
    'disconnects': peers.flatMap((p) => p.states.filter((s) => s.state === 'disconnected').map((s) => `${p.name}: ${s.reason} ${s.code ?? ''}`)).join('; ') || 'none',
  });
  assert.deepEqual(problems, []);
  assert.equal(total.figures.sent, 4 * count);
  assert.equal(total.figures.stored, 4 * count);
  assert.equal(total.figures.lost, 0);
  assert.equal(total.figures.storedTwice, 0);
  assert.ok(results.every((r) => r.figures.duplicatesSeen === 0 && r.figures.missingSeen === 0));
  assert.ok(sentWhileDown > 0, 'messages were sent while Redis was away');
  // The repair was chat.resync's, not a reconnect's: the connections stayed up.
  assert.ok(peers.every((p) => p.client.stats.connections === 1), 'no connection was dropped');
  assert.ok(peers.every((p) => p.resyncs.length >= 1));
  assert.ok(caughtUpRooms.some((n) => n > 0), 'some rooms were behind when chat.resync came');
});
