// The integration harness: builds and runs the real example server
// (examples/chat), a TCP proxy that can cut the network, PostgreSQL schemas
// of the tests' own, and the checks and figures of the delivery guarantees.
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import WebSocket, { WebSocketServer } from 'ws';
import { ChatClient } from '../../dist/index.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root: clients/js/test/integration/../../../.. */
export const repoRoot = path.resolve(here, '../../../..');

/**
 * buildServer compiles examples/chat into a temporary directory, removed
 * when the process exits, and returns the binary's path; or returns
 * CHATMUX_CHAT_BIN when that names a binary built beforehand.
 */
export async function buildServer() {
  // A binary built beforehand (CI builds examples/chat once) saves the build.
  if (process.env.CHATMUX_CHAT_BIN) return process.env.CHATMUX_CHAT_BIN;
  const dir = mkdtempSync(path.join(tmpdir(), 'chatmux-js-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'chat');
  try {
    await run('go', ['build', '-o', bin, './examples/chat'], { cwd: repoRoot, timeout: 300_000 });
  } catch (err) {
    throw new Error(`go build ./examples/chat failed (is Go on PATH?): ${err.stderr || err.message}`);
  }
  return bin;
}

/** freePort returns a TCP port on 127.0.0.1 that was free a moment ago. */
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
 * startServer runs the example server on 127.0.0.1:port with the given
 * environment (DATABASE_URL for PostgreSQL, REDIS_URL for Redis; none: the
 * in-memory store and broker) and extra flags, and resolves once /healthz
 * answers 200. The server runs with its defaults otherwise, the per-user
 * send limit included (100 messages at once, then one per 200 ms).
 */
export async function startServer(bin, port, env = {}, args = []) {
  const proc = spawn(bin, ['-addr', `127.0.0.1:${port}`, '-log-level', 'error', '-shutdown-timeout', '2s', ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (b) => {
    stderr = (stderr + b).slice(-4000);
  });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const srv = {
    proc,
    port,
    url: `ws://127.0.0.1:${port}/messaging/`,
    http: `http://127.0.0.1:${port}`,
    exited,
    stderr: () => stderr,
    /** kill sends SIGKILL and waits for the process to be gone. */
    async kill() {
      proc.kill('SIGKILL');
      await exited;
    },
    /** stop sends SIGTERM (graceful: 1001 to every client) and waits. */
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the server exited (${proc.exitCode}): ${stderr}`);
    try {
      const res = await fetch(`${srv.http}/healthz`);
      if (res.ok) return srv;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`the server did not answer /healthz within 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** userId asks the example server's /me for a development user's id (creating the user). */
export async function userId(srv, name) {
  const res = await fetch(`${srv.http}/me?user=${encodeURIComponent(name)}`);
  if (!res.ok) throw new Error(`/me?user=${name}: ${res.status}`);
  return (await res.json()).id;
}

/** Client options for the integration tests: quick retries, quick dead-connection detection. */
export const quick = {
  WebSocket,
  backoff: { baseMs: 50, capMs: 400, slowConsumerMs: 500 },
  heartbeat: { intervalMs: 300, timeoutMs: 600 },
  connectTimeoutMs: 1500,
  requestTimeoutMs: 4000,
  outbox: { max: 1000 },
};

/**
 * newClient returns a connected client of a development user and a record
 * of what it hands to the application: seen[roomId] = messages in the order
 * of 'message' events; states; resyncs (each chat.resync handled, with
 * when). expectMode is the request_id mode verify expects ("echo": the
 * server echoes request_id).
 */
export async function newClient(url, name, extra = {}, expectMode = 'echo') {
  const c = new ChatClient({ url: `${url}?user=${encodeURIComponent(name)}`, ...quick, ...extra });
  const seen = new Map();
  c.on('message', (m) => {
    if (!seen.has(m.room.id)) seen.set(m.room.id, []);
    seen.get(m.room.id).push(m);
  });
  const states = [];
  c.on('state', (s) => states.push(s));
  const resyncs = [];
  c.on('resync', (r) => resyncs.push({ at: Date.now(), ...r }));
  await c.connect();
  await c.whenConnected();
  return { name, client: c, seen, states, resyncs, expectMode };
}

/**
 * A TCP proxy on 127.0.0.1 between clients and a server (or, retargeted, another). cut() makes the
 * network silent: bytes stop flowing both ways on open connections and new
 * connections are accepted but never reach the server (no RST, no FIN: a
 * client must notice by itself). restore() drops the silent connections
 * and forwards new ones again.
 */
export async function startProxy(targetPort) {
  const port = await freePort();
  let target = targetPort;
  const pairs = new Set();
  let silent = false;
  const server = net.createServer((down) => {
    if (silent) {
      pairs.add({ down, up: null });
      down.on('error', () => {});
      down.pause();
      return;
    }
    const up = net.connect(target, '127.0.0.1');
    const pair = { down, up };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      down.destroy();
      up.destroy();
    };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
    down.on('data', (b) => {
      if (!silent) up.write(b);
    });
    up.on('data', (b) => {
      if (!silent) down.write(b);
    });
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    url: `ws://127.0.0.1:${port}/messaging/`,
    cut() {
      silent = true;
    },
    /** retarget sends new connections to another port and drops the open ones (FIN), as a load balancer moving a client. */
    retarget(port) {
      target = port;
      for (const p of pairs) {
        p.down.end();
        p.up?.destroy();
      }
    },
    restore() {
      silent = false;
      for (const p of pairs) {
        p.down.destroy();
        p.up?.destroy();
      }
      pairs.clear();
    },
    close() {
      for (const p of pairs) {
        p.down.destroy();
        p.up?.destroy();
      }
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * startStripProxy is a WebSocket proxy on 127.0.0.1 in front of a server
 * that removes request_id from every frame a client sends: behind it the
 * server answers as a server without request_id does
 * (docs/protocol.md#request-id: no echo, no ok frame). Close codes and the
 * batch subprotocol pass through.
 */
export async function startStripProxy(targetPort) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (ps) => [...ps][0] ?? false });
  await new Promise((resolve) => wss.once('listening', resolve));
  let stripped = 0;
  wss.on('connection', (down, req) => {
    const up = new WebSocket(`ws://127.0.0.1:${targetPort}${req.url}`, down.protocol ? [down.protocol] : []);
    const early = [];
    up.on('open', () => {
      for (const m of early.splice(0)) up.send(m);
    });
    down.on('message', (data) => {
      let text = String(data);
      try {
        const env = JSON.parse(text);
        if (env && typeof env === 'object' && 'request_id' in env) {
          delete env.request_id;
          stripped++;
          text = JSON.stringify(env);
        }
      } catch {
        // not JSON: as it is
      }
      if (up.readyState === WebSocket.OPEN) up.send(text);
      else early.push(text);
    });
    up.on('message', (data) => down.readyState === WebSocket.OPEN && down.send(String(data)));
    const closeCode = (c) => (c === 1005 || c === 1006 ? 1000 : c);
    up.on('close', (code, reason) => down.readyState <= WebSocket.OPEN && down.close(closeCode(code), reason));
    down.on('close', (code, reason) => up.readyState <= WebSocket.OPEN && up.close(closeCode(code), reason));
    up.on('error', () => down.terminate());
    down.on('error', () => up.terminate());
  });
  const port = wss.address().port;
  return {
    url: `ws://127.0.0.1:${port}/messaging/`,
    get stripped() {
      return stripped;
    },
    close() {
      for (const c of wss.clients) c.terminate();
      return new Promise((resolve) => wss.close(resolve));
    },
  };
}

/**
 * startRedis runs a redis-server of the test's own on 127.0.0.1:port (no
 * persistence) and resolves once it answers PING. kill() sends SIGKILL to
 * its PID and waits for it to be gone; the test can start another on the
 * same port.
 */
export async function startRedis(port) {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (b) => {
    stderr = (stderr + b).slice(-2000);
  });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.once('error', (err) => {
    stderr += String(err);
  });
  const deadline = Date.now() + 10_000;
  while (!(await redisPing(port))) {
    if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    pid: proc.pid,
    port,
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, 'SIGKILL');
      await exited;
    },
  };
}

/** redisPing reports whether a Redis on 127.0.0.1:port answers PING. */
function redisPing(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (b) => {
      got += b;
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
  });
}

/** hasRedisServer reports whether redis-server is on PATH. */
export async function hasRedisServer() {
  try {
    await run('redis-server', ['--version'], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Sender hands messages to sendMessage continuously: one every intervalMs,
 * round robin over its rooms, whatever the connection's state, and keeps
 * every client_msg_id and promise.
 */
export class Sender {
  constructor(peer, rooms, { count, intervalMs }) {
    this.peer = peer;
    this.rooms = rooms;
    this.count = count;
    this.intervalMs = intervalMs;
    this.handed = []; // {roomId, clientMsgId, content}
    this.results = [];
    this.failures = [];
  }

  start() {
    this.done = (async () => {
      for (let i = 0; i < this.count; i++) {
        const roomId = this.rooms[i % this.rooms.length];
        const clientMsgId = `${this.peer.name}-${i}-${randomBytes(4).toString('hex')}`;
        const content = `${this.peer.name} #${i}`;
        this.handed.push({ roomId, clientMsgId, content });
        this.results.push(
          this.peer.client.sendMessage(roomId, content, { clientMsgId }).catch((err) => {
            this.failures.push({ clientMsgId, err });
          }),
        );
        await new Promise((r) => setTimeout(r, this.intervalMs));
      }
      await Promise.all(this.results);
    })();
    return this;
  }

  /** sentSoFar is how many messages were handed to sendMessage. */
  get sentSoFar() {
    return this.handed.length;
  }
}

/** history returns a room's stored messages, oldest first, read with a fresh client. */
export async function history(url, name, roomId) {
  const peer = await newClient(url, name, { autoTrackRooms: false });
  try {
    const page = await peer.client.roomMessages(roomId);
    return page.data.messages.slice().reverse();
  } finally {
    await peer.client.close();
  }
}

/**
 * verify checks the delivery guarantees and returns the figures:
 * every message handed to sendMessage is stored exactly once, and every
 * client saw every room's history in order without duplicates.
 */
export function verify({ senders, peers, stored }) {
  const problems = [];
  const handed = senders.flatMap((s) => s.handed);
  const byCmid = new Map();
  let storedCount = 0;
  for (const [roomId, msgs] of stored) {
    storedCount += msgs.length;
    for (let i = 1; i < msgs.length; i++) {
      if (!(msgs[i].seq > msgs[i - 1].seq)) problems.push(`room ${roomId}: stored history out of seq order at ${i}`);
    }
    for (const m of msgs) {
      if (!m.client_msg_id) continue;
      const k = `${roomId}/${m.client_msg_id}`;
      byCmid.set(k, (byCmid.get(k) ?? 0) + 1);
    }
  }
  let lost = 0;
  let storedTwice = 0;
  for (const h of handed) {
    const n = byCmid.get(`${h.roomId}/${h.clientMsgId}`) ?? 0;
    if (n === 0) lost++;
    if (n > 1) storedTwice += n - 1;
  }
  if (lost) problems.push(`${lost} messages handed to sendMessage are not stored`);
  if (storedTwice) problems.push(`${storedTwice} messages are stored more than once`);
  const failures = senders.flatMap((s) => s.failures);
  if (failures.length) problems.push(`${failures.length} sendMessage promises rejected: ${failures[0].err}`);

  const perClient = {};
  let duplicates = 0;
  let missing = 0;
  for (const p of peers) {
    let seenCount = 0;
    for (const [roomId, msgs] of stored) {
      const got = p.seen.get(roomId) ?? [];
      seenCount += got.length;
      const ids = got.map((m) => m.id);
      const dups = ids.length - new Set(ids).size;
      duplicates += dups;
      if (dups) problems.push(`${p.name}: ${dups} duplicates in room ${roomId}`);
      const want = msgs.map((m) => m.id);
      if (ids.length !== want.length || ids.some((id, i) => id !== want[i])) {
        const have = new Set(ids);
        const miss = want.filter((id) => !have.has(id)).length;
        missing += miss;
        problems.push(`${p.name}: room ${roomId}: saw ${ids.length} of ${want.length} (missing ${miss}), ${ids.length === want.length ? 'out of order' : ''}`);
      }
    }
    const mode = p.client.requestIdMode;
    if (p.expectMode && mode !== p.expectMode) problems.push(`${p.name}: request_id mode ${mode}, want ${p.expectMode}`);
    perClient[p.name] = { seen: seenCount, mode, ...pick(p.client.stats) };
  }
  const figures = {
    sent: handed.length,
    stored: storedCount,
    storedOnce: handed.length - lost - storedTwice,
    lost,
    storedTwice,
    duplicatesSeen: duplicates,
    missingSeen: missing,
    perClient,
  };
  return { problems, figures };
}

function pick(s) {
  return {
    batches: s.batches,
    reconnects: Math.max(0, s.connections - 1),
    resends: s.resends,
    rateLimited: s.rateLimited,
    gapsDetected: s.gapsDetected,
    duplicatesDropped: s.duplicatesDropped,
    catchUpRequests: s.catchUpRequests,
  };
}

/** printFigures writes the figures of a run for the test log. */
export function printFigures(title, figures, extra = {}) {
  const lines = [title];
  lines.push(
    `  sent ${figures.sent}, stored ${figures.stored} (each once: ${figures.storedOnce}), lost ${figures.lost}, stored twice ${figures.storedTwice}, duplicates seen ${figures.duplicatesSeen}, missing seen ${figures.missingSeen}`,
  );
  for (const [name, s] of Object.entries(figures.perClient)) {
    lines.push(
      `  ${name}: request_id mode ${s.mode}, seen ${s.seen}, reconnects ${s.reconnects}, resends ${s.resends}, 4029 kept and retried ${s.rateLimited}, gaps ${s.gapsDetected}, duplicates dropped ${s.duplicatesDropped}, catch-up requests ${s.catchUpRequests}, batched WebSocket messages ${s.batches}`,
    );
  }
  for (const [k, v] of Object.entries(extra)) lines.push(`  ${k}: ${v}`);
  console.log(lines.join('\n'));
}

/** waitFor polls cond until it returns a truthy value or timeoutMs passes. */
export async function waitFor(cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** caughtUp reports whether every peer has seen every stored message of every room. */
export function caughtUp(peers, stored) {
  return peers.every((p) => [...stored].every(([roomId, msgs]) => (p.seen.get(roomId)?.length ?? 0) >= msgs.length));
}

/**
 * databaseURL returns TEST_DATABASE_URL, or skips the test with a clear
 * message when it is unset (fails when CHATMUX_REQUIRE_SERVICES=1).
 */
export function databaseURL(t) {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) {
    if (process.env.CHATMUX_REQUIRE_SERVICES === '1') {
      throw new Error('TEST_DATABASE_URL is not set and CHATMUX_REQUIRE_SERVICES=1: PostgreSQL is required');
    }
    t.skip('PostgreSQL test skipped: set TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)');
    return undefined;
  }
  return url;
}

/** redisURL is databaseURL's counterpart for TEST_REDIS_URL. */
export function redisURL(t) {
  const url = process.env.TEST_REDIS_URL;
  if (!url) {
    if (process.env.CHATMUX_REQUIRE_SERVICES === '1') {
      throw new Error('TEST_REDIS_URL is not set and CHATMUX_REQUIRE_SERVICES=1: Redis is required');
    }
    t.skip('Redis test skipped: set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)');
    return undefined;
  }
  return url;
}

/**
 * databaseSchema creates a PostgreSQL schema of the test's own (with psql),
 * drops it when the test ends, and returns the URL with search_path set.
 */
export async function databaseSchema(t, url) {
  const schema = `chatmux_js_${randomBytes(6).toString('hex')}`;
  const psql = (sql) => run('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { timeout: 30_000 });
  try {
    await psql(`CREATE SCHEMA ${schema}`);
  } catch (err) {
    throw new Error(`failed to create schema ${schema} with psql (${url}): ${err.stderr || err.message}`);
  }
  t.after(async () => {
    await psql(`DROP SCHEMA ${schema} CASCADE`);
  });
  return url + (url.includes('?') ? '&' : '?') + `search_path=${schema}`;
}
