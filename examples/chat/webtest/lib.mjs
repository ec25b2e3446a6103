// Helpers of the browser tests: a headless Chromium, users signed in to the
// page, and the page's parts by what they show.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { chromium } from 'playwright-core';

export const SHOTS = process.env.SCREENSHOT_DIR || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const TIMEOUT = 10000;

/** launch starts headless Chromium. */
export async function launch() {
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// A WebSocket that cannot connect (offline, server down) is reported by
// Chromium on the console as an error: expected while a test cuts the
// connection, so not a page error.
const expectedConsole = /^WebSocket connection to '.*' failed/;

/**
 * signIn opens the page in a context of its own, signs in as name
 * (development mode) and waits until the page is connected. Page errors
 * and console errors go to errors.
 */
export async function signIn(browser, name, base, errors) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !expectedConsole.test(m.text())) errors.push(`${name} console: ${m.text()}`);
  });
  await page.goto(base);
  await page.fill('#login-username', name);
  await page.click('#login-submit');
  await page.waitForSelector('#status-dot.online');
  const id = await page.evaluate(() => window.chatmux.state.me.id);
  assert.ok(Number.isInteger(id) && id > 0, `${name} has a user id`);
  // The client's first request is a session.heartbeat: connected means it was answered.
  assert.equal(await page.evaluate(() => window.chatmux.client.state), 'connected', `${name}'s client is connected`);
  return { name, page, context, id };
}

export async function shot(user, file) {
  if (SHOTS) await user.page.screenshot({ path: join(SHOTS, file) });
}

export function roomItem(page, title) {
  return page.locator('#room-list .room-item', { has: page.locator('.room-item-name', { hasText: title }) });
}

export function bubble(page, text) {
  return page.locator('#messages .msg-row', { has: page.locator('.bubble-content', { hasText: text }) });
}

export async function sendMessage(user, text) {
  await user.page.fill('#composer-input', text);
  await user.page.press('#composer-input', 'Enter');
}

/** pickPerson types query into a people picker and clicks the result for user id. */
export async function pickPerson(page, input, query, id) {
  await page.fill(input, query);
  await page.locator(`.people-results li[data-testid="person"][data-id="${id}"]`).click();
}

/** startDirect starts a one-to-one chat from the New chat dialog, finding the peer by name. */
export async function startDirect(user, peer, query = peer.name) {
  const { page } = user;
  await page.click('#new-chat-btn');
  await pickPerson(page, '#new-peer', query, peer.id);
  await page.waitForSelector('#room-view:not([hidden])');
  await page.waitForFunction((n) => document.querySelector('#room-title').textContent === n, peer.name);
}

/** createRoom creates a group or channel from the New chat dialog; members are picked by id. */
export async function createRoom(user, type, { name, members = [] }) {
  const { page } = user;
  await page.click('#new-chat-btn');
  await page.click(`.tabs button[data-type="${type}"]`);
  await page.fill('#new-name', name);
  for (const id of members) await pickPerson(page, '#new-members', String(id), id);
  await page.click('#new-chat-submit');
  await page.waitForFunction((n) => document.querySelector('#room-title').textContent === n, name);
}

/** connStates is what the page's connection went through, in order. */
export function connStates(page) {
  return page.evaluate(() => window.chatmux.state.stateLog.map((s) => s.state));
}

/** freePort returns a port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * startServer runs the example server's binary on 127.0.0.1:port in
 * development mode with env (DATABASE_URL: PostgreSQL; none: in memory) and
 * extra flags, and resolves once /healthz answers 200.
 */
export async function startServer(bin, port, env = {}, args = []) {
  const proc = spawn(bin, ['-addr', `127.0.0.1:${port}`, '-log-level', 'warn', ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  proc.stderr.on('data', (b) => { log = (log + b).slice(-4000); });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const srv = {
    pid: proc.pid,
    base: `http://127.0.0.1:${port}/`,
    log: () => log,
    /** kill ends the process at once (SIGKILL, by PID): no close frames, no draining. */
    async kill() {
      process.kill(proc.pid, 'SIGKILL');
      await exited;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
  const deadline = Date.now() + 30000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the server exited (${proc.exitCode}): ${log}`);
    try {
      const res = await fetch(`${srv.base}healthz`);
      if (res.ok) return srv;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`the server did not answer /healthz within 30 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
