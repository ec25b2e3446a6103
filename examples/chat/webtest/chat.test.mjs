// Browser test of the example chat page: two users, each in their own
// headless Chromium context, chat with each other through the page and see
// each other's messages, typing, reactions, read receipts, unread counts,
// edits and deletions, and member management; they find each other by name,
// a refused message keeps its text, and a cut connection shows as
// reconnecting and loses nothing.
//
//   BASE_URL=http://127.0.0.1:8080/ node --test chat.test.mjs
//
// BASE_URL is a running example server in development mode (run.sh starts
// one). BOB_BASE_URL, when set, is another node of the same deployment
// (PostgreSQL and Redis) for the second user. SCREENSHOT_DIR, when set,
// receives PNGs of both pages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, signIn as openAs, shot, roomItem, bubble, sendMessage, startDirect, createRoom, connStates } from './lib.mjs';

const BASE_URL = process.env.BASE_URL || 'http://127.0.0.1:8080/';
const BOB_BASE_URL = process.env.BOB_BASE_URL || BASE_URL;

let browser;
const errors = [];

before(async () => {
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
});

// A unique suffix keeps names distinct when the test runs twice against one
// server.
const run = Date.now().toString(36).slice(-5);

const signIn = (name, base = BASE_URL) => openAs(browser, name, base, errors);

test('two users chat through the page', async (t) => {
  const alice = await signIn(`alice_${run}`);
  const bob = await signIn(`bob_${run}`, BOB_BASE_URL);
  await shot(alice, '01-alice-empty.png');

  await t.test('the New chat dialog: every tab shows what it should, nothing else', async () => {
    const { page } = alice;
    await page.click('#new-chat-btn');
    for (const type of ['GroupChat', 'Channel', 'OneToOneChat']) {
      await page.click(`.tabs button[data-type="${type}"]`);
      const text = await page.textContent('.modal');
      assert.doesNotMatch(text, /null|undefined/, `the ${type} tab shows no null`);
    }
    // Searching needs a query: nobody is listed before one types.
    assert.equal(await page.locator('.people-results li').count(), 0);
    await page.keyboard.press('Escape');
    await page.locator('.modal').waitFor({ state: 'detached' });
  });

  await t.test('alice finds bob by name (user.search) and starts a one-to-one chat', async () => {
    const { page } = alice;
    await page.click('#new-chat-btn');
    // Part of the name, in capitals: a case-insensitive prefix.
    await page.fill('#new-peer', bob.name.slice(0, 5).toUpperCase());
    const found = page.locator(`.people-results li[data-testid="person"][data-id="${bob.id}"]`);
    await found.waitFor();
    assert.match(await found.textContent(), new RegExp(`@${bob.name} · id ${bob.id}`));
    // Alice does not find herself.
    await page.fill('#new-peer', alice.name);
    await page.locator('.people-results .people-note', { hasText: 'No one found' }).waitFor();
    await page.keyboard.press('Escape');
    await startDirect(alice, bob, bob.name.slice(0, 6));
    // The message box is one line high on the first open, as after typing.
    const height = () => page.evaluate(() => document.getElementById('composer-input').offsetHeight);
    const first = await height();
    assert.ok(first >= 40, `message box height on first open: ${first}px`);
    await page.type('#composer-input', 'x');
    assert.equal(await height(), first, 'one line, before and after typing');
    await page.fill('#composer-input', '');
    // The room appears in bob's list by itself (roomcreate.dispatch).
    await roomItem(bob.page, alice.name).waitFor();
    await roomItem(bob.page, alice.name).click();
    await bob.page.waitForSelector('#room-view:not([hidden])');
  });

  await t.test('messages reach the other user; read receipts come back', async () => {
    await sendMessage(alice, 'Hi Bob! <b>not bold</b>');
    const onBob = bubble(bob.page, 'Hi Bob! <b>not bold</b>');
    await onBob.waitFor();
    assert.equal(await onBob.locator('.bubble-content b').count(), 0, 'typed HTML shows as text');
    assert.equal(await onBob.evaluate((el) => el.classList.contains('own')), false);
    // Bob has the room open: alice's bubble goes to read (✓✓).
    const mine = bubble(alice.page, 'Hi Bob!');
    assert.equal(await mine.evaluate((el) => el.classList.contains('own')), true, 'own message is right-aligned');
    await mine.locator('.ticks.read').waitFor();
    assert.equal(await mine.locator('.ticks').textContent(), '✓✓');

    await sendMessage(bob, 'Hello Alice, how are you?');
    await bubble(alice.page, 'Hello Alice, how are you?').waitFor();
    await bubble(bob.page, 'Hello Alice, how are you?').locator('.ticks.read').waitFor();
  });

  await t.test('typing shows in the other window', async () => {
    await bob.page.fill('#composer-input', 'I am typ');
    await bob.page.type('#composer-input', 'ing');
    await alice.page.waitForSelector('#room-subtitle.typing');
    assert.match(await alice.page.textContent('#room-subtitle'), new RegExp(`${bob.name} is typing`));
    await bob.page.fill('#composer-input', '');
  });

  await t.test('reactions reach the other user', async () => {
    const row = bubble(bob.page, 'Hi Bob!');
    await row.hover();
    await row.locator('[data-action="react"]').click();
    await row.locator('.emoji-picker button[data-emoji="👍"]').click();
    const chip = bubble(alice.page, 'Hi Bob!').locator('.reaction-chip[data-emoji="👍"]');
    await chip.waitFor();
    assert.equal((await chip.textContent()).trim(), '👍 1');
    await bubble(bob.page, 'Hi Bob!').locator('.reaction-chip.mine').waitFor();
  });

  await t.test('reply, edit and delete', async () => {
    const row = bubble(alice.page, 'Hello Alice, how are you?');
    await row.hover();
    await row.locator('[data-action="reply"]').click();
    await sendMessage(alice, 'Great, thanks!');
    const reply = bubble(bob.page, 'Great, thanks!');
    await reply.waitFor();
    assert.match(await reply.locator('.quote').textContent(), /how are you/);

    const own = bubble(alice.page, 'Great, thanks!');
    await own.hover();
    await own.locator('[data-action="edit"]').click();
    await alice.page.fill('#composer-input', 'Great, thank you!');
    await alice.page.press('#composer-input', 'Enter');
    const edited = bubble(bob.page, 'Great, thank you!');
    await edited.waitFor();
    assert.match(await edited.locator('.bubble-meta').textContent(), /edited/);

    await sendMessage(alice, 'oops, wrong chat');
    await bubble(bob.page, 'oops, wrong chat').waitFor();
    const oops = bubble(alice.page, 'oops, wrong chat');
    await oops.hover();
    await oops.locator('[data-action="delete"]').click();
    await alice.page.click('[data-testid="confirm"]');
    await bubble(bob.page, 'oops, wrong chat').waitFor({ state: 'detached' });
  });

  await t.test('a group: unread count, then read on open, admin management', async () => {
    const group = `Team ${run}`;
    // Members picked by typing their id (still offered, next to names).
    await createRoom(alice, 'GroupChat', { name: group, members: [bob.id] });
    await roomItem(bob.page, group).waitFor();
    await sendMessage(alice, 'Welcome to the team');
    await sendMessage(alice, 'Second message');
    // Bob is in the one-to-one chat: the group shows 2 unread.
    const badge = roomItem(bob.page, group).locator('.badge');
    await bob.page.waitForFunction((g) => {
      const item = Array.from(document.querySelectorAll('#room-list .room-item')).find((li) => li.querySelector('.room-item-name').textContent === g);
      return item && item.querySelector('.badge') && item.querySelector('.badge').textContent === '2';
    }, group);
    assert.match(await roomItem(bob.page, group).locator('.room-item-preview').textContent(), /Second message/);
    await shot(bob, '02-bob-unread.png');
    await roomItem(bob.page, group).click();
    await bubble(bob.page, 'Welcome to the team').waitFor();
    await badge.waitFor({ state: 'detached' });
    await bubble(alice.page, 'Second message').locator('.ticks.read').waitFor();

    // Alice makes bob an admin; bob's panel shows it.
    await alice.page.click('#details-btn');
    const member = alice.page.locator(`#details-body .member[data-id="${bob.id}"]`);
    await member.locator('[data-action="add-role"]').click();
    await member.locator('.role.admin').waitFor();
    await bob.page.click('#details-btn');
    await bob.page.locator(`#details-body .member[data-id="${bob.id}"] .role.admin`).waitFor();
    await bob.page.click('#details-close');
    await shot(alice, '03-alice-group-details.png');
    await alice.page.click('#details-close');
  });

  await t.test('errors show as a toast', async () => {
    await bob.page.click('#join-btn');
    await bob.page.fill('#join-id', '00000000-0000-4000-8000-000000000000');
    await bob.page.click('#join-submit');
    const toast = bob.page.locator('.toast.error');
    await toast.waitFor();
    assert.match(await toast.textContent(), /Resource not found/);
  });

  await shot(alice, '03-alice-group.png');

  await t.test('a public channel: join by id, read-only for subscribers, leave', async () => {
    const channel = `news-${run}`;
    await createRoom(alice, 'Channel', { name: channel });
    await alice.page.click('#details-btn');
    const id = (await alice.page.textContent('#room-id-code')).trim();
    await bob.page.click('#join-btn');
    await bob.page.fill('#join-id', id);
    await bob.page.click('#join-submit');
    await bob.page.waitForFunction((n) => document.querySelector('#room-title').textContent === n, channel);
    await alice.page.locator('#messages .system-line', { hasText: `${bob.name} joined` }).waitFor();
    await sendMessage(alice, 'First post');
    await bubble(bob.page, 'First post').waitFor();
    assert.match(await bob.page.getAttribute('#composer-input', 'placeholder'), /Only moderators/);
    // The creator renames the channel: bob's header follows.
    await alice.page.fill('#settings-name', `${channel}-renamed`);
    await alice.page.click('#settings-save');
    await bob.page.waitForFunction((n) => document.querySelector('#room-title').textContent === n, `${channel}-renamed`);
    await roomItem(bob.page, `${channel}-renamed`).waitFor();
    await shot(bob, '06-bob-channel.png');
    await bob.page.click('#details-btn');
    await bob.page.click('#leave-btn');
    await bob.page.click('[data-testid="confirm"]');
    await roomItem(bob.page, `${channel}-renamed`).waitFor({ state: 'detached' });
    await alice.page.locator('#messages .system-line', { hasText: `${bob.name} left` }).waitFor();
    await alice.page.click('#details-close');
  });

  await t.test('a refused message shows why and keeps its text', async () => {
    const { page } = alice;
    await roomItem(page, bob.name).click();
    await roomItem(bob.page, alice.name).click();
    // Over the server's limit of 5,000 characters: refused, nothing stored.
    const long = 'L'.repeat(5001);
    await sendMessage(alice, long);
    const why = page.locator('#composer-error');
    await why.waitFor();
    assert.match(await why.textContent(), /Not sent: Ensure this field has no more than 5000 characters/);
    assert.equal(await page.inputValue('#composer-input'), long, 'the text is back in the message box');
    assert.equal(await page.locator('#messages .msg-row.pending').count(), 0, 'no bubble stays sending');
    assert.equal(await bubble(page, 'LLLLLLLLLL').count(), 0);
    // Shortened, it goes out, and the error goes away.
    await sendMessage(alice, 'Shorter now');
    await bubble(bob.page, 'Shorter now').waitFor();
    await why.waitFor({ state: 'hidden' });
    assert.equal(await page.inputValue('#composer-input'), '');
  });

  await t.test('reconnect: the page shows it, catches up on what was missed, sends what was written offline', async () => {
    await roomItem(bob.page, alice.name).click();
    await bubble(bob.page, 'Hi Bob!').waitFor();
    await roomItem(alice.page, bob.name).click();
    await bubble(alice.page, 'Hi Bob!').waitFor();
    // Bob's network goes away and his connection drops: the page
    // reconnects with backoff, failing until the network is back.
    await bob.context.setOffline(true);
    await bob.page.evaluate(() => window.chatmux.dropConnection());
    await bob.page.waitForSelector('#status-dot.offline');
    await bob.page.locator('#conn-banner', { hasText: 'Reconnecting…' }).waitFor();
    await sendMessage(alice, 'Sent while you were away');
    // And in the group, which bob does not have open.
    const group = `Team ${run}`;
    const groupId = await alice.page.evaluate((g) => Array.from(window.chatmux.state.rooms.values()).find((r) => r.name === g).id, group);
    await alice.page.evaluate((id) => window.chatmux.client.sendMessage(id, 'Group news while you were away'), groupId);
    await sendMessage(bob, 'Written while offline');
    await bubble(bob.page, 'Written while offline').locator('.ticks[title="Sending…"]').waitFor();
    assert.match(await bob.page.textContent('#conn-banner'), /1 message waiting to be sent/);
    await shot(bob, '07-bob-reconnecting.png');
    await bob.context.setOffline(false);
    await bob.page.waitForSelector('#status-dot.online', { timeout: 40000 });
    await bob.page.locator('#conn-banner').waitFor({ state: 'hidden' });
    assert.deepEqual((await connStates(bob.page)).filter((x, i, a) => x !== a[i - 1]).slice(0, 4), ['connecting', 'connected', 'disconnected', 'connecting']);
    // The group's message arrives by catch-up and counts once as unread
    // (the room list after the reconnect already counts it).
    await bob.page.waitForFunction((id) => Array.from((window.chatmux.state.messages.get(id) || new Map()).values())
      .some((m) => m.content === 'Group news while you were away'), groupId);
    assert.equal(await roomItem(bob.page, group).locator('.badge').textContent(), '1');
    await bubble(bob.page, 'Sent while you were away').waitFor();
    await bubble(alice.page, 'Written while offline').waitFor();
    await bubble(bob.page, 'Written while offline').locator('.ticks.read').waitFor();
    assert.equal(await bubble(alice.page, 'Written while offline').count(), 1, 'a resent message is stored once');
  });

  await t.test('forward a message to another room', async () => {
    const group = `Team ${run}`;
    const row = bubble(alice.page, 'Sent while you were away');
    await row.hover();
    await row.locator('[data-action="forward"]').click();
    await alice.page.locator('.modal .pick-list li', { hasText: group }).click();
    await roomItem(bob.page, group).locator('.badge').waitFor();
    await roomItem(bob.page, group).click();
    const fwd = bubble(bob.page, 'Sent while you were away');
    await fwd.waitFor();
    assert.match(await fwd.locator('.forwarded').textContent(), /Forwarded/);
    await roomItem(bob.page, alice.name).click();
  });

  await roomItem(alice.page, bob.name).click();
  await bubble(alice.page, 'Hi Bob!').waitFor();
  await t.test('reload keeps the session; older messages load on demand', async () => {
    const group = `Team ${run}`;
    const room = await alice.page.evaluate((g) => Array.from(window.chatmux.state.rooms.values()).find((r) => r.name === g).id, group);
    await alice.page.evaluate((id) => {
      for (let i = 1; i <= 60; i++) window.chatmux.client.sendMessage(id, `bulk ${i}`);
    }, room);
    await alice.page.waitForFunction((id) => {
      const r = window.chatmux.state.rooms.get(id);
      return r && r.last_message && r.last_message.content === 'bulk 60';
    }, room);
    await bob.page.reload();
    await bob.page.waitForSelector('#status-dot.online');
    await roomItem(bob.page, group).click();
    await bubble(bob.page, 'bulk 60').waitFor();
    // The first page holds the newest 50: the group's first message is older.
    assert.equal(await bubble(bob.page, 'Welcome to the team').count(), 0);
    // The list re-renders as acknowledgements arrive, which can detach the
    // button under a pointer click: press it from the page, where it is.
    await bob.page.waitForFunction(() => {
      const b = document.querySelector('#messages .load-older');
      if (b) b.click();
      return !!b;
    });
    await bubble(bob.page, 'Welcome to the team').waitFor();
    assert.equal(await bob.page.locator('#messages .bubble-content', { hasText: /^bulk \d+$/ }).count(), 60);
    await roomItem(bob.page, alice.name).click();
  });

  await shot(alice, '04-alice-direct.png');
  await shot(bob, '05-bob-direct.png');
  assert.deepEqual(errors, [], 'no page errors');
});

// The host's backend through the server API (API_KEY is the server's
// CHATMUX_API_KEY; run.sh sets both): a room it creates appears, its system
// message shows as a line of the room, not a bubble, and after a user is
// deleted their messages show as from "deleted user".
test('the server API: a system message and a deleted user on the page', { skip: !process.env.API_KEY && 'API_KEY is not set' }, async () => {
  const api = async (method, path, body, asUser) => {
    const headers = { Authorization: `Bearer ${process.env.API_KEY}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (asUser !== undefined) headers['Chatmux-As-User'] = String(asUser);
    const res = await fetch(new URL(`api/v1${path}`, BASE_URL), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  const dana = await signIn(`dana_${run}`);
  const carolID = 9000000 + Math.floor(Math.random() * 100000);
  await api('PUT', `/users/${carolID}`, { username: `carol_${run}`, first_name: 'Carol' });
  const name = `Orders ${run}`;
  const room = await api('POST', '/rooms', { type: 'group', name, members: [dana.id] }, carolID);
  await roomItem(dana.page, name).click();
  await api('POST', `/rooms/${room.id}/messages`, { content: 'Carol here' }, carolID);
  await bubble(dana.page, 'Carol here').locator('.bubble-sender', { hasText: 'Carol' }).waitFor();
  await api('POST', `/rooms/${room.id}/messages`, { content: 'Your driver has arrived' });
  const line = dana.page.locator('#messages [data-testid="system-message"]', { hasText: 'Your driver has arrived' });
  await line.waitFor();
  assert.equal(await dana.page.locator('#messages .bubble-content', { hasText: 'Your driver has arrived' }).count(), 0, 'a system message is no bubble');

  await api('DELETE', `/users/${carolID}`);
  await dana.page.reload();
  await roomItem(dana.page, name).click();
  await bubble(dana.page, 'Carol here').locator('.bubble-sender', { hasText: 'deleted user' }).waitFor();
  await dana.page.locator('#messages [data-testid="system-message"]', { hasText: 'Your driver has arrived' }).waitFor();
  await shot(dana, '06-dana-system-and-deleted.png');
  assert.deepEqual(errors, [], 'no page errors');
});

// Presence (docs/protocol.md#presence): the other user's dot in a
// one-to-one chat's header and in the member list turns on while they are
// connected and off, with "last seen", once they have closed the page (after
// the server's grace, 5 s, and its sweep, every 2 s).
test('presence: the dot turns on and off', async () => {
  const fay = await signIn(`fay_${run}`);
  const gil = await signIn(`gil_${run}`, BOB_BASE_URL);
  await startDirect(fay, gil, gil.name.slice(0, 5));
  const { page } = fay;
  const dot = (online, where) => page.waitForFunction(([sel, on]) => {
    const d = document.querySelector(sel);
    return !!d && d.dataset.online === on;
  }, [where, String(online)], { timeout: 30000 });
  const header = '#room-presence [data-testid="header-presence"]';
  await dot(true, header);
  await page.waitForFunction(() => /· online$/.test(document.querySelector('#room-subtitle').textContent));
  await page.click('#details-btn');
  const member = `#details-body .member[data-id="${gil.id}"] [data-testid="member-presence"]`;
  await dot(true, member);
  await shot(fay, '07-fay-presence-online.png');

  await gil.context.close();
  await dot(false, header);
  await dot(false, member);
  await page.waitForFunction(() => /last seen/.test(document.querySelector('#room-subtitle').textContent));
  assert.match(await page.textContent(`#details-body .member[data-id="${gil.id}"] .member-sub`), /last seen/);
  await shot(fay, '08-fay-presence-offline.png');
  assert.deepEqual(errors, [], 'no page errors');
});
