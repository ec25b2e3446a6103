// Integration tests against the real example server on PostgreSQL: the
// server is killed (SIGKILL) and restarted while clients send continuously;
// a client moves between two nodes sharing PostgreSQL and Redis. They need
// TEST_DATABASE_URL (and TEST_REDIS_URL for two nodes) and psql: skipped
// without them, unless CHATMUX_REQUIRE_SERVICES=1, which makes them fail.
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import {
  buildServer,
  caughtUp,
  databaseSchema,
  databaseURL,
  freePort,
  history,
  newClient,
  printFigures,
  redisURL,
  Sender,
  startProxy,
  startServer,
  userId,
  verify,
  waitFor,
} from './harness.mjs';

test('PostgreSQL: SIGKILL and restart of the server during continuous sending: stored once, seen in order by every client', async (t) => {
  const base = databaseURL(t);
  if (!base) return;
  const bin = await buildServer();
  const dbURL = await databaseSchema(t, base);
  const port = await freePort();
  const env = { DATABASE_URL: dbURL };
  let srv = await startServer(bin, port, env);
  t.after(() => srv.stop());

  const names = ['alice', 'bob', 'carol'];
  const ids = {};
  for (const n of names) ids[n] = await userId(srv, n);
  const [alice, bob, carol] = await Promise.all(names.map((n) => newClient(srv.url, n)));
  // A second device of bob's that only reads.
  const bob2 = await newClient(srv.url, 'bob');
  bob2.name = 'bob (2nd device)';
  const peers = [alice, bob, carol, bob2];
  t.after(() => Promise.all(peers.map((p) => p.client.close())));

  const group = (await alice.client.createRoom({ type: 'GroupChat', name: 'all', participants: [ids.bob, ids.carol] })).id;
  const ab = (await alice.client.createRoom({ type: 'OneToOneChat', participants: [ids.bob] })).id;
  const bc = (await bob.client.createRoom({ type: 'OneToOneChat', participants: [ids.carol] })).id;
  const member = { [group]: [alice, bob, carol, bob2], [ab]: [alice, bob, bob2], [bc]: [bob, carol, bob2] };
  for (const [room, ps] of Object.entries(member)) {
    await waitFor(() => ps.every((p) => p.client.lastSeq(room) === 0), 5000, 'rooms tracked');
  }

  const count = 90;
  const senders = [
    new Sender(alice, [group, ab], { count, intervalMs: 10 }),
    new Sender(bob, [group, ab, bc], { count, intervalMs: 10 }),
    new Sender(carol, [group, bc], { count, intervalMs: 10 }),
  ].map((s) => s.start());

  const kills = [];
  for (const at of [count / 3, (2 * count) / 3]) {
    await waitFor(() => senders.every((s) => s.sentSoFar >= at), 20_000, `${at} sent each`);
    const killedAt = Date.now();
    await srv.kill();
    // Down: every client notices and keeps sending into its outbox.
    await waitFor(() => peers.every((p) => p.client.state !== 'connected'), 10_000, 'clients notice the kill');
    const sentWhileDown = senders.map((s) => s.sentSoFar);
    await waitFor(() => senders.every((s, i) => s.sentSoFar >= sentWhileDown[i] + 5 || s.sentSoFar === count), 10_000, 'sends while down');
    srv = await startServer(bin, port, env);
    await waitFor(() => peers.every((p) => p.client.state === 'connected'), 10_000, 'clients reconnect');
    kills.push(Date.now() - killedAt);
  }
  await Promise.all(senders.map((s) => s.done));

  const stored = new Map();
  for (const r of [group, ab, bc]) stored.set(r, await history(srv.url, 'bob', r));
  // Each peer is checked on the rooms it is a member of.
  const results = [];
  for (const p of peers) {
    const mine = new Map([...stored].filter(([r]) => member[r].includes(p)));
    await waitFor(() => caughtUp([p], mine), 15_000, `${p.name} caught up`);
    results.push(verify({ senders: [], peers: [p], stored: mine }));
  }
  const all = verify({ senders, peers: [], stored });
  for (const r of results) Object.assign(all.figures.perClient, r.figures.perClient);
  const problems = [...all.problems, ...results.flatMap((r) => r.problems)];
  printFigures('SIGKILL + restart twice during continuous sending, PostgreSQL', all.figures, {
    'request_id mode': alice.client.requestIdMode,
    'kill to all reconnected (ms)': kills.join(', '),
    'duplicates seen per client': results.map((r) => r.figures.duplicatesSeen).join(', '),
  });
  assert.deepEqual(problems, []);
  assert.equal(all.figures.sent, 3 * count);
  assert.equal(all.figures.stored, 3 * count);
  assert.equal(all.figures.lost, 0);
  assert.equal(all.figures.storedTwice, 0);
  assert.ok(results.every((r) => r.figures.duplicatesSeen === 0 && r.figures.missingSeen === 0));
});

test('PostgreSQL and Redis: a client moves from one node to the other and back mid-conversation', async (t) => {
  const base = databaseURL(t);
  if (!base) return;
  const redis = redisURL(t);
  if (!redis) return;
  const bin = await buildServer();
  const env = { DATABASE_URL: await databaseSchema(t, base), REDIS_URL: redis };
  // Channels of this test's own on a shared Redis.
  const args = ['-redis-prefix', `chatmux-js-${randomBytes(6).toString('hex')}:`];
  const nodeA = await startServer(bin, await freePort(), env, args);
  t.after(() => nodeA.stop());
  const nodeB = await startServer(bin, await freePort(), env, args);
  t.after(() => nodeB.stop());
  const proxy = await startProxy(nodeA.port);
  t.after(() => proxy.close());

  const ids = {};
  for (const n of ['erin', 'frank', 'gina']) ids[n] = await userId(nodeA, n);
  const erin = await newClient(proxy.url, 'erin'); // behind the "load balancer"
  const frank = await newClient(nodeB.url, 'frank');
  const gina = await newClient(nodeA.url, 'gina');
  const peers = [erin, frank, gina];
  t.after(() => Promise.all(peers.map((p) => p.client.close())));
  const group = (await erin.client.createRoom({ type: 'GroupChat', name: 'nodes', participants: [ids.frank, ids.gina] })).id;
  const dm = (await frank.client.createRoom({ type: 'OneToOneChat', participants: [ids.erin] })).id;
  const member = { [group]: [erin, frank, gina], [dm]: [erin, frank] };
  for (const [room, ps] of Object.entries(member)) {
    await waitFor(() => ps.every((p) => p.client.lastSeq(room) === 0), 5000, 'rooms tracked');
  }

  const count = 90;
  const senders = [
    new Sender(erin, [group, dm], { count, intervalMs: 10 }),
    new Sender(frank, [group, dm], { count, intervalMs: 10 }),
    new Sender(gina, [group], { count, intervalMs: 10 }),
  ].map((s) => s.start());
  const moves = [];
  for (const [at, to] of [[count / 3, nodeB], [(2 * count) / 3, nodeA]]) {
    await waitFor(() => senders.every((s) => s.sentSoFar >= at), 20_000, `${at} sent each`);
    const connections = erin.client.stats.connections;
    const movedAt = Date.now();
    proxy.retarget(to.port);
    await waitFor(() => erin.client.stats.connections > connections && erin.client.state === 'connected', 10_000, 'erin on the other node');
    moves.push(Date.now() - movedAt);
  }
  await Promise.all(senders.map((s) => s.done));

  const stored = new Map();
  for (const r of [group, dm]) stored.set(r, await history(nodeA.url, 'frank', r));
  const results = [];
  for (const p of peers) {
    const mine = new Map([...stored].filter(([r]) => member[r].includes(p)));
    await waitFor(() => caughtUp([p], mine), 15_000, `${p.name} caught up`);
    results.push(verify({ senders: [], peers: [p], stored: mine }));
  }
  const all = verify({ senders, peers: [], stored });
  for (const r of results) Object.assign(all.figures.perClient, r.figures.perClient);
  const problems = [...all.problems, ...results.flatMap((r) => r.problems)];
  printFigures('a client moving between two nodes (PostgreSQL + Redis)', all.figures, {
    'move to reconnected (ms)': moves.join(', '),
  });
  assert.deepEqual(problems, []);
  assert.equal(all.figures.sent, 3 * count);
  assert.equal(all.figures.stored, 3 * count);
  assert.ok(erin.client.stats.connections >= 3);
});
