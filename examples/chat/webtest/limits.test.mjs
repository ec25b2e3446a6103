// Browser test of a message the server refuses for its rate: a server of
// its own (in memory) with a send limit of 3 messages a minute per user
// (-send-limit 3/1m). The fourth message is answered 4029 and stores
// nothing: the page says why, keeps the text in the message box, and shows
// no bubble stuck at "sending".
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
