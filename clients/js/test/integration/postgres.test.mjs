// Integration test against the real example server on PostgreSQL: the
// server is killed (SIGKILL) and restarted while clients send continuously.
// Needs TEST_DATABASE_URL (skipped without it, unless
// CHATMUX_REQUIRE_SERVICES=1, which makes it fail) and psql.
import { test } from 'node:test';
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
  Sender,
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
