// Browser tests of the per-user send limit, each on a server of its own
// (in memory):
// - a message the user sends while connected past the limit (-send-limit
//   3/1m: the fourth) is answered 4029 and stores nothing: the page says
//   why, keeps the text in the message box, and shows no bubble stuck at
//   "sending";
// - messages left in the outbox (written before a reload) go out when the
//   page comes back, past the limit (-send-limit 2/3s): the client keeps
//   them and paces them, the page says it is sending them, none is lost.
//
//   CHAT_BIN=/path/to/chat node --test limits.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, signIn as openAs, roomItem, bubble, sendMessage, startDirect, freePort, startServer } from './lib.mjs';

const BIN = process.env.CHAT_BIN || '';

let browser;
after(async () => {
  if (browser) await browser.close();
});

test('a message past the send limit shows why and keeps its text', async (t) => {
  if (!BIN) {
    if (process.env.CHATMUX_REQUIRE_SERVICES === '1') throw new Error('CHAT_BIN is not set (run.sh sets it)');
    return t.skip('CHAT_BIN is not set (run.sh sets it)');
  }
  const srv = await startServer(BIN, await freePort(), {}, ['-send-limit', '3/1m']);
  t.after(() => srv.stop());
  browser = await launch();
  const errors = [];
  const alice = await openAs(browser, 'alice', srv.base, errors);
  const bob = await openAs(browser, 'bob', srv.base, errors);
  await startDirect(alice, bob, 'bob');
  await roomItem(bob.page, 'alice').waitFor();
  await roomItem(bob.page, 'alice').click();

  for (const text of ['One', 'Two', 'Three']) {
    await sendMessage(alice, text);
    await bubble(bob.page, text).waitFor();
  }
  await sendMessage(alice, 'Four is one too many');
  const why = alice.page.locator('#composer-error');
  await why.waitFor();
  assert.match(await why.textContent(), /Not sent: You are sending too fast/);
  assert.equal(await alice.page.inputValue('#composer-input'), 'Four is one too many', 'the text is back in the message box');
  assert.equal(await alice.page.locator('#messages .msg-row.pending').count(), 0, 'no bubble stays sending');
  assert.equal(await bubble(alice.page, 'Four is one too many').count(), 0);
  // Nothing was stored: bob's page, reloaded, has the three messages only.
  await bob.page.reload();
  await bob.page.waitForSelector('#status-dot.online');
  await roomItem(bob.page, 'alice').click();
  await bubble(bob.page, 'Three').waitFor();
  assert.deepEqual(await bob.page.locator('#messages .bubble-content').allTextContents(), ['One', 'Two', 'Three']);
  assert.deepEqual(errors, [], 'no page errors');
});

test('messages left in the outbox go out after a reload past the send limit: paced, shown as sending, none lost', async (t) => {
  if (!BIN) {
    if (process.env.CHATMUX_REQUIRE_SERVICES === '1') throw new Error('CHAT_BIN is not set (run.sh sets it)');
    return t.skip('CHAT_BIN is not set (run.sh sets it)');
  }
  // Two at once, then one every 1.5 s.
  const srv = await startServer(BIN, await freePort(), {}, ['-send-limit', '2/3s']);
  t.after(() => srv.stop());
  browser ??= await launch();
  const errors = [];
  const carol = await openAs(browser, 'carol', srv.base, errors);
  const dave = await openAs(browser, 'dave', srv.base, errors);
  await startDirect(carol, dave, 'dave');
  await roomItem(dave.page, 'carol').waitFor();
  await roomItem(dave.page, 'carol').click();
  // Five messages the page had not sent when it was closed: in the tab's
  // outbox storage, as the client keeps them.
  const texts = ['first', 'second', 'third', 'fourth', 'fifth'].map((w) => `Unsent ${w}`);
  await carol.page.evaluate((texts) => {
    const { state } = window.chatmux;
    const entries = texts.map((text, i) => ({
      clientMsgId: `c-reload-${i}`, roomId: state.current, content: text, createdAt: Date.now() + i,
    }));
    sessionStorage.setItem(`chatmux.outbox.${state.me.id}`, JSON.stringify(entries));
  }, texts);
  await carol.page.reload();
  // The replay meets the limit: the client keeps the rest and the page says so.
  await carol.page.waitForFunction(() => /sending \d+ queued message/.test(document.querySelector('#status-text').textContent));
  for (const text of texts) await bubble(dave.page, text).waitFor({ timeout: 20000 });
  assert.deepEqual(await dave.page.locator('#messages .bubble-content').allTextContents(), texts, 'each once, in order');
  await carol.page.waitForFunction(() => document.querySelector('#status-text').textContent === 'Online');
  const stats = await carol.page.evaluate(() => window.chatmux.client.stats);
  assert.ok(stats.rateLimited > 0, 'the server said 4029 and the client kept the messages');
  assert.equal(await carol.page.evaluate(() => window.chatmux.client.pendingMessages.length), 0);
  await roomItem(carol.page, 'dave').click();
  assert.equal(await carol.page.locator('#composer-error').isHidden(), true, 'no "Not sent"');
  assert.equal(await carol.page.locator('#messages .msg-row.pending').count(), 0);
  assert.deepEqual(errors, [], 'no page errors');
});
