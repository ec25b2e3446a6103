import { backoffDelay } from './backoff.js';
import { Emitter } from './emitter.js';
import { ClientClosedError, ConnectionClosedError, ConnectionLostError, ErrorCode, FrameRejectedError, OutboxFullError, RequestTimeoutError, ServerError, } from './errors.js';
import { MemoryOutboxStorage } from './outbox.js';
import { ReplayPacer } from './pacing.js';
import { BATCH_SUBPROTOCOL, closeLimit, decodeFrames, encodeEnvelope, utf8Length, withToken, } from './socket.js';
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
/**
 * ChatClient is a connection to a chatmux chat server that carries the
 * server's delivery guarantees to the application (docs/protocol.md#delivery):
 * it reconnects with backoff, catches every tracked room up by seq after a
 * reconnect, a gap or a chat.resync, drops duplicates by (room, seq), and
 * sends messages from an outbox with a client_msg_id until they are stored
 * exactly once.
 */
export class ChatClient extends Emitter {
    opts;
    WS;
    storage;
    sock;
    gen = 0;
    reqSeq = 0;
    started = false;
    closing = false;
    /** The server closed with 1000 (the session ended); connect() clears it. */
    ended;
    signedOutFlag = false;
    attempt = 0;
    authFailures = 0;
    reconnectTimer;
    waiting = [];
    outbox = new Map();
    saving = Promise.resolve();
    rooms = new Map();
    catchUpSlots;
    catchUpQueue = [];
    pacer;
    pacerTimer;
    frameLimit;
    currentState = 'idle';
    counters = {
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
    constructor(options) {
        super();
        this.opts = options;
        const WS = options.WebSocket ?? globalThis.WebSocket;
        if (!WS)
            throw new TypeError('chatmux: no WebSocket implementation: pass options.WebSocket (in Node.js, the ws package)');
        this.WS = WS;
        this.storage = options.outbox?.storage ?? new MemoryOutboxStorage();
        this.catchUpSlots = options.catchUpConcurrency ?? 4;
        this.pacer = new ReplayPacer(options.backoff);
        this.frameLimit = options.maxFrameBytes ?? 65536;
    }
    // ---- state ----
    /** The connection's current state. */
    get state() {
        return this.currentState;
    }
    /** How requests are matched to answers on the current connection, once it is connected. */
    get requestIdMode() {
        return this.sock?.mode;
    }
    /** A copy of the delivery counters. */
    get stats() {
        return { ...this.counters };
    }
    /** The messages waiting in the outbox, in send order. */
    get pendingMessages() {
        return [...this.outbox.values()].map((i) => ({ ...i.entry }));
    }
    /** The last seq handed to the application for a room, or undefined when the room is not tracked. */
    lastSeq(roomId) {
        return this.rooms.get(roomId)?.lastSeq;
    }
    /** The ids of the tracked rooms. */
    get trackedRooms() {
        return [...this.rooms.keys()];
    }
    /**
     * Resolves once the client is connected (at once if it is); rejects with
     * ClientClosedError when it stops trying (closed, signed out), with
     * ConnectionClosedError when the server ended the session (1000) until
     * connect() is called again.
     */
    whenConnected() {
        if (this.currentState === 'connected')
            return Promise.resolve();
        const stopped = this.stoppedError();
        if (stopped)
            return Promise.reject(stopped);
        return new Promise((resolve, reject) => {
            const off = this.on('state', (s) => {
                if (s.state === 'connected') {
                    off();
                    resolve();
                }
                else if (s.state === 'disconnected' && !s.willReconnect) {
                    off();
                    reject(this.ended && !this.closing ? this.endedError() : new ClientClosedError(s.reason));
                }
            });
        });
    }
    /** stoppedError is the error of a request made now, when the client is not trying to connect. */
    stoppedError() {
        if (this.closing)
            return new ClientClosedError('the client is closed');
        if (this.ended)
            return this.endedError();
        return undefined;
    }
    endedError() {
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
    async connect() {
        if (this.started)
            return;
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
            for (const [id, item] of current)
                this.outbox.set(id, item);
        }
        catch (err) {
            this.emit('error', asError(err, 'failed to load the outbox'));
        }
        if (this.closing)
            return;
        void this.open('connect');
    }
    /**
     * Closes the connection and stops reconnecting. Requests waiting for an
     * answer reject with ClientClosedError; so do the promises of unsent
     * messages, which stay in the outbox storage for a later client.
     */
    async close() {
        this.closing = true;
        this.shutdown('closed by client');
        await this.saving;
    }
    /**
     * shutdown stops the client: no reconnect, requests and the promises of
     * unsent messages reject with stopped() (the messages stay in the outbox).
     */
    shutdown(reason, code, closeReason, stopped = () => new ClientClosedError(reason)) {
        if (this.reconnectTimer)
            clearTimeout(this.reconnectTimer);
        this.reconnectTimer = undefined;
        const sock = this.sock;
        if (sock) {
            this.dropSocket(sock, stopped());
            try {
                sock.ws.close(1000, '');
            }
            catch {
                // already closing
            }
        }
        for (const p of this.waiting.splice(0))
            this.settle(p, stopped());
        if (this.pacerTimer)
            clearTimeout(this.pacerTimer);
        this.pacerTimer = undefined;
        for (const item of this.outbox.values()) {
            if (item.timer)
                clearTimeout(item.timer);
            item.reject?.(stopped());
            item.resolve = item.reject = undefined;
            item.state = 'queued';
        }
        for (const r of this.rooms.values())
            if (r.retry)
                clearTimeout(r.retry);
        this.setState({ state: 'disconnected', reason, code, closeReason, willReconnect: false, attempt: this.attempt });
    }
    setState(s) {
        this.currentState = s.state;
        this.emit('state', s);
        if (s.state !== 'idle')
            this.emit(s.state, s);
    }
    async open(reason) {
        this.reconnectTimer = undefined;
        if (this.closing || this.signedOutFlag)
            return;
        const gen = ++this.gen;
        this.setState({ state: 'connecting', reason, willReconnect: true, attempt: this.attempt });
        let token;
        const src = this.opts.token;
        if (typeof src === 'function') {
            try {
                const t = await src();
                if (t === null || t === undefined) {
                    this.signOut('no token');
                    return;
                }
                token = t;
            }
            catch (err) {
                this.emit('error', asError(err, 'the token function failed'));
                if (gen === this.gen)
                    this.scheduleReconnect('token unavailable', undefined, '', false);
                return;
            }
        }
        else {
            token = src;
        }
        if (this.closing || this.signedOutFlag || gen !== this.gen)
            return;
        let ws;
        try {
            const url = withToken(this.opts.url, this.opts.tokenParam ?? 'token', token);
            ws = this.opts.batch === false ? new this.WS(url) : new this.WS(url, [BATCH_SUBPROTOCOL]);
        }
        catch (err) {
            this.emit('error', asError(err, 'failed to open the WebSocket'));
            this.scheduleReconnect('connect failed', undefined, '', false);
            return;
        }
        const sock = {
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
        sock.timers.push(setTimeout(() => this.dead(sock, 'connect timeout'), this.opts.connectTimeoutMs ?? 10000));
        ws.onopen = () => {
            if (this.sock !== sock)
                return;
            // The first request tells whether the server echoes request_id.
            this.rawSend(sock, encodeEnvelope('session.heartbeat', undefined, sock.helloId));
        };
        ws.onmessage = (ev) => {
            if (this.sock !== sock)
                return;
            let frames;
            try {
                frames = decodeFrames(ev.data);
            }
            catch (err) {
                this.emit('error', asError(err, 'a frame that is not JSON'));
                return;
            }
            if (frames.length > 1)
                this.counters.batches++;
            for (const f of frames) {
                if (this.sock !== sock)
                    return;
                this.handleFrame(sock, f);
            }
        };
        ws.onclose = (ev) => {
            if (this.sock !== sock)
                return;
            this.closed(sock, ev.code, ev.reason ?? '', 'closed by server');
        };
        ws.onerror = () => {
            // A close event follows.
        };
    }
    rawSend(sock, frame) {
        try {
            sock.ws.send(frame);
            return true;
        }
        catch {
            return false; // the close event follows
        }
    }
    /** dead drops a connection that stopped answering and reconnects. */
    dead(sock, reason) {
        if (this.sock !== sock)
            return;
        try {
            if (sock.ws.terminate)
                sock.ws.terminate();
            else
                sock.ws.close(4000, reason);
        }
        catch {
            // closing already
        }
        this.closed(sock, 1006, '', reason);
    }
    closed(sock, code, closeReason, reason) {
        const offenders = code === 1007 || code === 1009 ? this.offenders(sock, code, closeReason) : [];
        if (this.sock === sock)
            this.sock = undefined; // nothing more goes out on it
        const refused = offenders.map((p) => [
            p,
            new FrameRejectedError(code, code === 1009 ? `the server closed the connection on a frame of ${p.bytes} bytes, over its limit (1009)` : 'the server closed the connection on this frame: not valid UTF-8 (1007)', p.eventType),
        ]);
        for (const [p, err] of refused)
            this.settle(p, err);
        this.dropSocket(sock, new ConnectionLostError(`connection lost (${reason}${code ? ', ' + code : ''})`));
        // docs/protocol.md#close-codes: never send again the frame that caused 1007 or 1009.
        for (const [p, err] of refused) {
            const id = p.eventType === 'message.send' ? p.data?.client_msg_id : undefined;
            const item = typeof id === 'string' ? this.outbox.get(id) : undefined;
            if (item)
                this.failSend(item, err);
        }
        if (this.closing)
            return;
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
    scheduleReconnect(reason, code, closeReason, slow) {
        const delayMs = backoffDelay(this.attempt, this.opts.backoff, slow);
        this.attempt++;
        this.setState({ state: 'disconnected', reason, code, closeReason, willReconnect: true, delayMs, attempt: this.attempt });
        this.reconnectTimer = setTimeout(() => void this.open('reconnect'), delayMs);
    }
    signOut(reason, code, closeReason) {
        this.signedOutFlag = true;
        this.closing = true;
        this.shutdown(reason, code, closeReason);
        const s = { state: 'disconnected', reason, code, closeReason, willReconnect: false, attempt: this.attempt };
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
    offenders(sock, code, closeReason) {
        const sent = [...sock.unanswered.values()];
        if (sent.length === 0)
            return [];
        if (code === 1007)
            return [sent[0]];
        const limit = closeLimit(closeReason);
        if (limit !== undefined) {
            this.frameLimit = limit;
            const over = sent.filter((p) => p.bytes > limit);
            if (over.length > 0)
                return over;
        }
        return [sent.reduce((a, b) => (b.bytes > a.bytes ? b : a))];
    }
    /** dropSocket forgets a connection: its timers stop and its open requests reject with err. */
    dropSocket(sock, err) {
        if (this.sock === sock)
            this.sock = undefined;
        sock.ws.onopen = sock.ws.onmessage = sock.ws.onclose = null;
        sock.ws.onerror = () => { };
        for (const t of sock.timers)
            clearTimeout(t);
        if (sock.heartbeat)
            clearInterval(sock.heartbeat);
        sock.fenceQueue = [];
        for (const p of [...sock.inflight.values()])
            this.settle(p, err);
        sock.inflight.clear();
        sock.unanswered.clear();
        for (const item of this.outbox.values()) {
            if (item.state === 'inflight')
                item.state = 'queued';
            // Whatever is left goes out again after the reconnect: a replay.
            item.replay = true;
        }
    }
    ready(sock, mode) {
        sock.mode = mode;
        sock.ready = true;
        for (const t of sock.timers.splice(0))
            clearTimeout(t);
        this.attempt = 0;
        this.authFailures = 0;
        this.counters.connections++;
        const reason = this.counters.connections === 1 ? 'connect' : 'reconnect';
        const hb = this.opts.heartbeat ?? {};
        sock.heartbeat = setInterval(() => {
            this.request('session.heartbeat', undefined, { timeoutMs: hb.timeoutMs ?? 10000 }).catch((err) => {
                if (err instanceof RequestTimeoutError)
                    this.dead(sock, 'heartbeat timeout');
            });
        }, hb.intervalMs ?? 20000);
        this.setState({ state: 'connected', reason, requestIdMode: mode, willReconnect: true, attempt: 0 });
        if (this.sock !== sock)
            return;
        for (const p of this.waiting.splice(0))
            this.transmit(sock, p);
        this.pumpOutbox();
        for (const r of this.rooms.values())
            this.catchUp(r);
    }
    // ---- requests ----
    nextId() {
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
    request(eventType, data, options = {}) {
        return new Promise((resolve, reject) => {
            const stopped = this.stoppedError();
            if (stopped) {
                reject(stopped);
                return;
            }
            const p = {
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
                if (i >= 0)
                    this.waiting.splice(i, 1);
                this.settle(p, new RequestTimeoutError(`${eventType}: no answer within ${timeoutMs} ms`));
            }, timeoutMs);
            const sock = this.sock;
            if (sock?.ready)
                this.transmit(sock, p);
            else
                this.waiting.push(p);
        });
    }
    transmit(sock, p) {
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
        if (!this.rawSend(sock, frame))
            return;
        if (p.fence === 'marker')
            this.rawSend(sock, encodeEnvelope(FENCE_EVENT, undefined));
        // A host's event may itself be unknown to the server and answer
        // "invalid event type": a heartbeat ends it instead.
        if (p.fence === 'heartbeat')
            this.rawSend(sock, encodeEnvelope('session.heartbeat', undefined));
    }
    settle(p, result) {
        if (p.settled)
            return;
        p.settled = true;
        if (p.timer)
            clearTimeout(p.timer);
        p.sock?.inflight.delete(p.id);
        if (result instanceof Error)
            p.reject(result);
        else
            p.resolve(result);
    }
    handleFrame(sock, f) {
        const rid = typeof f.request_id === 'string' ? f.request_id : undefined;
        if (typeof f.eventType === 'string') {
            const d = { eventType: f.eventType, data: f.data };
            if (rid !== undefined)
                d.request_id = rid;
            this.collect(sock, d);
            this.handleDispatch(d);
            return;
        }
        if ('error' in f) {
            const e = f.error;
            const err = e && typeof e === 'object' && !Array.isArray(e)
                ? new ServerError(Number(e.code) || 0, e.detail ?? '')
                : new ServerError(0, String(e));
            if (!sock.mode) {
                if (rid === undefined || rid === sock.helloId)
                    this.ready(sock, rid === undefined ? 'fence' : 'echo');
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
                if (f.ok !== true || rid === undefined)
                    return; // a heartbeat's status: its ok frame follows
                sock.unanswered.delete(rid);
                const p = sock.inflight.get(rid);
                if (p)
                    this.settle(p, p.frames);
                return;
            }
            const head = sock.fenceQueue[0];
            if (f.status === 'success' && head && head.fence !== 'marker') {
                this.endFence(sock);
                this.settle(head, head.error ?? head.frames);
            }
        }
    }
    answerError(sock, err, rid, bare) {
        if (sock.mode === 'echo') {
            if (rid !== undefined)
                sock.unanswered.delete(rid);
            const p = rid !== undefined ? sock.inflight.get(rid) : undefined;
            if (p)
                this.settle(p, new ServerError(err.code, err.detail, p.eventType));
            else
                this.emit('error', err);
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
        }
        else if (head.fence === 'marker' && bare && err.detail === 'invalid event type') {
            // The fence's answer (a built-in event never answers this): the
            // request before it is done.
            this.endFence(sock);
            this.settle(head, head.error ?? head.frames);
        }
        else if (!head.error) {
            head.error = own;
        }
        else if (head.fence === 'heartbeat' && !bare) {
            // The heartbeat that ends a host event failed too.
            this.endFence(sock);
            this.settle(head, head.error);
        }
        else {
            this.emit('error', err);
        }
    }
    /** endFence ends the request at the head of the fence queue: its last answer has come. */
    endFence(sock) {
        const head = sock.fenceQueue.shift();
        if (head)
            sock.unanswered.delete(head.id);
    }
    collect(sock, d) {
        if (sock.mode === 'fence') {
            const head = sock.fenceQueue[0];
            if (head && !head.settled && head.collect?.(d))
                head.frames.push(d);
            return;
        }
        if (d.request_id !== undefined) {
            const p = sock.inflight.get(d.request_id);
            if (p) {
                p.frames.push(d);
                return;
            }
        }
        for (const p of sock.inflight.values())
            if (p.collect?.(d))
                p.frames.push(d);
    }
    // ---- dispatches and the delivery rule ----
    handleDispatch(d) {
        const data = d.data;
        switch (d.eventType) {
            case 'message.dispatch':
                this.ingestLive(data);
                break;
            case 'roomlist.dispatch':
                if (this.opts.autoTrackRooms !== false && Array.isArray(data)) {
                    for (const it of data) {
                        if (it && typeof it.id === 'string' && !this.rooms.has(it.id))
                            this.addRoom(it.id, it.last_message?.seq ?? 0);
                    }
                }
                break;
            case 'roomcreate.dispatch': {
                const id = data?.id;
                if (this.opts.autoTrackRooms !== false && typeof id === 'string' && !this.rooms.has(id))
                    this.addRoom(id, 0);
                break;
            }
            case 'roomaddmembers.dispatch': {
                // A room the user was added to: all of its messages are new to the user.
                const id = data?.room?.id;
                if (this.opts.autoTrackRooms !== false && typeof id === 'string' && !this.rooms.has(id))
                    this.addRoom(id, 0);
                break;
            }
            case 'roomexit.dispatch': {
                const id = data?.room?.id;
                if (typeof id === 'string')
                    this.removeRoom(id, 'left');
                break;
            }
            case 'roomdelete.dispatch': {
                const id = data?.room_id;
                if (typeof id === 'string')
                    this.removeRoom(id, 'deleted');
                break;
            }
            case 'chat.resync':
                this.resync(data);
                break;
        }
        this.emit('dispatch', d);
        this.emit(d.eventType, data);
    }
    /**
     * Tracks a room: its messages after afterSeq are handed to 'message' in
     * order, exactly once, and it is caught up after every reconnect. With
     * afterSeq 0 the room's whole history is delivered. Tracking a tracked
     * room changes nothing.
     */
    trackRoom(roomId, afterSeq = 0) {
        if (this.rooms.has(roomId))
            return;
        this.addRoom(roomId, afterSeq);
    }
    /** Stops tracking a room. */
    untrackRoom(roomId) {
        const r = this.rooms.get(roomId);
        if (r?.retry)
            clearTimeout(r.retry);
        this.rooms.delete(roomId);
    }
    /**
     * addRoom tracks a room from lastSeq on and, when connected, catches it up
     * (unless catchUp is false: the room is known to have nothing after lastSeq).
     */
    addRoom(id, lastSeq, catchUp = true) {
        const r = { id, lastSeq, buffer: new Map(), pass: 0, catching: false, again: false };
        this.rooms.set(id, r);
        if (catchUp && this.sock?.ready)
            this.catchUp(r);
        return r;
    }
    removeRoom(id, reason) {
        if (!this.rooms.has(id))
            return;
        this.untrackRoom(id);
        this.emit('roomRemoved', { roomId: id, reason });
    }
    ingestLive(m) {
        if (!m || typeof m !== 'object' || !m.room || typeof m.seq !== 'number')
            return;
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
    deliver(r, m) {
        r.lastSeq = m.seq;
        this.counters.delivered++;
        this.emit('message', m);
    }
    /** catchUp fetches a room's messages after its last seq, then hands the waiting live ones over in order. */
    catchUp(r) {
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
    async runCatchUp(r) {
        try {
            do {
                r.again = false;
                const pass = ++r.pass;
                for (;;) {
                    const after = r.lastSeq;
                    const page = await this.fetchAfter(r.id, after);
                    if (this.rooms.get(r.id) !== r)
                        return;
                    const msgs = page.data?.messages ?? [];
                    for (const m of msgs) {
                        this.matchSend(m);
                        if (m.seq > r.lastSeq) {
                            r.buffer.delete(m.seq);
                            this.deliver(r, m);
                        }
                        else {
                            this.counters.duplicatesDropped++;
                        }
                    }
                    if (!page.has_more || msgs.length === 0)
                        break;
                }
                // Live messages that waited: in order; a gap left before one that
                // arrived before this pass asked is a deleted message.
                const waiting = [...r.buffer.values()].sort((a, b) => a.msg.seq - b.msg.seq);
                for (const w of waiting) {
                    const last = r.lastSeq;
                    if (w.msg.seq <= last) {
                        r.buffer.delete(w.msg.seq);
                        this.counters.duplicatesDropped++;
                    }
                    else if (w.msg.seq === last + 1 || w.pass < pass) {
                        r.buffer.delete(w.msg.seq);
                        this.deliver(r, w.msg);
                    }
                    else {
                        break;
                    }
                }
            } while ((r.again || r.buffer.size > 0) && this.rooms.get(r.id) === r);
        }
        catch (err) {
            if (this.rooms.get(r.id) !== r)
                return;
            if (err instanceof ServerError && (err.code === ErrorCode.PermissionDenied || err.code === ErrorCode.NotFound)) {
                this.removeRoom(r.id, 'not a member');
                return;
            }
            if (err instanceof ConnectionLostError || err instanceof ClientClosedError)
                return; // caught up after the reconnect
            // A timeout or a store outage (4013): try again shortly while connected.
            r.retry = setTimeout(() => {
                r.retry = undefined;
                if (this.sock?.ready && this.rooms.get(r.id) === r)
                    this.catchUp(r);
            }, backoffDelay(1, this.opts.backoff) + 100);
        }
    }
    async fetchAfter(roomId, after) {
        await this.slot();
        try {
            this.counters.catchUpRequests++;
            const matches = (d) => {
                if (d.eventType !== 'roommessages.dispatch')
                    return false;
                const p = d.data;
                return p?.data?.room_id === roomId && p.after_seq === after;
            };
            const frames = await this.request('room.messages', { room_id: roomId, after_seq: after, limit: this.opts.catchUpLimit ?? 100 }, { collect: matches });
            // The answer goes to every device of the user without request_id, so
            // another device's answer to the same question may arrive in this
            // request's window, computed earlier. Merging every answer keeps this
            // request's own, which is as fresh as the request.
            const pages = frames.filter(matches).map((f) => f.data);
            if (pages.length === 0)
                throw new ServerError(0, 'no roommessages.dispatch in the answer to room.messages', 'room.messages');
            if (pages.length === 1)
                return pages[0];
            const bySeq = new Map();
            for (const p of pages)
                for (const m of p.data?.messages ?? [])
                    bySeq.set(m.seq, m);
            return {
                data: { room_id: roomId, messages: [...bySeq.values()].sort((a, b) => a.seq - b.seq) },
                after_seq: after,
                has_more: pages.some((p) => p.has_more === true),
            };
        }
        finally {
            this.release();
        }
    }
    slot() {
        if (this.catchUpSlots > 0) {
            this.catchUpSlots--;
            return Promise.resolve();
        }
        return new Promise((resolve) => this.catchUpQueue.push(resolve));
    }
    release() {
        const next = this.catchUpQueue.shift();
        if (next)
            next();
        else
            this.catchUpSlots++;
    }
    resync(d) {
        if (!d || !Array.isArray(d.rooms))
            return;
        const listed = new Map();
        for (const x of d.rooms)
            if (x && typeof x.room_id === 'string')
                listed.set(x.room_id, Number(x.seq) || 0);
        const res = { reason: String(d.reason ?? ''), caughtUp: [], added: [], removed: [] };
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
            }
            else if (seq > r.lastSeq) {
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
    sendMessage(roomId, content, options = {}) {
        const stopped = this.stoppedError();
        if (stopped)
            return Promise.reject(stopped);
        const max = this.opts.outbox?.max ?? 200;
        if (this.outbox.size >= max)
            return Promise.reject(new OutboxFullError(`the outbox holds ${max} unsent messages`));
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
        const extra = { ...(options.extraFields ?? {}) };
        if (options.parentMessageId)
            extra.parent_message_id = options.parentMessageId;
        if (options.forwardedFromId)
            extra.forwarded_from_id = options.forwardedFromId;
        if (options.media)
            extra.media = options.media;
        const entry = { clientMsgId, roomId, content, createdAt: Date.now() };
        if (Object.keys(extra).length > 0)
            entry.extraFields = extra;
        // The frame with the longest request_id the client makes (r + 10 base-36 digits).
        const bytes = utf8Length(encodeEnvelope('message.send', sendData(entry), 'r0000000000'));
        if (this.frameLimit > 0 && bytes > this.frameLimit) {
            return Promise.reject(new FrameRejectedError(1009, `a frame of ${bytes} bytes is over the server's limit of ${this.frameLimit}`, 'message.send'));
        }
        // A message waits behind a replay in progress, and is paced with it.
        const replay = !this.sock?.ready || [...this.outbox.values()].some((i) => i.replay);
        return new Promise((resolve, reject) => {
            this.outbox.set(clientMsgId, { entry, state: 'queued', replay, ticket: 0, attempts: 0, transmitted: 0, resolve, reject });
            this.saveOutbox();
            this.pumpOutbox();
        });
    }
    newClientMsgId() {
        if (this.opts.newClientMsgId)
            return this.opts.newClientMsgId();
        const c = globalThis.crypto;
        if (c?.randomUUID)
            return 'c-' + c.randomUUID();
        return 'c-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
    }
    saveOutbox() {
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
    pumpOutbox() {
        const sock = this.sock;
        if (!sock?.ready || this.closing)
            return;
        const max = this.opts.maxSendsInFlight ?? 32;
        let inflight = 0;
        let replaysInflight = 0;
        let replays = false;
        const busy = new Set();
        for (const item of this.outbox.values()) {
            if (item.replay)
                replays = true;
            if (item.state !== 'queued')
                busy.add(item.entry.roomId);
            if (item.state !== 'inflight')
                continue;
            inflight++;
            if (item.replay)
                replaysInflight++;
        }
        if (!replays)
            this.pacer.reset();
        for (const item of this.outbox.values()) {
            if (inflight >= max)
                break;
            if (item.state !== 'queued')
                continue;
            if (item.replay) {
                if (busy.has(item.entry.roomId))
                    continue;
                const wait = this.pacer.wait(replaysInflight);
                if (wait > 0)
                    this.armPacer(wait);
                // In order: what comes after waits too.
                if (wait !== 0)
                    break;
                item.ticket = this.pacer.ticket();
                replaysInflight++;
                busy.add(item.entry.roomId);
            }
            else {
                item.ticket = this.pacer.current;
            }
            inflight++;
            this.transmitSend(item);
        }
    }
    armPacer(ms) {
        if (this.pacerTimer)
            return;
        this.pacerTimer = setTimeout(() => {
            this.pacerTimer = undefined;
            this.pumpOutbox();
        }, ms);
    }
    transmitSend(item) {
        const e = item.entry;
        item.state = 'inflight';
        if (item.transmitted > 0)
            this.counters.resends++;
        item.transmitted++;
        this.counters.sendsTransmitted++;
        this.request('message.send', sendData(e)).then(() => {
            if (this.outbox.get(e.clientMsgId) !== item)
                return;
            // Answered without the message: it was stored (one truthful answer
            // per send) but its dispatch did not reach this socket. Catch the
            // room up, then send again if it is still missing (the server
            // answers a known client_msg_id with the stored message).
            const r = this.rooms.get(e.roomId);
            if (r)
                this.catchUp(r);
            item.state = 'waiting';
            item.timer = setTimeout(() => this.requeue(item), backoffDelay(item.attempts++, this.opts.backoff) + 200);
        }, (err) => {
            if (this.outbox.get(e.clientMsgId) !== item)
                return;
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
        });
    }
    requeue(item) {
        item.timer = undefined;
        if (this.outbox.get(item.entry.clientMsgId) !== item || item.state !== 'waiting')
            return;
        item.state = 'queued';
        this.pumpOutbox();
    }
    failSend(item, err) {
        const e = item.entry;
        this.outbox.delete(e.clientMsgId);
        if (item.timer)
            clearTimeout(item.timer);
        this.saveOutbox();
        item.reject?.(err);
        this.emit('sendFailed', { clientMsgId: e.clientMsgId, roomId: e.roomId, error: err });
        this.pumpOutbox();
    }
    matchSend(m) {
        const id = m.client_msg_id;
        if (!id)
            return;
        const item = this.outbox.get(id);
        if (!item || item.entry.roomId !== m.room?.id)
            return;
        this.outbox.delete(id);
        if (item.timer)
            clearTimeout(item.timer);
        if (item.replay)
            this.pacer.succeeded();
        this.saveOutbox();
        item.resolve?.(m);
        this.emit('sent', { clientMsgId: id, message: m });
        this.pumpOutbox();
    }
    // ---- the events of docs/protocol.md#events ----
    /** message.acknowledged: delivery receipts for messages of others (docs/protocol.md#message-acknowledged). */
    async acknowledge(messageIds) {
        await this.request('message.acknowledged', { message_id: messageIds });
    }
    /** message.read: read receipts (docs/protocol.md#message-read). */
    async markRead(messageIds) {
        await this.request('message.read', { message_id: messageIds });
    }
    /** message.react add: resolves with the reaction.dispatch (docs/protocol.md#message-react). */
    async react(messageId, reaction) {
        const frames = await this.request('message.react', { type: 'add', message_id: messageId, reaction_content: reaction }, { collect: reactionOf(messageId) });
        return frames.find(reactionOf(messageId))?.data;
    }
    /** message.react remove: resolves with the reaction.dispatch (status "failed" when there was none). */
    async removeReaction(messageId) {
        const frames = await this.request('message.react', { type: 'remove', message_id: messageId }, { collect: reactionOf(messageId) });
        return frames.find(reactionOf(messageId))?.data;
    }
    /** message.typing (docs/protocol.md#message-typing); send it at most every 2-3 s while the user types. */
    async typing(roomId) {
        await this.request('message.typing', { room_id: roomId });
    }
    /** message.modify update: edits one of the user's messages (docs/protocol.md#message-modify). */
    async editMessage(messageId, content) {
        const is = (d) => d.eventType === 'messagemodification.dispatch' &&
            d.data?.action === 'update' &&
            d.data.message?.id === messageId;
        const frames = await this.request('message.modify', { action: 'update', message_id: messageId, extra_fields: { content } }, { collect: is });
        return frames.find(is)?.data?.message;
    }
    /** message.modify delete: deletes messages of the user's, all of one room. */
    async deleteMessages(messageIds) {
        await this.request('message.modify', { action: 'delete', message_id: messageIds });
    }
    /** room.create: resolves with the new room's detail (docs/protocol.md#room-create). */
    async createRoom(input) {
        // roomcreate.dispatch goes to the room, without request_id: a room
        // someone else created with this user may arrive in the same window, so
        // the answer is the last one that fits the input.
        // (Ids of users that do not exist are dropped by the server, so the
        // best fit wins, not only a perfect one.)
        const is = (d) => d.eventType === 'roomcreate.dispatch' && fitsCreate(d.data, input) >= 0;
        const frames = await this.request('room.create', input, { collect: is });
        let f;
        for (const x of frames) {
            if (is(x) && (!f || fitsCreate(x.data, input) >= fitsCreate(f.data, input)))
                f = x;
        }
        if (!f)
            throw new ServerError(0, 'no roomcreate.dispatch in the answer', 'room.create');
        return f.data;
    }
    /** room.list: every room of the user, most recently active first (docs/protocol.md#room-list). */
    async listRooms() {
        const is = (d) => d.eventType === 'roomlist.dispatch';
        const frames = await this.request('room.list', {}, { collect: is });
        const f = frames.find(is);
        if (!f)
            throw new ServerError(0, 'no roomlist.dispatch in the answer', 'room.list');
        return f.data;
    }
    /** room.info: a room's detail (docs/protocol.md#room-info). */
    async roomInfo(roomId) {
        const is = (d) => d.eventType === 'roominfo.dispatch' && d.data?.id === roomId;
        const frames = await this.request('room.info', { room_id: roomId }, { collect: is });
        const f = frames.find(is);
        if (!f)
            throw new ServerError(0, 'no roominfo.dispatch in the answer', 'room.info');
        return f.data;
    }
    /**
     * room.messages: every message, a page ({paginate}), or by seq
     * ({after_seq} / {before_seq}, with limit) (docs/protocol.md#room-messages).
     * The answer is returned as it is; tracked rooms are caught up by the
     * client itself, so this is for history and scrolling back.
     */
    async roomMessages(roomId, query = {}) {
        const q = query;
        const is = (d) => {
            if (d.eventType !== 'roommessages.dispatch')
                return false;
            const p = d.data;
            if (p?.data?.room_id !== roomId)
                return false;
            if ('after_seq' in q)
                return p.after_seq === q.after_seq;
            if ('before_seq' in q)
                return p.before_seq === q.before_seq;
            return p.after_seq === undefined && p.before_seq === undefined;
        };
        const frames = await this.request('room.messages', { room_id: roomId, ...q }, { collect: is });
        const f = frames.find(is);
        if (!f)
            throw new ServerError(0, 'no roommessages.dispatch in the answer', 'room.messages');
        return f.data;
    }
    /** room.join: joins a public channel (docs/protocol.md#room-join). */
    async joinRoom(roomId) {
        await this.request('room.join', { room_id: roomId });
    }
    /** room.leave: leaves a group or channel (docs/protocol.md#room-leave). */
    async leaveRoom(roomId) {
        await this.request('room.leave', { room_id: roomId });
    }
    /** room.add_members (docs/protocol.md#room-add-members). */
    async addMembers(roomId, members) {
        await this.request('room.add_members', { room_id: roomId, members });
    }
    /** room.remove_members (docs/protocol.md#room-remove-members). */
    async removeMembers(roomId, members) {
        await this.request('room.remove_members', { room_id: roomId, members });
    }
    /**
     * room.modify (docs/protocol.md#room-modify): update takes the fields to
     * change; the role and permission actions take {users, permission?}.
     */
    async modifyRoom(roomId, action, data) {
        const body = { room_id: roomId, action };
        if (data !== undefined)
            body.data = data;
        await this.request('room.modify', body);
    }
    /** room.modify delete. */
    deleteRoom(roomId) {
        return this.modifyRoom(roomId, 'delete');
    }
    /** session.heartbeat; the client sends one by itself every heartbeat interval. */
    async heartbeat() {
        await this.request('session.heartbeat');
    }
    /**
     * user.search: users whose username or name matches query, one page
     * (limit). Needs a server that has the event.
     */
    async searchUsers(query, limit = 20) {
        const is = (d) => d.eventType === 'usersearch.dispatch';
        const frames = await this.request('user.search', { query, limit }, { collect: is });
        const f = frames.find(is);
        return (f?.data?.users ?? []);
    }
    /**
     * presence.query (docs/protocol.md#presence-query): the announced
     * presence of a room's members (a room id) or of the given users who
     * share a room with this user (at most 100 ids), ordered by user id.
     * Follow 'presence.dispatch' afterwards. Needs a server that has the
     * event.
     */
    async queryPresence(of) {
        const is = (d) => d.eventType === 'presencequery.dispatch';
        const data = Array.isArray(of) ? { user_ids: of } : { room_id: of };
        const frames = await this.request('presence.query', data, { collect: is });
        const f = frames.find(is);
        return (f?.data?.users ?? []);
    }
}
/**
 * fitsCreate scores a created room as the answer to a room.create input:
 * -1 when it cannot be (another type or name, a one-to-one chat with
 * someone else), else how many of the asked members it has.
 */
function fitsCreate(d, input) {
    if (!d || d.type !== input.type)
        return -1;
    const extra = (input.extra_fields ?? {});
    const name = typeof extra.name === 'string' ? extra.name : 'name' in input ? input.name : undefined;
    if (name !== undefined && 'name' in d && d.name !== name)
        return -1;
    const asked = ('participants' in input ? input.participants : 'subscribers' in input ? input.subscribers : undefined) ?? [];
    const members = d.type === 'Channel' ? d.subscribers : d.participants;
    const have = new Set((members ?? []).map((u) => String(u.id)));
    const found = asked.filter((id) => have.has(String(id))).length;
    if (d.type === 'OneToOneChat' && found !== asked.length)
        return -1;
    return found;
}
/** sendData is the data of the message.send that stores an outbox entry. */
function sendData(e) {
    const data = { room_id: e.roomId, content: e.content, client_msg_id: e.clientMsgId };
    if (e.extraFields)
        data.extra_fields = e.extraFields;
    return data;
}
function reactionOf(messageId) {
    return (d) => d.eventType === 'reaction.dispatch' && d.data?.message?.id === messageId;
}
function asError(err, what) {
    if (err instanceof Error)
        return err;
    return new Error(`${what}: ${String(err)}`);
}
