import { backoffDelay, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import {
  ClientClosedError,
  ConnectionClosedError,
  ConnectionLostError,
  ErrorCode,
  FrameRejectedError,
  OutboxFullError,
  RequestTimeoutError,
  ServerError,
} from './errors.js';
import { MemoryOutboxStorage, type OutboxEntry, type OutboxStorage } from './outbox.js';
import { ReplayPacer } from './pacing.js';
import {
  BATCH_SUBPROTOCOL,
  closeLimit,
  decodeFrames,
  encodeEnvelope,
  utf8Length,
  withToken,
  type WebSocketConstructor,
  type WebSocketLike,
} from './socket.js';
import type {
  CreateRoomInput,
  Dispatch,
  DispatchMap,
  ErrorDetail,
  Id,
  Message,
  MessageModificationDispatch,
  NewAttachment,
  Permission,
  PresenceQueryDispatch,
  ReactionDispatch,
  ResyncDispatch,
  RoomDetail,
  RoomListItem,
  RoomMessagesPage,
  RoomMessagesQuery,
  RoomModifyAction,
  User,
  UserId,
  UserPresence,
} from './types.js';

/** A token, or a function that returns one; it is called before every connection attempt. */
export type TokenSource = string | (() => string | null | undefined | Promise<string | null | undefined>);

/** The options of a ChatClient. Only url is required; every other field has a default. */
export interface ChatClientOptions {
  /** The WebSocket endpoint, e.g. "wss://chat.example.com/messaging/" (docs/protocol.md#url). */
  url: string;
  /**
   * The access token, or a function returning it. A function is called before
   * every connection attempt, so an expired token can be refreshed; returning
   * null or undefined signs the user out. Without a token the URL is used as it is.
   */
  token?: TokenSource;
  /** The query parameter that carries the token (default "token"). */
  tokenParam?: string;
  /** The WebSocket implementation (default globalThis.WebSocket; in Node.js pass the ws package's). */
  WebSocket?: WebSocketConstructor;
  /** Ask for batched delivery, chatmux.batch.v1 (default true; docs/protocol.md#batched-delivery). */
  batch?: boolean;
  /** Reconnect delays: exponential backoff with full jitter, capped. */
  backoff?: BackoffOptions;
  /** Heartbeat: session.heartbeat every intervalMs (default 20000); no answer within timeoutMs (default 10000) closes the connection and reconnects. */
  heartbeat?: { intervalMs?: number; timeoutMs?: number };
  /** The longest time from opening a connection to its first answer, in ms (default 10000). */
  connectTimeoutMs?: number;
  /** The longest wait for a request's final answer, queueing while disconnected included, in ms (default 15000). */
  requestTimeoutMs?: number;
  /** The outbox of unsent messages: its storage (default memory) and its bound (default 200 messages). */
  outbox?: { storage?: OutboxStorage; max?: number };
  /**
   * How many message.send may await their answer at once (default 32). It
   * bounds the outbox's replay after a reconnect too; once the server
   * answers a replayed message 4029, the rest of the replay goes one at a
   * time at the rate the server states.
   */
  maxSendsInFlight?: number;
  /**
   * The largest frame the server reads, in bytes (default 65536, the
   * server's default; 0: no check). A request whose frame is larger is
   * rejected with FrameRejectedError without being sent. A 1009 close that
   * states the server's limit replaces it.
   */
  maxFrameBytes?: number;
  /** Messages asked per catch-up request (default 100, the server's cap). */
  catchUpLimit?: number;
  /** Catch-up requests in flight at once, over all rooms (default 4). */
  catchUpConcurrency?: number;
  /**
   * Track rooms the client learns of so their messages are delivered in
   * order (default true): a room of room.list from its newest message on;
   * any other (created, added to, listed by chat.resync, a first message)
   * from seq 0, since all of its messages may be new to the user
   * (docs/protocol.md#delivery). Without it only rooms given to trackRoom are.
   */
  autoTrackRooms?: boolean;
  /** Generates client_msg_id values (default "c-" + a random UUID). */
  newClientMsgId?: () => string;
}

/** The connection's state. */
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'disconnected';

/** A change of the connection's state, with why. */
export interface StateChange {
  state: ConnectionState;
  /** Why: "connect", "reconnect", "closed by server", "heartbeat timeout", "signed out", ... */
  reason: string;
  /** The close code, when a close caused it. */
  code?: number;
  /** The close reason the server gave, if any. */
  closeReason?: string;
  /** How requests are matched to answers on this connection (connected only). */
  requestIdMode?: RequestIdMode;
  /** Whether the client will try again (disconnected only). */
  willReconnect: boolean;
  /** The delay before the next attempt, in ms (disconnected and willReconnect only). */
  delayMs?: number;
  /** The number of attempts since the last successful connection. */
  attempt: number;
}

/**
 * How requests are matched to their answers. "echo": the server echoes
 * request_id and ends every request with a final frame
 * (docs/protocol.md#request-id). "fence": a server without request_id; the
 * client follows each request with an event that no server has and takes
 * its "invalid event type" answer as the request's end (the server handles
 * a connection's events one at a time, in order). A host's own event is
 * followed by a session.heartbeat instead, since it may be unknown itself.
 */
export type RequestIdMode = 'echo' | 'fence';

/** What the client did about a chat.resync dispatch. */
export interface ResyncResult {
  reason: string;
  /** Rooms whose seq was ahead of the client's: being caught up. */
  caughtUp: Id[];
  /** Rooms listed that the client did not track: now tracked from seq 0, their messages delivered from the first. */
  added: Id[];
  /** Tracked rooms not listed: the user is no longer a member; no longer tracked. */
  removed: Id[];
}

/** Counters of the delivery rule, for tests and diagnostics. */
export interface ClientStats {
  /** Messages handed to the application ('message' events). */
  delivered: number;
  /** Messages dropped because their (room, seq) had been delivered already. */
  duplicatesDropped: number;
  /** Live messages that showed a gap in their room's seq. */
  gapsDetected: number;
  /** room.messages after_seq requests sent. */
  catchUpRequests: number;
  /** message.send frames sent, first sends and resends. */
  sendsTransmitted: number;
  /** message.send frames sent again with the same client_msg_id. */
  resends: number;
  /** 4029 answers to messages the outbox sent again (replays), kept in the outbox and sent later. */
  rateLimited: number;
  /** Connections that reached "connected". */
  connections: number;
  /** WebSocket messages that carried a batch (an array of frames, chatmux.batch.v1). */
  batches: number;
}

/** Every event a ChatClient emits: the dispatches by their eventType, and the client's own. */
export interface ClientEvents extends DispatchMap {
  /** Every state change. */
  state: StateChange;
  connecting: StateChange;
  connected: StateChange;
  disconnected: StateChange;
  /**
   * The user was signed out: a 4001 close after a token refresh, a 4011
   * close (the user was deleted for good), or no token. The client stopped.
   */
  signedOut: StateChange;
  /** Every message of every tracked room, exactly once and in seq order (docs/protocol.md#delivery). */
  message: Message;
  /** Every dispatch frame as it arrives, known or not (hosts add their own). */
  dispatch: Dispatch;
  /** A chat.resync was handled. */
  resync: ResyncResult;
  /** A tracked room is no longer one of the user's (left, removed, deleted). */
  roomRemoved: { roomId: Id; reason: string };
  /** A message of the outbox was stored (also for messages restored from storage). */
  sent: { clientMsgId: string; message: Message };
  /** A message of the outbox was refused by the server and removed from the outbox. */
  sendFailed: { clientMsgId: string; roomId: Id; error: Error };
  /**
   * A message of the outbox was answered "not now" (4029 to a replayed
   * message, 4013, no answer in time): it stays in the outbox and goes
   * out again after delayMs at the earliest.
   */
  sendDelayed: { clientMsgId: string; roomId: Id; error: Error; delayMs: number };
  /** An error not tied to a request: an unmatched error envelope, a storage failure, a bad frame. */
  error: Error;
}

/** Options of sendMessage. */
export interface SendOptions {
  /** The idempotency key; generated when absent. Reusing one resends the same message. */
  clientMsgId?: string;
  /** Makes the message a reply. */
  parentMessageId?: Id;
  /** Makes the message a forward. */
  forwardedFromId?: Id;
  /** Attachments (docs/protocol.md#attachment). */
  media?: NewAttachment[];
  /** Further extra_fields the host registered. */
  extraFields?: Record<string, unknown>;
}

/** Options of request. */
export interface RequestOptions {
  /** Keep the dispatches for which this returns true while the request is open (they settle it). */
  collect?: (d: Dispatch) => boolean;
  /** Overrides requestTimeoutMs. */
  timeoutMs?: number;
}

/** The event sent after each request in fence mode: no server has it, so it is answered "invalid event type". */
export const FENCE_EVENT = '$chatmux.fence';

const BUILTIN_EVENTS = new Set([
  'message.send',
  'message.acknowledged',
  'message.read',
  'message.react',
  'message.typing',
  'message.modify',
  'room.create',
  'room.list',
  'room.info',
  'room.messages',
  'room.join',
  'room.leave',
  'room.add_members',
  'room.remove_members',
  'room.modify',
]);

interface Pending {
  id: string;
  eventType: string;
  /** In fence mode, what ends the request: the fence event's answer, a heartbeat's, or (a heartbeat itself) its own. */
  fence?: 'marker' | 'heartbeat' | 'none';
  data: unknown;
  /** The size of its frame in bytes, once sent. */
  bytes: number;
  collect?: (d: Dispatch) => boolean;
  frames: Dispatch[];
  error?: ServerError;
  resolve: (frames: Dispatch[]) => void;
  reject: (err: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
  sock?: Sock;
  settled: boolean;
}

interface Sock {
  gen: number;
  ws: WebSocketLike;
  helloId: string;
  mode?: RequestIdMode;
  ready: boolean;
  inflight: Map<string, Pending>;
  /**
   * The requests sent on this connection whose final answer has not come
   * (settled by a timeout or not), in the order they were sent: what a
   * 1007 or 1009 close may be about.
   */
  unanswered: Map<string, Pending>;
  fenceQueue: Pending[];
  timers: ReturnType<typeof setTimeout>[];
  heartbeat?: ReturnType<typeof setInterval>;
}

interface OutboxItem {
  entry: OutboxEntry;
  state: 'queued' | 'inflight' | 'waiting';
  /**
   * A replayed message: made while disconnected or while a replay was
   * going on, restored from storage, or sent again after a connection was
   * lost. A 4029 keeps it in the outbox (the pacer sends it later); a 4029
   * to a message the user just made while connected is a refusal.
   */
  replay: boolean;
  /** The pacer's ticket of its last transmission. */
  ticket: number;
  attempts: number;
  transmitted: number;
  resolve?: (m: Message) => void;
  reject?: (e: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
}

interface Room {
  id: Id;
  /** The last seq handed to the application (0: none yet, the room's messages start at 1). */
  lastSeq: number;
  /** Live messages waiting for a catch-up, by seq, with the pass number they arrived in. */
  buffer: Map<number, { msg: Message; pass: number }>;
  pass: number;
  catching: boolean;
  again: boolean;
  retry?: ReturnType<typeof setTimeout>;
}

/**
 * ChatClient is a connection to a chatmux chat server that carries the
 * server's delivery guarantees to the application (docs/protocol.md#delivery):
 * it reconnects with backoff, catches every tracked room up by seq after a
 * reconnect, a gap or a chat.resync, drops duplicates by (room, seq), and
 * sends messages from an outbox with a client_msg_id until they are stored
 * exactly once.
 */
export class ChatClient extends Emitter<ClientEvents> {
  private readonly opts: ChatClientOptions;
  private readonly WS: WebSocketConstructor;
  private readonly storage: OutboxStorage;
  private sock?: Sock;
  private gen = 0;
  private reqSeq = 0;
  private started = false;
  private closing = false;
  /** The server closed with 1000 (the session ended); connect() clears it. */
  private ended?: { reason: string; closeReason: string };
  private signedOutFlag = false;
  private attempt = 0;
  private authFailures = 0;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private waiting: Pending[] = [];
  private readonly outbox = new Map<string, OutboxItem>();
  private saving: Promise<void> = Promise.resolve();
  private readonly rooms = new Map<Id, Room>();
  private catchUpSlots: number;
  private catchUpQueue: (() => void)[] = [];
  private readonly pacer: ReplayPacer;
  private pacerTimer?: ReturnType<typeof setTimeout>;
  private frameLimit: number;
  private currentState: ConnectionState = 'idle';
  private readonly counters: ClientStats = {
    delivered: 0,
    duplicatesDropped: 0,
    gapsDetected: 0,
    catchUpRequests: 0,
    sendsTransmitted: 0,
    resends: 0,
    rateLimited: 0,
    connections: 0,
    batches: 0,
  };

  constructor(options: ChatClientOptions) {
    super();
    this.opts = options;
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError('chatmux: no WebSocket implementation: pass options.WebSocket (in Node.js, the ws package)');
    this.WS = WS;
    this.storage = options.outbox?.storage ?? new MemoryOutboxStorage();
    this.catchUpSlots = options.catchUpConcurrency ?? 4;
    this.pacer = new ReplayPacer(options.backoff);
    this.frameLimit = options.maxFrameBytes ?? 65536;
  }

  // ---- state ----

  /** The connection's current state. */
  get state(): ConnectionState {
    return this.currentState;
  }

  /** How requests are matched to answers on the current connection, once it is connected. */
  get requestIdMode(): RequestIdMode | undefined {
    return this.sock?.mode;
  }

  /** A copy of the delivery counters. */
  get stats(): ClientStats {
    return { ...this.counters };
  }

  /** The messages waiting in the outbox, in send order. */
  get pendingMessages(): OutboxEntry[] {
    return [...this.outbox.values()].map((i) => ({ ...i.entry }));
  }

  /** The last seq handed to the application for a room, or undefined when the room is not tracked. */
  lastSeq(roomId: Id): number | undefined {
    return this.rooms.get(roomId)?.lastSeq;
  }

  /** The ids of the tracked rooms. */
  get trackedRooms(): Id[] {
    return [...this.rooms.keys()];
  }

  /**
   * Resolves once the client is connected (at once if it is); rejects with
   * ClientClosedError when it stops trying (closed, signed out), with
   * ConnectionClosedError when the server ended the session (1000) until
   * connect() is called again.
   */
  whenConnected(): Promise<void> {
    if (this.currentState === 'connected') return Promise.resolve();
    const stopped = this.stoppedError();
    if (stopped) return Promise.reject(stopped);
    return new Promise((resolve, reject) => {
      const off = this.on('state', (s) => {
        if (s.state === 'connected') {
          off();
          resolve();
        } else if (s.state === 'disconnected' && !s.willReconnect) {
          off();
          reject(this.ended && !this.closing ? this.endedError() : new ClientClosedError(s.reason));
        }
      });
    });
  }

  /** stoppedError is the error of a request made now, when the client is not trying to connect. */
  private stoppedError(): ClientClosedError | undefined {
    if (this.closing) return new ClientClosedError('the client is closed');
    if (this.ended) return this.endedError();
    return undefined;
  }

  private endedError(): ConnectionClosedError {
    const why = this.ended?.closeReason ? `: ${this.ended.closeReason}` : '';
    return new ConnectionClosedError(`the server ended the session (1000${why}); connect() starts again`);
  }

  // ---- connection ----

  /**
   * Starts connecting (and reconnecting, until close, a sign-out or a 1000
   * close by the server, after which connect() starts again). It loads the
   * outbox from its storage first; messages restored from it are sent once
   * connected ('sent' or 'sendFailed' tell how they ended).
   */
  async connect(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.ended = undefined;
    try {
      const restored = await this.storage.load();
      const current = [...this.outbox.entries()];
      this.outbox.clear();
      for (const e of restored) {
        if (!current.some(([id]) => id === e.clientMsgId)) {
          this.outbox.set(e.clientMsgId, { entry: e, state: 'queued', replay: true, ticket: 0, attempts: 0, transmitted: 0 });
        }
      }
      for (const [id, item] of current) this.outbox.set(id, item);
    } catch (err) {
      this.emit('error', asError(err, 'failed to load the outbox'));
    }
    if (this.closing) return;
    void this.open('connect');
  }

  /**
   * Closes the connection and stops reconnecting. Requests waiting for an
   * answer reject with ClientClosedError; so do the promises of unsent
   * messages, which stay in the outbox storage for a later client.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.shutdown('closed by client');
    await this.saving;
  }

  /**
   * shutdown stops the client: no reconnect, requests and the promises of
   * unsent messages reject with stopped() (the messages stay in the outbox).
   */
  private shutdown(reason: string, code?: number, closeReason?: string, stopped: () => ClientClosedError = () => new ClientClosedError(reason)): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const sock = this.sock;
    if (sock) {
      this.dropSocket(sock, stopped());
      try {
        sock.ws.close(1000, '');
      } catch {
        // already closing
      }
    }
    for (const p of this.waiting.splice(0)) this.settle(p, stopped());
    if (this.pacerTimer) clearTimeout(this.pacerTimer);
    this.pacerTimer = undefined;
    for (const item of this.outbox.values()) {
      if (item.timer) clearTimeout(item.timer);
      item.reject?.(stopped());
      item.resolve = item.reject = undefined;
      item.state = 'queued';
    }
    for (const r of this.rooms.values()) if (r.retry) clearTimeout(r.retry);
    this.setState({ state: 'disconnected', reason, code, closeReason, willReconnect: false, attempt: this.attempt });
  }

  private setState(s: StateChange): void {
    this.currentState = s.state;
    this.emit('state', s);
    if (s.state !== 'idle') this.emit(s.state, s);
  }

  private async open(reason: string): Promise<void> {
    this.reconnectTimer = undefined;
    if (this.closing || this.signedOutFlag) return;
    const gen = ++this.gen;
    this.setState({ state: 'connecting', reason, willReconnect: true, attempt: this.attempt });
    let token: string | undefined;
    const src = this.opts.token;
    if (typeof src === 'function') {
      try {
        const t = await src();
        if (t === null || t === undefined) {
          this.signOut('no token');
          return;
        }
        token = t;
      } catch (err) {
        this.emit('error', asError(err, 'the token function failed'));
        if (gen === this.gen) this.scheduleReconnect('token unavailable', undefined, '', false);
        return;
      }
    } else {
      token = src;
    }
    if (this.closing || this.signedOutFlag || gen !== this.gen) return;
    let ws: WebSocketLike;
    try {
      const url = withToken(this.opts.url, this.opts.tokenParam ?? 'token', token);
      ws = this.opts.batch === false ? new this.WS(url) : new this.WS(url, [BATCH_SUBPROTOCOL]);
    } catch (err) {
      this.emit('error', asError(err, 'failed to open the WebSocket'));
      this.scheduleReconnect('connect failed', undefined, '', false);
      return;
    }
    const sock: Sock = {
      gen,
      ws,
      helloId: this.nextId(),
      ready: false,
      inflight: new Map(),
      unanswered: new Map(),
      fenceQueue: [],
      timers: [],
    };
    this.sock = sock;
    sock.timers.push(
      setTimeout(() => this.dead(sock, 'connect timeout'), this.opts.connectTimeoutMs ?? 10000),
    );
    ws.onopen = () => {
      if (this.sock !== sock) return;
      // The first request tells whether the server echoes request_id.
      this.rawSend(sock, encodeEnvelope('session.heartbeat', undefined, sock.helloId));
    };
    ws.onmessage = (ev) => {
      if (this.sock !== sock) return;
      let frames: Record<string, unknown>[];
      try {
        frames = decodeFrames(ev.data);
      } catch (err) {
        this.emit('error', asError(err, 'a frame that is not JSON'));
        return;
      }
      if (frames.length > 1) this.counters.batches++;
      for (const f of frames) {
        if (this.sock !== sock) return;
        this.handleFrame(sock, f);
      }
    };
    ws.onclose = (ev) => {
      if (this.sock !== sock) return;
      this.closed(sock, ev.code, ev.reason ?? '', 'closed by server');
    };
    ws.onerror = () => {
      // A close event follows.
    };
  }

  private rawSend(sock: Sock, frame: string): boolean {
    try {
      sock.ws.send(frame);
      return true;
    } catch {
      return false; // the close event follows
    }
  }

  /** dead drops a connection that stopped answering and reconnects. */
  private dead(sock: Sock, reason: string): void {
    if (this.sock !== sock) return;
    try {
      if (sock.ws.terminate) sock.ws.terminate();
      else sock.ws.close(4000, reason);
    } catch {
      // closing already
    }
    this.closed(sock, 1006, '', reason);
  }

  private closed(sock: Sock, code: number, closeReason: string, reason: string): void {
    const offenders = code === 1007 || code === 1009 ? this.offenders(sock, code, closeReason) : [];
    if (this.sock === sock) this.sock = undefined; // nothing more goes out on it
    const refused: [Pending, FrameRejectedError][] = offenders.map((p) => [
      p,
      new FrameRejectedError(
        code as 1007 | 1009,
        code === 1009 ? `the server closed the connection on a frame of ${p.bytes} bytes, over its limit (1009)` : 'the server closed the connection on this frame: not valid UTF-8 (1007)',
        p.eventType,
      ),
    ]);
    for (const [p, err] of refused) this.settle(p, err);
    this.dropSocket(sock, new ConnectionLostError(`connection lost (${reason}${code ? ', ' + code : ''})`));
    // docs/protocol.md#close-codes: never send again the frame that caused 1007 or 1009.
    for (const [p, err] of refused) {
      const id = p.eventType === 'message.send' ? (p.data as { client_msg_id?: unknown } | undefined)?.client_msg_id : undefined;
      const item = typeof id === 'string' ? this.outbox.get(id) : undefined;
      if (item) this.failSend(item, err);
    }
    if (this.closing) return;
    if (code === 1000) {
      // docs/protocol.md#close-codes: a normal closure asks for nothing.
      // The session ends: nothing is left pending, unsent messages stay in
      // the outbox, and connect() starts the client again.
      this.ended = { reason, closeReason };
      this.started = false;
      this.shutdown(reason, code, closeReason, () => this.endedError());
      return;
    }
    if (code === 4011) {
      // docs/protocol.md#deleted-users: the user was deleted for good.
      // Final, whatever the token: sign out and never reconnect.
      this.signOut('user deleted', code, closeReason);
      return;
    }
    if (code === 4001) {
      this.authFailures++;
      if (typeof this.opts.token !== 'function' || this.authFailures >= 2) {
        this.signOut('signed out', code, closeReason);
        return;
      }
      // Ask the token function for a fresh token and try once more, at once.
      this.setState({ state: 'disconnected', reason: 'authentication failed', code, closeReason, willReconnect: true, delayMs: 0, attempt: this.attempt });
      this.reconnectTimer = setTimeout(() => void this.open('reconnect'), 0);
      return;
    }
    this.scheduleReconnect(reason, code, closeReason, code === 4008);
  }

  private scheduleReconnect(reason: string, code: number | undefined, closeReason: string, slow: boolean): void {
    const delayMs = backoffDelay(this.attempt, this.opts.backoff, slow);
    this.attempt++;
    this.setState({ state: 'disconnected', reason, code, closeReason, willReconnect: true, delayMs, attempt: this.attempt });
    this.reconnectTimer = setTimeout(() => void this.open('reconnect'), delayMs);
  }

  private signOut(reason: string, code?: number, closeReason?: string): void {
    this.signedOutFlag = true;
    this.closing = true;
    this.shutdown(reason, code, closeReason);
    const s: StateChange = { state: 'disconnected', reason, code, closeReason, willReconnect: false, attempt: this.attempt };
    this.emit('signedOut', s);
  }

  /**
   * offenders returns the requests a 1007 or 1009 close is about, among
   * those sent on sock without a final answer. 1007: the server answers
   * every event before the frame that is not UTF-8, then closes, so it is
   * the first unanswered one. 1009: the server drops its queued answers and
   * closes at once, so any unanswered one may be it; every unanswered frame
   * over the limit the close states is refused (and the limit kept), or,
   * when it states none, the largest one, which is over the limit too.
   */
  private offenders(sock: Sock, code: number, closeReason: string): Pending[] {
    const sent = [...sock.unanswered.values()];
    if (sent.length === 0) return [];
    if (code === 1007) return [sent[0]!];
    const limit = closeLimit(closeReason);
    if (limit !== undefined) {
      this.frameLimit = limit;
      const over = sent.filter((p) => p.bytes > limit);
      if (over.length > 0) return over;
    }
    return [sent.reduce((a, b) => (b.bytes > a.bytes ? b : a))];
  }

  /** dropSocket forgets a connection: its timers stop and its open requests reject with err. */
  private dropSocket(sock: Sock, err: Error): void {
    if (this.sock === sock) this.sock = undefined;
    sock.ws.onopen = sock.ws.onmessage = sock.ws.onclose = null;
    sock.ws.onerror = () => {};
    for (const t of sock.timers) clearTimeout(t);
    if (sock.heartbeat) clearInterval(sock.heartbeat);
    sock.fenceQueue = [];
    for (const p of [...sock.inflight.values()]) this.settle(p, err);
    sock.inflight.clear();
    sock.unanswered.clear();
    for (const item of this.outbox.values()) {
      if (item.state === 'inflight') item.state = 'queued';
      // Whatever is left goes out again after the reconnect: a replay.
      item.replay = true;
    }
  }

  private ready(sock: Sock, mode: RequestIdMode): void {
    sock.mode = mode;
    sock.ready = true;
    for (const t of sock.timers.splice(0)) clearTimeout(t);
    this.attempt = 0;
    this.authFailures = 0;
    this.counters.connections++;
    const reason = this.counters.connections === 1 ? 'connect' : 'reconnect';
    const hb = this.opts.heartbeat ?? {};
    sock.heartbeat = setInterval(() => {
      this.request('session.heartbeat', undefined, { timeoutMs: hb.timeoutMs ?? 10000 }).catch((err) => {
        if (err instanceof RequestTimeoutError) this.dead(sock, 'heartbeat timeout');
      });
    }, hb.intervalMs ?? 20000);
    this.setState({ state: 'connected', reason, requestIdMode: mode, willReconnect: true, attempt: 0 });
    if (this.sock !== sock) return;
    for (const p of this.waiting.splice(0)) this.transmit(sock, p);
    this.pumpOutbox();
    for (const r of this.rooms.values()) this.catchUp(r);
  }

  // ---- requests ----

  private nextId(): string {
    return 'r' + (++this.reqSeq).toString(36);
  }

  /**
   * Sends an event and resolves with the dispatches collected until its
   * final answer (docs/protocol.md#request-id), or rejects with a
   * ServerError (its error envelope), ConnectionLostError,
   * RequestTimeoutError or ClientClosedError. While disconnected the request
   * waits for the connection (within the timeout). Use it for events a host
   * added; the typed methods below cover the protocol's.
   */
  request(eventType: string, data?: unknown, options: RequestOptions = {}): Promise<Dispatch[]> {
    return new Promise<Dispatch[]>((resolve, reject) => {
      const stopped = this.stoppedError();
      if (stopped) {
        reject(stopped);
        return;
      }
      const p: Pending = {
        id: this.nextId(),
        eventType,
        data,
        bytes: 0,
        collect: options.collect,
        frames: [],
        resolve,
        reject,
        settled: false,
      };
      const timeoutMs = options.timeoutMs ?? this.opts.requestTimeoutMs ?? 15000;
      p.timer = setTimeout(() => {
        const i = this.waiting.indexOf(p);
        if (i >= 0) this.waiting.splice(i, 1);
        this.settle(p, new RequestTimeoutError(`${eventType}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const sock = this.sock;
      if (sock?.ready) this.transmit(sock, p);
      else this.waiting.push(p);
    });
  }

  private transmit(sock: Sock, p: Pending): void {
    const frame = encodeEnvelope(p.eventType, p.data, p.id);
    p.bytes = utf8Length(frame);
    if (this.frameLimit > 0 && p.bytes > this.frameLimit) {
      this.settle(p, new FrameRejectedError(1009, `a frame of ${p.bytes} bytes is over the server's limit of ${this.frameLimit}`, p.eventType));
      return;
    }
    p.sock = sock;
    sock.inflight.set(p.id, p);
    sock.unanswered.set(p.id, p);
    if (sock.mode === 'fence') {
      p.fence = p.eventType === 'session.heartbeat' ? 'none' : BUILTIN_EVENTS.has(p.eventType) ? 'marker' : 'heartbeat';
      sock.fenceQueue.push(p);
    }
    if (!this.rawSend(sock, frame)) return;
    if (p.fence === 'marker') this.rawSend(sock, encodeEnvelope(FENCE_EVENT, undefined));
    // A host's event may itself be unknown to the server and answer
    // "invalid event type": a heartbeat ends it instead.
    if (p.fence === 'heartbeat') this.rawSend(sock, encodeEnvelope('session.heartbeat', undefined));
  }

  private settle(p: Pending, result: Dispatch[] | Error): void {
    if (p.settled) return;
    p.settled = true;
    if (p.timer) clearTimeout(p.timer);
    p.sock?.inflight.delete(p.id);
    if (result instanceof Error) p.reject(result);
    else p.resolve(result);
  }

  private handleFrame(sock: Sock, f: Record<string, unknown>): void {
    const rid = typeof f.request_id === 'string' ? f.request_id : undefined;
    if (typeof f.eventType === 'string') {
      const d: Dispatch = { eventType: f.eventType, data: f.data };
      if (rid !== undefined) d.request_id = rid;
      this.collect(sock, d);
      this.handleDispatch(d);
      return;
    }
    if ('error' in f) {
      const e = f.error;
      const err =
        e && typeof e === 'object' && !Array.isArray(e)
          ? new ServerError(Number((e as { code?: unknown }).code) || 0, (e as { detail?: ErrorDetail }).detail ?? '')
          : new ServerError(0, String(e));
      if (!sock.mode) {
        if (rid === undefined || rid === sock.helloId) this.ready(sock, rid === undefined ? 'fence' : 'echo');
        return;
      }
      this.answerError(sock, err, rid, typeof e === 'string');
      return;
    }
    if (f.status === 'success' || (f.ok === true && rid !== undefined)) {
      if (!sock.mode) {
        if (f.status === 'success' && (rid === undefined || rid === sock.helloId)) {
          this.ready(sock, rid === undefined ? 'fence' : 'echo');
        }
        return;
      }
      if (sock.mode === 'echo') {
        if (f.ok !== true || rid === undefined) return; // a heartbeat's status: its ok frame follows
        sock.unanswered.delete(rid);
        const p = sock.inflight.get(rid);
        if (p) this.settle(p, p.frames);
        return;
      }
      const head = sock.fenceQueue[0];
      if (f.status === 'success' && head && head.fence !== 'marker') {
        this.endFence(sock);
        this.settle(head, head.error ?? head.frames);
      }
    }
  }

  private answerError(sock: Sock, err: ServerError, rid: string | undefined, bare: boolean): void {
    if (sock.mode === 'echo') {
      if (rid !== undefined) sock.unanswered.delete(rid);
      const p = rid !== undefined ? sock.inflight.get(rid) : undefined;
      if (p) this.settle(p, new ServerError(err.code, err.detail, p.eventType));
      else this.emit('error', err);
      return;
    }
    const head = sock.fenceQueue[0];
    if (!head) {
      this.emit('error', err);
      return;
    }
    const own = new ServerError(err.code, err.detail, head.eventType);
    if (head.fence === 'none') {
      // A heartbeat's own error.
      this.endFence(sock);
      this.settle(head, own);
    } else if (head.fence === 'marker' && bare && err.detail === 'invalid event type') {
      // The fence's answer (a built-in event never answers this): the
      // request before it is done.
      this.endFence(sock);
      this.settle(head, head.error ?? head.frames);
    } else if (!head.error) {
      head.error = own;
    } else if (head.fence === 'heartbeat' && !bare) {
      // The heartbeat that ends a host event failed too.
      this.endFence(sock);
      this.settle(head, head.error);
    } else {
      this.emit('error', err);
    }
  }

  /** endFence ends the request at the head of the fence queue: its last answer has come. */
  private endFence(sock: Sock): void {
    const head = sock.fenceQueue.shift();
    if (head) sock.unanswered.delete(head.id);
  }

  private collect(sock: Sock, d: Dispatch): void {
    if (sock.mode === 'fence') {
      const head = sock.fenceQueue[0];
      if (head && !head.settled && head.collect?.(d)) head.frames.push(d);
      return;
    }
    if (d.request_id !== undefined) {
      const p = sock.inflight.get(d.request_id);
      if (p) {
        p.frames.push(d);
        return;
      }
    }
    for (const p of sock.inflight.values()) if (p.collect?.(d)) p.frames.push(d);
  }

  // ---- dispatches and the delivery rule ----

  private handleDispatch(d: Dispatch): void {
    const data = d.data as never;
    switch (d.eventType) {
      case 'message.dispatch':
        this.ingestLive(data as Message);
        break;
      case 'roomlist.dispatch':
        if (this.opts.autoTrackRooms !== false && Array.isArray(data)) {
          for (const it of data as RoomListItem[]) {
            if (it && typeof it.id === 'string' && !this.rooms.has(it.id)) this.addRoom(it.id, it.last_message?.seq ?? 0);
          }
        }
        break;
      case 'roomcreate.dispatch': {
        const id = (data as RoomDetail | undefined)?.id;
        if (this.opts.autoTrackRooms !== false && typeof id === 'string' && !this.rooms.has(id)) this.addRoom(id, 0);
        break;
      }
      case 'roomaddmembers.dispatch': {
        // A room the user was added to: all of its messages are new to the user.
        const id = (data as DispatchMap['roomaddmembers.dispatch'] | undefined)?.room?.id;
        if (this.opts.autoTrackRooms !== false && typeof id === 'string' && !this.rooms.has(id)) this.addRoom(id, 0);
        break;
      }
      case 'roomexit.dispatch': {
        const id = (data as DispatchMap['roomexit.dispatch'] | undefined)?.room?.id;
        if (typeof id === 'string') this.removeRoom(id, 'left');
        break;
      }
      case 'roomdelete.dispatch': {
        const id = (data as DispatchMap['roomdelete.dispatch'] | undefined)?.room_id;
        if (typeof id === 'string') this.removeRoom(id, 'deleted');
        break;
      }
      case 'chat.resync':
        this.resync(data as ResyncDispatch);
        break;
    }
    this.emit('dispatch', d);
    this.emit(d.eventType as keyof DispatchMap, data);
  }

  /**
   * Tracks a room: its messages after afterSeq are handed to 'message' in
   * order, exactly once, and it is caught up after every reconnect. With
   * afterSeq 0 the room's whole history is delivered. Tracking a tracked
   * room changes nothing.
   */
  trackRoom(roomId: Id, afterSeq = 0): void {
    if (this.rooms.has(roomId)) return;
    this.addRoom(roomId, afterSeq);
  }

  /** Stops tracking a room. */
  untrackRoom(roomId: Id): void {
    const r = this.rooms.get(roomId);
    if (r?.retry) clearTimeout(r.retry);
    this.rooms.delete(roomId);
  }

  /**
   * addRoom tracks a room from lastSeq on and, when connected, catches it up
   * (unless catchUp is false: the room is known to have nothing after lastSeq).
   */
  private addRoom(id: Id, lastSeq: number, catchUp = true): Room {
    const r: Room = { id, lastSeq, buffer: new Map(), pass: 0, catching: false, again: false };
    this.rooms.set(id, r);
    if (catchUp && this.sock?.ready) this.catchUp(r);
    return r;
  }

  private removeRoom(id: Id, reason: string): void {
    if (!this.rooms.has(id)) return;
    this.untrackRoom(id);
    this.emit('roomRemoved', { roomId: id, reason });
  }

  private ingestLive(m: Message): void {
    if (!m || typeof m !== 'object' || !m.room || typeof m.seq !== 'number') return;
    this.matchSend(m);
    let r = this.rooms.get(m.room.id);
    if (!r) {
      if (this.opts.autoTrackRooms === false) {
        this.emit('message', m);
        return;
      }
      // A room the client did not know (the user may have been added while
      // away): from seq 0, so the messages before this one come first.
      r = this.addRoom(m.room.id, 0);
    }
    if (m.seq <= r.lastSeq || r.buffer.has(m.seq)) {
      this.counters.duplicatesDropped++;
      return;
    }
    if (!r.catching && m.seq === r.lastSeq + 1) {
      this.deliver(r, m);
      return;
    }
    r.buffer.set(m.seq, { msg: m, pass: r.pass });
    if (!r.catching) {
      this.counters.gapsDetected++;
      this.catchUp(r);
    }
  }

  private deliver(r: Room, m: Message): void {
    r.lastSeq = m.seq;
    this.counters.delivered++;
    this.emit('message', m);
  }

  /** catchUp fetches a room's messages after its last seq, then hands the waiting live ones over in order. */
  private catchUp(r: Room): void {
    if (r.catching) {
      r.again = true;
      return;
    }
    if (r.retry) {
      clearTimeout(r.retry);
      r.retry = undefined;
    }
    r.catching = true;
    void this.runCatchUp(r).finally(() => {
      r.catching = false;
    });
  }

  private async runCatchUp(r: Room): Promise<void> {
    try {
      do {
        r.again = false;
        const pass = ++r.pass;
        for (;;) {
          const after = r.lastSeq;
          const page = await this.fetchAfter(r.id, after);
          if (this.rooms.get(r.id) !== r) return;
          const msgs = page.data?.messages ?? [];
          for (const m of msgs) {
            this.matchSend(m);
            if (m.seq > r.lastSeq) {
              r.buffer.delete(m.seq);
              this.deliver(r, m);
            } else {
              this.counters.duplicatesDropped++;
            }
          }
          if (!page.has_more || msgs.length === 0) break;
        }
        // Live messages that waited: in order; a gap left before one that
        // arrived before this pass asked is a deleted message.
        const waiting = [...r.buffer.values()].sort((a, b) => a.msg.seq - b.msg.seq);
        for (const w of waiting) {
          const last = r.lastSeq;
          if (w.msg.seq <= last) {
            r.buffer.delete(w.msg.seq);
            this.counters.duplicatesDropped++;
          } else if (w.msg.seq === last + 1 || w.pass < pass) {
            r.buffer.delete(w.msg.seq);
            this.deliver(r, w.msg);
          } else {
            break;
          }
        }
      } while ((r.again || r.buffer.size > 0) && this.rooms.get(r.id) === r);
    } catch (err) {
      if (this.rooms.get(r.id) !== r) return;
      if (err instanceof ServerError && (err.code === ErrorCode.PermissionDenied || err.code === ErrorCode.NotFound)) {
        this.removeRoom(r.id, 'not a member');
        return;
      }
      if (err instanceof ConnectionLostError || err instanceof ClientClosedError) return; // caught up after the reconnect
      // A timeout or a store outage (4013): try again shortly while connected.
      r.retry = setTimeout(() => {
        r.retry = undefined;
        if (this.sock?.ready && this.rooms.get(r.id) === r) this.catchUp(r);
      }, backoffDelay(1, this.opts.backoff) + 100);
    }
  }

  private async fetchAfter(roomId: Id, after: number): Promise<RoomMessagesPage> {
    await this.slot();
    try {
      this.counters.catchUpRequests++;
      const matches = (d: Dispatch): boolean => {
        if (d.eventType !== 'roommessages.dispatch') return false;
        const p = d.data as RoomMessagesPage | undefined;
        return p?.data?.room_id === roomId && p.after_seq === after;
      };
      const frames = await this.request(
        'room.messages',
        { room_id: roomId, after_seq: after, limit: this.opts.catchUpLimit ?? 100 },
        { collect: matches },
      );
      // The answer goes to every device of the user without request_id, so
      // another device's answer to the same question may arrive in this
      // request's window, computed earlier. Merging every answer keeps this
      // request's own, which is as fresh as the request.
      const pages = frames.filter(matches).map((f) => f.data as RoomMessagesPage);
      if (pages.length === 0) throw new ServerError(0, 'no roommessages.dispatch in the answer to room.messages', 'room.messages');
      if (pages.length === 1) return pages[0]!;
      const bySeq = new Map<number, Message>();
      for (const p of pages) for (const m of p.data?.messages ?? []) bySeq.set(m.seq, m);
      return {
        data: { room_id: roomId, messages: [...bySeq.values()].sort((a, b) => a.seq - b.seq) },
        after_seq: after,
        has_more: pages.some((p) => p.has_more === true),
      };
    } finally {
      this.release();
    }
  }

  private slot(): Promise<void> {
    if (this.catchUpSlots > 0) {
      this.catchUpSlots--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.catchUpQueue.push(resolve));
  }

  private release(): void {
    const next = this.catchUpQueue.shift();
    if (next) next();
    else this.catchUpSlots++;
  }

  private resync(d: ResyncDispatch): void {
    if (!d || !Array.isArray(d.rooms)) return;
    const listed = new Map<Id, number>();
    for (const x of d.rooms) if (x && typeof x.room_id === 'string') listed.set(x.room_id, Number(x.seq) || 0);
    const res: ResyncResult = { reason: String(d.reason ?? ''), caughtUp: [], added: [], removed: [] };
    for (const id of [...this.rooms.keys()]) {
      if (!listed.has(id)) {
        res.removed.push(id);
        this.removeRoom(id, 'resync');
      }
    }
    for (const [id, seq] of listed) {
      const r = this.rooms.get(id);
      if (!r) {
        // A room the user was added to while the broker was away: all of
        // its messages are new to the user.
        if (this.opts.autoTrackRooms !== false) {
          this.addRoom(id, 0, seq > 0);
          res.added.push(id);
        }
      } else if (seq > r.lastSeq) {
        res.caughtUp.push(id);
        this.catchUp(r);
      }
    }
    this.emit('resync', res);
  }

  // ---- the outbox ----

  /**
   * Sends a message (docs/protocol.md#message-send) and resolves with the
   * stored message, the sender's own message.dispatch matched by
   * client_msg_id. While disconnected the message waits in the outbox and
   * is sent after the reconnect with the same client_msg_id, so it is
   * stored once however often it is sent. Rejects with ServerError when the
   * server refuses it (nothing stored), OutboxFullError when the outbox is
   * full, FrameRejectedError when its frame is over the server's limit,
   * ClientClosedError on close (ConnectionClosedError when the server ended
   * the session with 1000: the message stays in the outbox for connect()). 4013 is retried; so is 4029 unless the
   * message is one the user made while connected with nothing waiting
   * before it (a replayed message is kept until the server takes it).
   */
  sendMessage(roomId: Id, content: string, options: SendOptions = {}): Promise<Message> {
    const stopped = this.stoppedError();
    if (stopped) return Promise.reject(stopped);
    const max = this.opts.outbox?.max ?? 200;
    if (this.outbox.size >= max) return Promise.reject(new OutboxFullError(`the outbox holds ${max} unsent messages`));
    const clientMsgId = options.clientMsgId ?? this.newClientMsgId();
    const existing = this.outbox.get(clientMsgId);
    if (existing) {
      return new Promise((resolve, reject) => {
        const [res, rej] = [existing.resolve, existing.reject];
        existing.resolve = (m) => {
          res?.(m);
          resolve(m);
        };
        existing.reject = (e) => {
          rej?.(e);
          reject(e);
        };
      });
    }
    const extra: Record<string, unknown> = { ...(options.extraFields ?? {}) };
    if (options.parentMessageId) extra.parent_message_id = options.parentMessageId;
    if (options.forwardedFromId) extra.forwarded_from_id = options.forwardedFromId;
    if (options.media) extra.media = options.media;
    const entry: OutboxEntry = { clientMsgId, roomId, content, createdAt: Date.now() };
    if (Object.keys(extra).length > 0) entry.extraFields = extra;
    // The frame with the longest request_id the client makes (r + 10 base-36 digits).
    const bytes = utf8Length(encodeEnvelope('message.send', sendData(entry), 'r0000000000'));
    if (this.frameLimit > 0 && bytes > this.frameLimit) {
      return Promise.reject(
        new FrameRejectedError(1009, `a frame of ${bytes} bytes is over the server's limit of ${this.frameLimit}`, 'message.send'),
      );
    }
    // A message waits behind a replay in progress, and is paced with it.
    const replay = !this.sock?.ready || [...this.outbox.values()].some((i) => i.replay);
    return new Promise<Message>((resolve, reject) => {
      this.outbox.set(clientMsgId, { entry, state: 'queued', replay, ticket: 0, attempts: 0, transmitted: 0, resolve, reject });
      this.saveOutbox();
      this.pumpOutbox();
    });
  }

  private newClientMsgId(): string {
    if (this.opts.newClientMsgId) return this.opts.newClientMsgId();
    const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
    if (c?.randomUUID) return 'c-' + c.randomUUID();
    return 'c-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  }

  private saveOutbox(): void {
    const entries = [...this.outbox.values()].map((i) => i.entry);
    this.saving = this.saving
      .then(() => this.storage.save(entries))
      .catch((err) => this.emit('error', asError(err, 'failed to save the outbox')));
  }

  /**
   * pumpOutbox sends what the outbox holds, in order, up to
   * maxSendsInFlight at once. Replayed messages go one per room at a time,
   * so that one the server refuses for now (4029, 4013) is not overtaken by
   * the next of its room, and, once the server said 4029, one at a time
   * over all rooms at the rate it stated.
   */
  private pumpOutbox(): void {
    const sock = this.sock;
    if (!sock?.ready || this.closing) return;
    const max = this.opts.maxSendsInFlight ?? 32;
    let inflight = 0;
    let replaysInflight = 0;
    let replays = false;
    const busy = new Set<Id>();
    for (const item of this.outbox.values()) {
      if (item.replay) replays = true;
      if (item.state !== 'queued') busy.add(item.entry.roomId);
      if (item.state !== 'inflight') continue;
      inflight++;
      if (item.replay) replaysInflight++;
    }
    if (!replays) this.pacer.reset();
    for (const item of this.outbox.values()) {
      if (inflight >= max) break;
      if (item.state !== 'queued') continue;
      if (item.replay) {
        if (busy.has(item.entry.roomId)) continue;
        const wait = this.pacer.wait(replaysInflight);
        if (wait > 0) this.armPacer(wait);
        // In order: what comes after waits too.
        if (wait !== 0) break;
        item.ticket = this.pacer.ticket();
        replaysInflight++;
        busy.add(item.entry.roomId);
      } else {
        item.ticket = this.pacer.current;
      }
      inflight++;
      this.transmitSend(item);
    }
  }

  private armPacer(ms: number): void {
    if (this.pacerTimer) return;
    this.pacerTimer = setTimeout(() => {
      this.pacerTimer = undefined;
      this.pumpOutbox();
    }, ms);
  }

  private transmitSend(item: OutboxItem): void {
    const e = item.entry;
    item.state = 'inflight';
    if (item.transmitted > 0) this.counters.resends++;
    item.transmitted++;
    this.counters.sendsTransmitted++;
    this.request('message.send', sendData(e)).then(
      () => {
        if (this.outbox.get(e.clientMsgId) !== item) return;
        // Answered without the message: it was stored (one truthful answer
        // per send) but its dispatch did not reach this socket. Catch the
        // room up, then send again if it is still missing (the server
        // answers a known client_msg_id with the stored message).
        const r = this.rooms.get(e.roomId);
        if (r) this.catchUp(r);
        item.state = 'waiting';
        item.timer = setTimeout(() => this.requeue(item), backoffDelay(item.attempts++, this.opts.backoff) + 200);
      },
      (err: Error) => {
        if (this.outbox.get(e.clientMsgId) !== item) return;
        if (err instanceof FrameRejectedError) {
          this.failSend(item, err);
          return;
        }
        if (err instanceof ServerError && err.code === ErrorCode.RateLimited && (item.replay || item.transmitted > 1)) {
          // Sent again by the client (a replay, a retry): the user's send
          // is not refused for the rate of the client's own resending. It
          // keeps its place and the replay is paced (docs/protocol.md#rate-limits).
          item.replay = true;
          item.state = 'queued';
          this.counters.rateLimited++;
          const delayMs = this.pacer.rateLimited(item.ticket, err.detail);
          this.emit('sendDelayed', { clientMsgId: e.clientMsgId, roomId: e.roomId, error: err, delayMs });
          this.pumpOutbox();
          return;
        }
        if (err instanceof ServerError && err.code !== ErrorCode.Unavailable && err.code !== 0) {
          this.failSend(item, err);
          return;
        }
        if (err instanceof ServerError || err instanceof RequestTimeoutError) {
          // 4013 or no answer: nothing or the message was stored; the same
          // client_msg_id is safe to send again.
          item.state = 'waiting';
          const delayMs = backoffDelay(item.attempts++, this.opts.backoff);
          item.timer = setTimeout(() => this.requeue(item), delayMs);
          this.emit('sendDelayed', { clientMsgId: e.clientMsgId, roomId: e.roomId, error: err, delayMs });
          return;
        }
        // Connection lost or closed: stays queued for the next connection.
        item.state = 'queued';
      },
    );
  }

  private requeue(item: OutboxItem): void {
    item.timer = undefined;
    if (this.outbox.get(item.entry.clientMsgId) !== item || item.state !== 'waiting') return;
    item.state = 'queued';
    this.pumpOutbox();
  }

  private failSend(item: OutboxItem, err: Error): void {
    const e = item.entry;
    this.outbox.delete(e.clientMsgId);
    if (item.timer) clearTimeout(item.timer);
    this.saveOutbox();
    item.reject?.(err);
    this.emit('sendFailed', { clientMsgId: e.clientMsgId, roomId: e.roomId, error: err });
    this.pumpOutbox();
  }

  private matchSend(m: Message): void {
    const id = m.client_msg_id;
    if (!id) return;
    const item = this.outbox.get(id);
    if (!item || item.entry.roomId !== m.room?.id) return;
    this.outbox.delete(id);
    if (item.timer) clearTimeout(item.timer);
    if (item.replay) this.pacer.succeeded();
    this.saveOutbox();
    item.resolve?.(m);
    this.emit('sent', { clientMsgId: id, message: m });
    this.pumpOutbox();
  }

  // ---- the events of docs/protocol.md#events ----

  /** message.acknowledged: delivery receipts for messages of others (docs/protocol.md#message-acknowledged). */
  async acknowledge(messageIds: Id | Id[]): Promise<void> {
    await this.request('message.acknowledged', { message_id: messageIds });
  }

  /** message.read: read receipts (docs/protocol.md#message-read). */
  async markRead(messageIds: Id | Id[]): Promise<void> {
    await this.request('message.read', { message_id: messageIds });
  }

  /** message.react add: resolves with the reaction.dispatch (docs/protocol.md#message-react). */
  async react(messageId: Id, reaction: string): Promise<ReactionDispatch | undefined> {
    const frames = await this.request(
      'message.react',
      { type: 'add', message_id: messageId, reaction_content: reaction },
      { collect: reactionOf(messageId) },
    );
    return frames.find(reactionOf(messageId))?.data as ReactionDispatch | undefined;
  }

  /** message.react remove: resolves with the reaction.dispatch (status "failed" when there was none). */
  async removeReaction(messageId: Id): Promise<ReactionDispatch | undefined> {
    const frames = await this.request('message.react', { type: 'remove', message_id: messageId }, { collect: reactionOf(messageId) });
    return frames.find(reactionOf(messageId))?.data as ReactionDispatch | undefined;
  }

  /** message.typing (docs/protocol.md#message-typing); send it at most every 2-3 s while the user types. */
  async typing(roomId: Id): Promise<void> {
    await this.request('message.typing', { room_id: roomId });
  }

  /** message.modify update: edits one of the user's messages (docs/protocol.md#message-modify). */
  async editMessage(messageId: Id, content: string): Promise<Message | undefined> {
    const is = (d: Dispatch) =>
      d.eventType === 'messagemodification.dispatch' &&
      (d.data as MessageModificationDispatch)?.action === 'update' &&
      (d.data as { message?: Message }).message?.id === messageId;
    const frames = await this.request(
      'message.modify',
      { action: 'update', message_id: messageId, extra_fields: { content } },
      { collect: is },
    );
    return (frames.find(is)?.data as { message?: Message } | undefined)?.message;
  }

  /** message.modify delete: deletes messages of the user's, all of one room. */
  async deleteMessages(messageIds: Id | Id[]): Promise<void> {
    await this.request('message.modify', { action: 'delete', message_id: messageIds });
  }

  /** room.create: resolves with the new room's detail (docs/protocol.md#room-create). */
  async createRoom(input: CreateRoomInput): Promise<RoomDetail> {
    // roomcreate.dispatch goes to the room, without request_id: a room
    // someone else created with this user may arrive in the same window, so
    // the answer is the last one that fits the input.
    // (Ids of users that do not exist are dropped by the server, so the
    // best fit wins, not only a perfect one.)
    const is = (d: Dispatch) => d.eventType === 'roomcreate.dispatch' && fitsCreate(d.data as RoomDetail, input) >= 0;
    const frames = await this.request('room.create', input, { collect: is });
    let f: Dispatch | undefined;
    for (const x of frames) {
      if (is(x) && (!f || fitsCreate(x.data as RoomDetail, input) >= fitsCreate(f.data as RoomDetail, input))) f = x;
    }
    if (!f) throw new ServerError(0, 'no roomcreate.dispatch in the answer', 'room.create');
    return f.data as RoomDetail;
  }

  /** room.list: every room of the user, most recently active first (docs/protocol.md#room-list). */
  async listRooms(): Promise<RoomListItem[]> {
    const is = (d: Dispatch) => d.eventType === 'roomlist.dispatch';
    const frames = await this.request('room.list', {}, { collect: is });
    const f = frames.find(is);
    if (!f) throw new ServerError(0, 'no roomlist.dispatch in the answer', 'room.list');
    return f.data as RoomListItem[];
  }

  /** room.info: a room's detail (docs/protocol.md#room-info). */
  async roomInfo(roomId: Id): Promise<RoomDetail> {
    const is = (d: Dispatch) => d.eventType === 'roominfo.dispatch' && (d.data as RoomDetail)?.id === roomId;
    const frames = await this.request('room.info', { room_id: roomId }, { collect: is });
    const f = frames.find(is);
    if (!f) throw new ServerError(0, 'no roominfo.dispatch in the answer', 'room.info');
    return f.data as RoomDetail;
  }

  /**
   * room.messages: every message, a page ({paginate}), or by seq
   * ({after_seq} / {before_seq}, with limit) (docs/protocol.md#room-messages).
   * The answer is returned as it is; tracked rooms are caught up by the
   * client itself, so this is for history and scrolling back.
   */
  async roomMessages(roomId: Id, query: RoomMessagesQuery = {}): Promise<RoomMessagesPage> {
    const q = query as Record<string, unknown>;
    const is = (d: Dispatch) => {
      if (d.eventType !== 'roommessages.dispatch') return false;
      const p = d.data as RoomMessagesPage;
      if (p?.data?.room_id !== roomId) return false;
      if ('after_seq' in q) return p.after_seq === q.after_seq;
      if ('before_seq' in q) return p.before_seq === q.before_seq;
      return p.after_seq === undefined && p.before_seq === undefined;
    };
    const frames = await this.request('room.messages', { room_id: roomId, ...q }, { collect: is });
    const f = frames.find(is);
    if (!f) throw new ServerError(0, 'no roommessages.dispatch in the answer', 'room.messages');
    return f.data as RoomMessagesPage;
  }

  /** room.join: joins a public channel (docs/protocol.md#room-join). */
  async joinRoom(roomId: Id): Promise<void> {
    await this.request('room.join', { room_id: roomId });
  }

  /** room.leave: leaves a group or channel (docs/protocol.md#room-leave). */
  async leaveRoom(roomId: Id): Promise<void> {
    await this.request('room.leave', { room_id: roomId });
  }

  /** room.add_members (docs/protocol.md#room-add-members). */
  async addMembers(roomId: Id, members: UserId[]): Promise<void> {
    await this.request('room.add_members', { room_id: roomId, members });
  }

  /** room.remove_members (docs/protocol.md#room-remove-members). */
  async removeMembers(roomId: Id, members: UserId[]): Promise<void> {
    await this.request('room.remove_members', { room_id: roomId, members });
  }

  /**
   * room.modify (docs/protocol.md#room-modify): update takes the fields to
   * change; the role and permission actions take {users, permission?}.
   */
  async modifyRoom(
    roomId: Id,
    action: RoomModifyAction,
    data?: Record<string, unknown> | { users: UserId[]; permission?: Permission[] },
  ): Promise<void> {
    const body: Record<string, unknown> = { room_id: roomId, action };
    if (data !== undefined) body.data = data;
    await this.request('room.modify', body);
  }

  /** room.modify delete. */
  deleteRoom(roomId: Id): Promise<void> {
    return this.modifyRoom(roomId, 'delete');
  }

  /** session.heartbeat; the client sends one by itself every heartbeat interval. */
  async heartbeat(): Promise<void> {
    await this.request('session.heartbeat');
  }

  /**
   * user.search: users whose username or name matches query, one page
   * (limit). Needs a server that has the event.
   */
  async searchUsers(query: string, limit = 20): Promise<User[]> {
    const is = (d: Dispatch) => d.eventType === 'usersearch.dispatch';
    const frames = await this.request('user.search', { query, limit }, { collect: is });
    const f = frames.find(is);
    return ((f?.data as { users?: User[] } | undefined)?.users ?? []) as User[];
  }

  /**
   * presence.query (docs/protocol.md#presence-query): the announced
   * presence of a room's members (a room id) or of the given users who
   * share a room with this user (at most 100 ids), ordered by user id.
   * Follow 'presence.dispatch' afterwards. Needs a server that has the
   * event.
   */
  async queryPresence(of: Id | UserId[]): Promise<UserPresence[]> {
    const is = (d: Dispatch) => d.eventType === 'presencequery.dispatch';
    const data = Array.isArray(of) ? { user_ids: of } : { room_id: of };
    const frames = await this.request('presence.query', data, { collect: is });
    const f = frames.find(is);
    return ((f?.data as PresenceQueryDispatch | undefined)?.users ?? []) as UserPresence[];
  }
}

/**
 * fitsCreate scores a created room as the answer to a room.create input:
 * -1 when it cannot be (another type or name, a one-to-one chat with
 * someone else), else how many of the asked members it has.
 */
function fitsCreate(d: RoomDetail | undefined, input: CreateRoomInput): number {
  if (!d || d.type !== input.type) return -1;
  const extra = (input.extra_fields ?? {}) as { name?: unknown };
  const name = typeof extra.name === 'string' ? extra.name : 'name' in input ? input.name : undefined;
  if (name !== undefined && 'name' in d && d.name !== name) return -1;
  const asked = ('participants' in input ? input.participants : 'subscribers' in input ? input.subscribers : undefined) ?? [];
  const members = d.type === 'Channel' ? d.subscribers : d.participants;
  const have = new Set((members ?? []).map((u) => String(u.id)));
  const found = asked.filter((id) => have.has(String(id))).length;
  if (d.type === 'OneToOneChat' && found !== asked.length) return -1;
  return found;
}

/** sendData is the data of the message.send that stores an outbox entry. */
function sendData(e: OutboxEntry): Record<string, unknown> {
  const data: Record<string, unknown> = { room_id: e.roomId, content: e.content, client_msg_id: e.clientMsgId };
  if (e.extraFields) data.extra_fields = e.extraFields;
  return data;
}

function reactionOf(messageId: Id) {
  return (d: Dispatch) =>
    d.eventType === 'reaction.dispatch' && (d.data as { message?: Message })?.message?.id === messageId;
}

function asError(err: unknown, what: string): Error {
  if (err instanceof Error) return err;
  return new Error(`${what}: ${String(err)}`);
}
