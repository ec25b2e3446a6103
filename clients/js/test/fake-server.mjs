// An in-process fake chatmux server for the unit tests: the ws package's
// WebSocketServer on 127.0.0.1, a small in-memory chat (rooms, messages with
// per-room seq, idempotent sends by client_msg_id), request_id echo and
// final frames (mode "echo") or none (mode "fence", like a server without
// request_id), batched delivery when the client asks for chatmux.batch.v1,
// and hooks to misbehave.
import { WebSocketServer } from 'ws';
import { randomUUID } from 'node:crypto';

export const BATCH = 'chatmux.batch.v1';

export class FakeChat {
  /**
   * @param {object} o
   * @param {'echo'|'fence'} [o.mode]
   * @param {number} [o.pageCap] the most messages one after_seq answer carries
   * @param {{events: number, perMs: number}} [o.sendLimit] message.send per user: a token
   *   bucket of `events` that refills evenly over perMs; past it 4029 with the real server's detail
   * @param {number} [o.readLimit] frames over it close the connection with 1009, as the real server
   *   does: the queued answers are dropped, the reason states the limit
   */
  constructor(o = {}) {
    this.mode = o.mode ?? 'echo';
    this.pageCap = o.pageCap ?? 100;
    this.sendLimit = o.sendLimit ?? null;
    this.readLimit = o.readLimit ?? 0;
    this.buckets = new Map();
    this.refused = []; // every 4029: {at, clientMsgId}
    this.rooms = new Map();
    this.conns = new Set();
    this.connections = 0; // every connection ever accepted
    this.received = []; // every frame received: {conn, env}
    this.users = new Map();
    this.nextUserId = 1;
    // Hooks. onConnect(conn, url) may close the connection (return false to stop).
    this.onConnect = null;
    // onEvent(conn, env) runs before the built-in handling; return true when it handled the frame.
    this.onEvent = null;
    // dropDispatch(msg, conn) returns true to not deliver a message.dispatch to conn.
    this.dropDispatch = null;
    // invalidUtf8(env) returns true for frames to treat as not UTF-8: the answers
    // before it go out, then the connection is closed with 1007 (as the real server does).
    this.invalidUtf8 = null;
  }

  /** start listens on 127.0.0.1:port (0: a free port). */
  async start(port = 0) {
    this.wss = new WebSocketServer({
      host: '127.0.0.1',
      port,
      handleProtocols: (protocols) => (protocols.has(BATCH) ? BATCH : false),
    });
    await new Promise((resolve, reject) => {
      this.wss.once('listening', resolve);
      this.wss.once('error', reject);
    });
    this.port = this.wss.address().port;
    this.url = `ws://127.0.0.1:${this.port}/messaging/`;
    this.wss.on('connection', (ws, req) => this.accept(ws, req));
    return this;
  }

  async stop() {
    for (const c of this.conns) c.ws.terminate();
    await new Promise((resolve) => this.wss.close(resolve));
  }

  user(name) {
    let u = this.users.get(name);
    if (!u) {
      u = { id: this.nextUserId++, username: name, email: '', first_name: '', last_name: '' };
      this.users.set(name, u);
    }
    return u;
  }

  /** addRoom creates a group with the named members and returns its id. */
  addRoom(members, id = randomUUID()) {
    this.rooms.set(id, { id, members: new Set(members), messages: [], seq: 0 });
    return id;
  }

  /** store stores a message without dispatching it and returns it. */
  store(roomId, senderName, content, clientMsgId) {
    const room = this.rooms.get(roomId);
    room.seq++;
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    const m = {
      id: randomUUID(),
      room: { id: roomId },
      sender: this.user(senderName),
      content,
      is_deleted: false,
      is_edited: false,
      is_forwarded: false,
      parent_message: null,
      forwarded_from: null,
      delivered_to: [],
      read_receipts: [],
      reactions: [],
      attachments: [],
      created_at: now,
      updated_at: now,
      seq: room.seq,
    };
    if (clientMsgId) m.client_msg_id = clientMsgId;
    room.messages.push(m);
    return m;
  }

  /** deliver sends message.dispatch to every connection of the room's members. */
  deliver(m) {
    const room = this.rooms.get(m.room.id);
    for (const c of this.conns) {
      if (!room.members.has(c.user.username)) continue;
      if (this.dropDispatch?.(m, c)) continue;
      c.push({ eventType: 'message.dispatch', data: m });
    }
  }

  /** toUser sends a frame to every connection of a user. */
  toUser(name, frame) {
    for (const c of this.conns) if (c.user.username === name) c.push(frame);
  }

  messages(roomId) {
    return this.rooms.get(roomId).messages;
  }

  accept(ws, req) {
    const url = new URL(req.url, 'http://x');
    const name = url.searchParams.get('user') ?? url.searchParams.get('token') ?? 'anon';
    const conn = new FakeConn(this, ws, this.user(name), url);
    this.connections++;
    if (this.onConnect && this.onConnect(conn, url) === false) return;
    this.conns.add(conn);
    ws.on('close', () => this.conns.delete(conn));
    ws.on('message', (data) => {
      if (this.readLimit && data.length > this.readLimit) {
        let env = {};
        try {
          env = JSON.parse(String(data));
        } catch {
          // kept as {}
        }
        this.received.push({ conn, env, bytes: data.length, tooBig: true });
        conn.queue = [];
        ws.close(1009, `message over ${this.readLimit} bytes`);
        return;
      }
      let env;
      try {
        env = JSON.parse(String(data));
      } catch {
        conn.push({ error: { code: 4003, detail: ['Invalid JSON.'] } });
        return;
      }
      this.received.push({ conn, env, at: Date.now() });
      if (this.invalidUtf8?.(env)) {
        conn.close(1007, 'invalid UTF-8');
        return;
      }
      if (this.onEvent?.(conn, env)) return;
      this.handle(conn, env);
    });
    conn.push({ eventType: 'chat.notifications', data: {} });
  }

  handle(conn, env) {
    const rid = this.mode === 'echo' && typeof env.request_id === 'string' ? env.request_id : undefined;
    const reply = (frame) => conn.push(rid ? { ...frame, request_id: rid } : frame);
    const fail = (code, detail) => reply({ error: { code, detail } });
    const done = () => {
      if (rid) conn.push({ request_id: rid, ok: true });
    };
    const d = env.data ?? {};
    switch (env.event_type) {
      case 'session.heartbeat':
        reply({ status: 'success' });
        return done();
      case 'message.send': {
        if (!this.allowSend(conn.user.username)) {
          this.refused.push({ at: Date.now(), clientMsgId: d.client_msg_id });
          const per = this.sendLimit.perMs % 1000 === 0 ? `${this.sendLimit.perMs / 1000}s` : `${this.sendLimit.perMs}ms`;
          return fail(4029, `Rate limit exceeded: ${this.sendLimit.events} events per ${per} for message.send.`);
        }
        const room = this.rooms.get(d.room_id);
        if (!room) return fail(4004, 'Resource not found.');
        if (!room.members.has(conn.user.username)) return fail(4002, 'User is not authorized to send message to this room');
        if (typeof d.content !== 'string' || d.content.trim() === '') return fail(4003, { content: ['This field may not be blank.'] });
        if (d.client_msg_id) {
          const old = room.messages.find(
            (m) => m.client_msg_id === d.client_msg_id && m.sender.username === conn.user.username,
          );
          if (old) {
            reply({ eventType: 'message.dispatch', data: old });
            return done();
          }
        }
        const m = this.store(d.room_id, conn.user.username, d.content, d.client_msg_id);
        this.deliver(m);
        return done();
      }
      case 'room.messages': {
        const room = this.rooms.get(d.room_id);
        if (!room) return fail(4004, 'Resource not found.');
        if (!room.members.has(conn.user.username)) return fail(4002, 'User is not authorized access this room');
        if (typeof d.after_seq !== 'number') return fail(4003, ['unsupported by the fake']);
        const limit = Math.min(d.limit ?? 100, this.pageCap);
        const after = room.messages.filter((m) => m.seq > d.after_seq);
        this.toUser(conn.user.username, {
          eventType: 'roommessages.dispatch',
          data: {
            data: { room_id: room.id, messages: after.slice(0, limit) },
            after_seq: d.after_seq,
            limit,
            has_more: after.length > limit,
          },
        });
        return done();
      }
      case 'room.info': {
        const room = this.rooms.get(d.room_id);
        if (!room) return fail(4004, 'Resource not found.');
        this.toUser(conn.user.username, { eventType: 'roominfo.dispatch', data: this.detail(room) });
        return done();
      }
      case 'room.list': {
        const items = [...this.rooms.values()]
          .filter((r) => r.members.has(conn.user.username))
          .map((r) => ({ ...this.detail(r), last_message: r.messages.at(-1) ?? null, unread_count: 0 }));
        this.toUser(conn.user.username, { eventType: 'roomlist.dispatch', data: items });
        return done();
      }
      case 'message.typing':
        return done();
      default:
        return reply({ error: 'invalid event type' });
    }
  }

  /** allowSend takes a token of the user's send bucket, if the server has a limit and one is left. */
  allowSend(name) {
    if (!this.sendLimit) return true;
    const { events, perMs } = this.sendLimit;
    const now = Date.now();
    let b = this.buckets.get(name);
    if (!b) this.buckets.set(name, (b = { tokens: events, at: now }));
    b.tokens = Math.min(events, b.tokens + ((now - b.at) * events) / perMs);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  detail(room) {
    return {
      type: 'GroupChat',
      id: room.id,
      created_at: '2026-01-01T00:00:00.000000Z',
      updated_at: '2026-01-01T00:00:00.000000Z',
      property: { preferences: {} },
      name: 'room',
      description: null,
      avatar: null,
      creator: null,
      participants: [...room.members].map((n) => this.user(n)),
      admins: [],
      max_participants: 100,
      join_approval_required: false,
      group_locked: false,
    };
  }
}

/** One connection: frames pushed in one turn go out together, as an array when batched. */
class FakeConn {
  constructor(server, ws, user, url) {
    this.server = server;
    this.ws = ws;
    this.user = user;
    this.url = url;
    this.batched = ws.protocol === BATCH;
    this.queue = [];
    this.batches = []; // the sizes of the WebSocket messages that carried more than one frame
  }

  push(frame) {
    this.queue.push(frame);
    if (this.queue.length === 1) queueMicrotask(() => this.flush());
  }

  flush() {
    const q = this.queue.splice(0);
    if (this.ws.readyState !== 1 || q.length === 0) return;
    if (this.batched && q.length > 1) {
      this.batches.push(q.length);
      this.ws.send(JSON.stringify(q));
    } else {
      for (const f of q) this.ws.send(JSON.stringify(f));
    }
  }

  close(code, reason = '') {
    this.flush();
    this.ws.close(code, reason);
  }
}

/** waitFor polls cond until it returns a truthy value or timeoutMs passes. */
export async function waitFor(cond, timeoutMs = 5000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** fast are client options that keep unit tests short. */
export const fast = {
  backoff: { baseMs: 10, capMs: 80, slowConsumerMs: 150 },
  heartbeat: { intervalMs: 60000, timeoutMs: 2000 },
  connectTimeoutMs: 3000,
  requestTimeoutMs: 3000,
};

/** events records a client's events of the given names, in order. */
export function record(client, ...names) {
  const log = [];
  for (const n of names) client.on(n, (p) => log.push({ name: n, ...(p && typeof p === 'object' && !Array.isArray(p) ? p : { value: p }) }));
  return log;
}
