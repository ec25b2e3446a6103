// Browser test of the offline case: the server goes away (SIGKILL, by its
// PID) and comes back on the same port, on PostgreSQL so that it comes back
// with everything it had stored. Both pages show that they are
// reconnecting; what a user wrote while the server was away is sent after
// the reconnect, stored once, and reaches the other user; nothing is lost.
//
//   CHAT_BIN=/path/to/chat TEST_DATABASE_URL=postgres://... node --test offline.test.mjs
//
// CHAT_BIN is the example server's binary (run.sh builds it). The test
// starts its own server, in a PostgreSQL schema of its own (made and dropped
// with psql). Without TEST_DATABASE_URL, or when PostgreSQL cannot be
// reached, it is skipped; with CHATMUX_REQUIRE_SERVICES=1 it fails instead.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { launch, signIn as openAs, shot, roomItem, bubble, sendMessage, startDirect, freePort, startServer } from './lib.mjs';

const execFileP = promisify(execFile);
const BIN = process.env.CHAT_BIN || '';
const DB = process.env.TEST_DATABASE_URL || '';
const REQUIRED = process.env.CHATMUX_REQUIRE_SERVICES === '1';
// The page retries with backoff (up to 30 s between attempts): after an
// outage of a few seconds the next attempt comes within about 10 s.
const BACK_TIMEOUT = 45000;

let browser;
after(async () => {
  if (browser) await browser.close();
});

function skipOrFail(t, why) {
  if (REQUIRED) throw new Error(`${why} and CHATMUX_REQUIRE_SERVICES=1`);
  t.skip(why);
}

const psql = (url, sql) => execFileP('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { timeout: 30000 });

test('the server goes away and comes back: the pages show it and lose nothing', async (t) => {
  if (!BIN) return skipOrFail(t, 'CHAT_BIN is not set (run.sh sets it)');
  if (!DB) return skipOrFail(t, 'TEST_DATABASE_URL is not set');
  const schema = `chatmux_web_${randomBytes(6).toString('hex')}`;
  try {
    await psql(DB, `CREATE SCHEMA ${schema}`);
  } catch (err) {
    return skipOrFail(t, `PostgreSQL cannot be reached with psql at TEST_DATABASE_URL (${(err.stderr || err.message).trim()})`);
  }
  t.after(() => psql(DB, `DROP SCHEMA ${schema} CASCADE`));
  const dbURL = DB + (DB.includes('?') ? '&' : '?') + `search_path=${schema}`;

  const port = await freePort();
  let srv = await startServer(BIN, port, { DATABASE_URL: dbURL });
  t.after(() => srv.stop());
  browser = await launch();
  const errors = [];
  const alice = await openAs(browser, 'alice', srv.base, errors);
  const bob = await openAs(browser, 'bob', srv.base, errors);

  await startDirect(alice, bob, 'bo');
  await sendMessage(alice, 'Before the outage');
  await roomItem(bob.page, 'alice').click();
  await bubble(bob.page, 'Before the outage').waitFor();
  await bubble(alice.page, 'Before the outage').locator('.ticks.read').waitFor();

  // The server dies: both pages show that they are reconnecting.
  const pid = srv.pid;
  await srv.kill();
  for (const u of [alice, bob]) {
    await u.page.waitForSelector('#status-dot.offline');
    await u.page.locator('#conn-banner', { hasText: 'Reconnecting…' }).waitFor();
  }
  // Written while the server is away: shown as sending, kept in the outbox.
  await sendMessage(alice, 'Typed while the server was away');
  await sendMessage(bob, 'Bob wrote this offline too');
  await bubble(alice.page, 'Typed while the server was away').locator('.ticks[title="Sending…"]').waitFor();
  await bubble(bob.page, 'Bob wrote this offline too').locator('.ticks[title="Sending…"]').waitFor();
  assert.match(await alice.page.textContent('#conn-banner'), /1 message waiting to be sent/);
  await shot(alice, '08-alice-server-away.png');

  // The server comes back on the same port, with the same database.
  srv = await startServer(BIN, port, { DATABASE_URL: dbURL });
  assert.notEqual(srv.pid, pid, 'a new server process');
  for (const u of [alice, bob]) {
    await u.page.waitForSelector('#status-dot.online', { timeout: BACK_TIMEOUT });
    await u.page.locator('#conn-banner').waitFor({ state: 'hidden' });
  }
  // Each offline message reaches the other user once; the sender's bubble
  // is stored (no longer sending), and the history from before is there.
  await bubble(bob.page, 'Typed while the server was away').waitFor({ timeout: BACK_TIMEOUT });
  await bubble(alice.page, 'Bob wrote this offline too').waitFor({ timeout: BACK_TIMEOUT });
  for (const u of [alice, bob]) {
    await u.page.locator('#messages .msg-row.pending').first().waitFor({ state: 'detached' });
    for (const text of ['Before the outage', 'Typed while the server was away', 'Bob wrote this offline too']) {
      assert.equal(await bubble(u.page, text).count(), 1, `${u.name} shows “${text}” once`);
    }
  }
  await bubble(alice.page, 'Typed while the server was away').locator('.ticks.read').waitFor();

  // What the store holds: a reload reads the room from the server.
  await bob.page.reload();
  await bob.page.waitForSelector('#status-dot.online');
  await roomItem(bob.page, 'alice').click();
  await bubble(bob.page, 'Bob wrote this offline too').waitFor();
  const texts = await bob.page.locator('#messages .bubble-content').allTextContents();
  assert.equal(texts[0], 'Before the outage');
  assert.deepEqual(texts.slice().sort(), ['Before the outage', 'Bob wrote this offline too', 'Typed while the server was away'], `stored once each: ${JSON.stringify(texts)}`);
  assert.deepEqual(errors, [], 'no page errors');
});
