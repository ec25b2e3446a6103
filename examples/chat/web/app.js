// chatmux example web page, built on the official client @chatmux/client.
//
// The client is loaded from ./chatmux-client/: the ES modules that
// `npm run bundle` in clients/js makes from its sources (committed, embedded
// in the server). The client keeps the connection: it reconnects with
// backoff, sends session.heartbeat and notices a dead connection, catches
// every room up by seq after a reconnect or a gap, drops duplicates, and
// keeps unsent messages in an outbox that goes out after a reconnect with
// the same client_msg_id (docs/protocol.md#delivery). This file is the user
// interface: it renders what the client hands over and turns clicks into
// the client's calls.
//
// A classic script (no build step here): it imports the client module
// dynamically.
'use strict';

(async () => {
  // ------------------------------------------------------------------
  // Small DOM helpers
  // ------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  // h('div.cls#id', {attrs}, ...children): a tiny hyperscript. Children
  // that are null, undefined or false are skipped.
  function h(spec, attrs, ...children) {
    const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
    const node = document.createElement((m && m[1]) || 'div');
    if (m && m[2]) {
      for (const part of m[2].match(/[.#][\w-]+/g)) {
        if (part[0] === '.') node.classList.add(part.slice(1));
        else node.id = part.slice(1);
      }
    }
    if (attrs !== null && attrs !== undefined && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
      children.unshift(attrs);
      attrs = null;
    }
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k === 'text') node.textContent = v;
      else if (k === 'value') node.value = v;
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  // fill replaces a node's children, skipping the empty ones (replaceChildren
  // would show null as the text "null").
  function fill(node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  }

  let lib;
  try {
    lib = await import('./chatmux-client/index.js');
  } catch (err) {
    document.body.replaceChildren(h('p.fatal', 'The chat client failed to load: ' + err.message));
    return;
  }
  const { ChatClient, ServerError, ClientClosedError, ConnectionLostError, RequestTimeoutError, FrameRejectedError, WebStorageOutbox, formatDetail } = lib;

  // ------------------------------------------------------------------
  // State
  // ------------------------------------------------------------------
  const EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🎉'];
  const TYPING_SEND_MS = 2500;
  const TYPING_SHOW_MS = 4000;
  const PAGE_SIZE = 50;
  const SEARCH_LIMIT = 8;

  const state = {
    cfg: { auth: 'dev', path: '/messaging/' },
    cred: null, // {user} or {token}
    me: null, // {id, username, ...}
    client: null,
    conn: { state: 'idle', everConnected: false, retryAt: 0, paced: false },
    stateLog: [], // every connection state change, for the browser test and debugging
    rooms: new Map(), // room id -> RoomListItem (kept up to date), plus listedSeq
    details: new Map(), // room id -> RoomDetail
    messages: new Map(), // room id -> Map(message id -> Message)
    systemLines: new Map(), // room id -> [{id, text, created_at, system: true}]
    loaded: new Set(), // rooms whose first page arrived
    older: new Map(), // room id -> {pending, hasMore, page}
    current: null,
    compose: null, // {mode: 'reply'|'edit', message}
    typing: new Map(), // room id -> Map(username -> timer)
    presence: new Map(), // user id -> {online, last_seen}: as announced (docs/protocol.md#presence)
    lastTypingSent: 0,
    pending: new Map(), // client_msg_id -> {roomId, text, parent, view}: handed to the client, not stored yet
    drafts: new Map(), // room id -> text in the message box while another room is open
    sendErrors: new Map(), // room id -> why the last message was not sent
    acked: new Set(),
    readSent: new Set(),
    readQueue: new Set(),
    readTimer: null,
    search: '',
    detailsOpen: false,
  };

  // ------------------------------------------------------------------
  // Formatting
  // ------------------------------------------------------------------
  const COLORS = ['#ef4444', '#f97316', '#f59e0b', '#10b981', '#14b8a6', '#0ea5e9', '#6366f1', '#8b5cf6', '#d946ef', '#ec4899'];
  function colorFor(key) {
    let x = 0;
    for (const ch of String(key)) x = (x * 31 + ch.codePointAt(0)) >>> 0;
    return COLORS[x % COLORS.length];
  }
  function initials(name) {
    const parts = String(name || '?').trim().split(/[\s._-]+/).filter(Boolean);
    if (parts.length >= 2) return (Array.from(parts[0])[0] + Array.from(parts[1])[0]);
    return Array.from(parts[0] || '?')[0];
  }
  function avatar(name, key, cls = '') {
    const a = h('div.avatar' + cls, initials(name));
    a.style.background = colorFor(key === undefined ? name : key);
    return a;
  }
  // A message's sender: null for a system message
  // (docs/protocol.md#system-messages); a deleted user keeps only an id
  // (docs/protocol.md#deleted-users).
  function userName(u) {
    if (!u) return 'System';
    if (u.is_deleted) return 'deleted user';
    const full = [u.first_name, u.last_name].filter(Boolean).join(' ');
    return full || u.username;
  }
  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }
  function hhmm(d) {
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
  function shortTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    const now = new Date();
    if (sameDay(d, now)) return hhmm(d);
    const y = new Date(now); y.setDate(now.getDate() - 1);
    if (sameDay(d, y)) return 'Yesterday';
    if (now - d < 6 * 864e5) return d.toLocaleDateString([], { weekday: 'short' });
    return d.toLocaleDateString([], { day: 'numeric', month: 'short' });
  }
  function dayLabel(d) {
    const now = new Date();
    if (sameDay(d, now)) return 'Today';
    const y = new Date(now); y.setDate(now.getDate() - 1);
    if (sameDay(d, y)) return 'Yesterday';
    return d.toLocaleDateString([], { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
  }

  // Message content is HTML sanitised by the server (a small allow-list,
  // docs/protocol.md#content). The page renders it through its own
  // allow-list too: tags b, i, strong, em, a, span, p, ul, ol, li, br; on
  // <a> only an http(s)/mailto href.
  const ALLOWED = new Set(['B', 'I', 'STRONG', 'EM', 'A', 'SPAN', 'P', 'UL', 'OL', 'LI', 'BR']);
  function safeFragment(html) {
    const tpl = document.createElement('template');
    tpl.innerHTML = String(html || '');
    const walk = (parent) => {
      for (const node of Array.from(parent.childNodes)) {
        if (node.nodeType === Node.TEXT_NODE) continue;
        if (node.nodeType !== Node.ELEMENT_NODE || !ALLOWED.has(node.tagName)) {
          if (node.nodeType === Node.ELEMENT_NODE && !['SCRIPT', 'STYLE', 'TEMPLATE'].includes(node.tagName)) {
            walk(node);
            node.replaceWith(...node.childNodes);
          } else {
            node.remove();
          }
          continue;
        }
        const href = node.tagName === 'A' ? node.getAttribute('href') : null;
        for (const attr of Array.from(node.attributes)) node.removeAttribute(attr.name);
        if (href && /^(https?:|mailto:)/i.test(href.trim())) {
          node.setAttribute('href', href.trim());
          node.setAttribute('target', '_blank');
          node.setAttribute('rel', 'noopener noreferrer');
        }
        walk(node);
      }
    };
    walk(tpl.content);
    return tpl.content;
  }
  function plainText(html) {
    const tpl = document.createElement('template');
    tpl.innerHTML = String(html || '').replace(/<br\s*\/?>/gi, '\n');
    return tpl.content.textContent;
  }
  // What the user typed becomes HTML that shows exactly that text.
  function textToHTML(text) {
    return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\n/g, '<br>');
  }

  // ------------------------------------------------------------------
  // Toasts and errors
  // ------------------------------------------------------------------
  function toast(text, opts = {}) {
    const node = h('div.toast' + (opts.error ? '.error' : ''), { role: opts.error ? 'alert' : 'status' },
      h('div', h('div.toast-text', text), opts.code ? h('div.toast-code', 'error ' + opts.code) : null),
      h('button', { 'aria-label': 'Dismiss', onclick: () => node.remove() }, '✕'));
    $('toasts').append(node);
    setTimeout(() => node.remove(), opts.error ? 6000 : 4000);
  }
  // describe turns a rejected request into one line for a person.
  function describe(err) {
    if (err instanceof ServerError) {
      if (err.code === 0 && err.detail === 'invalid event type') return 'The server does not know that action.';
      if (err.code === 4029) return 'You are sending too fast: wait a moment and try again.';
      const d = err.detail;
      if (d && typeof d === 'object' && !Array.isArray(d)) {
        // {"content": ["Ensure this field has no more than 5000 characters."]}:
        // the message box is the content; other fields are named.
        return Object.entries(d).map(([k, v]) => (k === 'content' ? '' : k + ': ') + [].concat(v).join(' ')).join('; ');
      }
      return formatDetail(d) || 'Something went wrong.';
    }
    if (err instanceof FrameRejectedError) return 'The message is too large to send.';
    if (err instanceof ConnectionLostError || err instanceof RequestTimeoutError) return 'Not connected: try again in a moment.';
    if (err instanceof ClientClosedError) return 'Signed out.';
    return (err && err.message) || 'Something went wrong.';
  }
  // report shows the failure of something the user asked for.
  function report(err) {
    if (err instanceof ClientClosedError) return;
    toast(describe(err), { error: true, code: err instanceof ServerError && err.code ? err.code : undefined });
  }
  // quiet is for requests the page makes by itself (receipts, typing,
  // refreshes): a lost connection is not news, the client catches up.
  function quiet(err) {
    if (err instanceof ServerError) console.warn('chat:', err.message);
  }

  // ------------------------------------------------------------------
  // Connection
  // ------------------------------------------------------------------
  // The client's WebSocket, kept so that the browser test (and the console)
  // can drop the connection: window.chatmux.dropConnection().
  let liveSocket = null;
  class TrackedWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      liveSocket = this;
    }
  }

  function startClient() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const jwt = !!state.cred.token;
    const cred = state.cred;
    const client = new ChatClient({
      url: `${proto}//${location.host}${state.cfg.path}`,
      // Called before every attempt: a host with expiring tokens would
      // fetch a fresh one here. Development sign-in passes ?user=<name>.
      token: () => (state.cred === cred ? cred.token || cred.user : null),
      tokenParam: jwt ? 'token' : 'user',
      WebSocket: TrackedWebSocket,
      // Unsent messages survive a reload of the tab.
      outbox: { storage: new WebStorageOutbox(sessionStorage, `chatmux.outbox.${state.me.id}`) },
    });
    state.client = client;
    const on = (name, fn) => client.on(name, (d) => { if (state.client === client) fn(d); });
    on('state', onState);
    on('signedOut', () => signOut('Authentication failed: sign in again.'));
    on('message', onMessage);
    on('sent', ({ clientMsgId, message }) => onSent(clientMsgId, message));
    on('sendFailed', ({ clientMsgId, roomId, error }) => onSendFailed(clientMsgId, roomId, error));
    // Messages sent again after a reconnect that the server asks to slow
    // down (4029) stay in the outbox and go out at the rate it allows.
    on('sendDelayed', ({ error }) => {
      if (error instanceof ServerError && error.code === 4029 && !state.conn.paced) { state.conn.paced = true; renderConnection(); }
    });
    on('roomRemoved', ({ roomId }) => { if (state.rooms.has(roomId) || state.details.has(roomId)) { dropRoom(roomId); renderRoomList(); } });
    // After a broker outage: the rooms, and the open room's presence
    // (presence dispatches published during the outage are lost).
    on('resync', () => { refreshRooms(); if (state.current) queryPresence(state.current); });
    on('error', (err) => console.warn('chat:', err && err.message));
    on('chat.notifications', onNotifications);
    on('roomlist.dispatch', onRoomList);
    on('roominfo.dispatch', setDetail);
    on('roomupdate.dispatch', setDetail);
    on('roomcreate.dispatch', setDetail);
    on('messagedelivered.dispatch', (d) => [].concat(d || []).forEach(updateMessage));
    on('readreceipt.dispatch', (d) => [].concat(d || []).forEach(updateMessage));
    on('reaction.dispatch', (d) => { if (d && d.message) updateMessage(d.message); });
    on('messagetyping.dispatch', onTyping);
    on('messagemodification.dispatch', onModification);
    on('roomaddmembers.dispatch', onMembersAdded);
    on('roomremovemembers.dispatch', onMembersRemoved);
    on('roomexit.dispatch', onExit);
    on('roomdelete.dispatch', onRoomDelete);
    on('presence.dispatch', onPresence);
    client.connect().then(() => {
      // Messages a previous page of this tab left unsent: the client sends
      // them now; show them as sending.
      for (const e of client.pendingMessages) addPending(e.clientMsgId, e.roomId, plainText(e.content), null);
      if (state.current) renderMessages();
    });
  }

  function onState(s) {
    state.conn.state = s.state;
    state.stateLog.push({ state: s.state, reason: s.reason, code: s.code, at: Date.now() });
    if (state.stateLog.length > 200) state.stateLog.shift();
    if (s.state === 'connected') {
      state.conn.everConnected = true;
      onConnected();
    }
    state.conn.retryAt = s.state === 'disconnected' && s.willReconnect ? Date.now() + (s.delayMs || 0) : 0;
    // A normal closure (1000) ends the client's session: this page, which
    // never closes it itself while signed in, starts a new one after a
    // pause; messages waiting in the outbox go out then.
    if (s.state === 'disconnected' && !s.willReconnect && s.code === 1000 && state.client) {
      const client = state.client;
      state.conn.retryAt = Date.now() + 5000;
      setTimeout(() => { if (state.client === client) client.connect().catch(() => {}); }, 5000);
    }
    renderConnection();
  }
  // After every (re)connection: the rooms' latest state. The client itself
  // catches every room up on messages; unsent messages go out by themselves.
  function onConnected() {
    refreshRooms();
    const id = state.current;
    if (id) {
      queryPresence(id);
      state.client.roomInfo(id).catch(quiet);
      if (!state.loaded.has(id)) loadFirstPage(id);
    }
  }
  function refreshRooms() {
    if (state.client) state.client.listRooms().catch(quiet);
  }

  // The connection as the user sees it: the dot and line under the name,
  // and a banner while the page is cut off after having been connected.
  function renderConnection() {
    const s = state.conn.state;
    let kind = '';
    let text = 'Connecting…';
    const waiting = state.pending.size;
    if (!waiting) state.conn.paced = false;
    if (s === 'connected') {
      kind = 'online';
      text = state.conn.paced ? `Online · sending ${waiting} queued message${waiting === 1 ? '' : 's'}` : 'Online';
    } else if (s === 'disconnected') {
      kind = 'offline';
      const left = Math.ceil((state.conn.retryAt - Date.now()) / 1000);
      text = state.conn.retryAt ? (left > 0 ? `Offline: retrying in ${left} s` : 'Offline: retrying…') : 'Offline';
    } else if (state.conn.everConnected) {
      text = 'Reconnecting…';
    }
    $('status-dot').className = 'status-dot ' + kind;
    $('status-text').textContent = text;
    const banner = $('conn-banner');
    const cutOff = state.conn.everConnected && s !== 'connected' && !!state.me;
    banner.hidden = !cutOff;
    if (cutOff) {
      $('conn-banner-text').textContent = 'Reconnecting…';
      $('conn-banner-sub').textContent = (s === 'disconnected' ? text.replace(/^Offline: /, '') : 'connecting') +
        (waiting ? ` · ${waiting} message${waiting === 1 ? '' : 's'} waiting to be sent` : '');
    }
  }
  setInterval(() => { if (state.conn.state === 'disconnected') renderConnection(); }, 1000);

  // ------------------------------------------------------------------
  // Incoming: rooms
  // ------------------------------------------------------------------
  function onNotifications(byRoom) {
    // Pending notifications at connect: acknowledge their messages.
    const msgs = [];
    for (const list of Object.values(byRoom || {})) {
      for (const n of list || []) if (n && n.message) msgs.push(n.message);
    }
    acknowledge(msgs);
  }

  function onRoomList(items) {
    const seen = new Set();
    for (const item of items || []) {
      seen.add(item.id);
      const old = state.rooms.get(item.id);
      // unread_count counts every message up to last_message: only newer
      // messages add to it (listedSeq).
      const listedSeq = item.last_message ? item.last_message.seq || 0 : 0;
      state.rooms.set(item.id, Object.assign({}, old || {}, item, { listedSeq }));
      if (item.last_message) acknowledge([item.last_message]);
    }
    for (const id of Array.from(state.rooms.keys())) if (!seen.has(id)) dropRoom(id);
    if (state.current && !state.rooms.has(state.current)) closeRoom();
    renderRoomList();
    if (state.current) renderHeader();
  }

  function listItemFromDetail(d) {
    const item = {
      type: d.type, id: d.id, created_at: d.created_at, updated_at: d.updated_at,
      name: d.name, description: d.description, creator: d.creator, is_public: d.is_public,
      last_message: null, unread_count: 0, listedSeq: 0,
    };
    if (d.type === 'OneToOneChat') item.peer = (d.participants || []).find((u) => !isMe(u)) || null;
    return item;
  }
  function setDetail(d) {
    if (!d || !d.id) return;
    if (!memberList(d).some(isMe) && !state.rooms.has(d.id)) return;
    state.details.set(d.id, d);
    const room = state.rooms.get(d.id);
    if (room) {
      for (const k of ['name', 'description', 'is_public', 'avatar', 'group_locked', 'updated_at']) {
        if (k in d) room[k] = d[k];
      }
    } else {
      state.rooms.set(d.id, listItemFromDetail(d));
    }
    renderRoomList();
    if (d.id === state.current) { renderHeader(); renderComposerState(); renderDetails(); }
  }
  function onMembersAdded(d) {
    if (!d || !d.room) return;
    setDetail(d.room);
    const names = (d.new_members || []).join(', ');
    if (names) {
      addSystemLine(d.room.id, d.added_by === 'self' ? `${names} joined` : `${d.added_by} added ${names}`);
    }
  }
  function onMembersRemoved(d) {
    if (!d || !d.room) return;
    setDetail(d.room);
    const names = (d.removed_members || []).join(', ');
    if (names) {
      addSystemLine(d.room.id, d.removed_by === 'self' ? `${names} left` : `${d.removed_by} removed ${names}`);
    }
  }
  function onExit(d) {
    if (!d || !d.room) return;
    if (d.message) toast(d.message);
    dropRoom(d.room.id);
    renderRoomList();
  }
  function onRoomDelete(d) {
    if (!d || !d.room_id) return;
    const room = state.rooms.get(d.room_id);
    if (room) toast(`“${roomTitle(room)}” was deleted.`);
    dropRoom(d.room_id);
    renderRoomList();
  }
  function dropRoom(id) {
    state.rooms.delete(id);
    state.details.delete(id);
    state.messages.delete(id);
    state.loaded.delete(id);
    state.older.delete(id);
    state.systemLines.delete(id);
    state.drafts.delete(id);
    state.sendErrors.delete(id);
    if (state.current === id) closeRoom();
  }
  function addSystemLine(roomId, text) {
    let list = state.systemLines.get(roomId);
    if (!list) { list = []; state.systemLines.set(roomId, list); }
    list.push({ id: 'sys-' + Math.random().toString(36).slice(2), system: true, text, created_at: new Date().toISOString() });
    if (roomId === state.current) renderMessages();
  }

  // ------------------------------------------------------------------
  // Incoming: messages
  // ------------------------------------------------------------------
  function roomMessages(id) {
    let m = state.messages.get(id);
    if (!m) { m = new Map(); state.messages.set(id, m); }
    return m;
  }

  // Every message of every room, exactly once and in seq order: live,
  // caught up after a reconnect, or filling a gap (the client's 'message').
  function onMessage(m) {
    if (!m || !m.room) return;
    const id = m.room.id;
    if (m.client_msg_id) dropPending(m.client_msg_id);
    const map = roomMessages(id);
    const isNew = !map.has(m.id);
    map.set(m.id, m);
    const room = state.rooms.get(id);
    if (room) {
      if (!room.last_message || (m.seq || 0) >= (room.last_message.seq || 0)) room.last_message = m;
      const counted = (m.seq || 0) <= (room.listedSeq || 0);
      if (isNew && !counted && !isMine(m) && !(id === state.current && !document.hidden)) {
        room.unread_count = (room.unread_count || 0) + 1;
      }
      room.listedSeq = Math.max(room.listedSeq || 0, m.seq || 0);
    } else {
      refreshRooms();
    }
    if (!isMine(m)) {
      acknowledge([m]);
      clearTyping(id, m.sender && m.sender.username);
    }
    renderRoomList();
    if (id === state.current) renderMessages({ stickToBottom: isMine(m) });
  }

  function updateMessage(m) {
    if (!m || !m.room) return;
    const map = state.messages.get(m.room.id);
    if (map && map.has(m.id)) map.set(m.id, m);
    const room = state.rooms.get(m.room.id);
    if (room && room.last_message && room.last_message.id === m.id) room.last_message = m;
    if (m.room.id === state.current) renderMessages();
  }

  function onModification(d) {
    if (!d) return;
    if (d.action === 'update' && d.message) {
      updateMessage(d.message);
      renderRoomList();
      return;
    }
    if (d.action === 'delete') {
      const ids = new Set([].concat(d.message_ids || []));
      let touched = false;
      for (const [rid, map] of state.messages) {
        for (const mid of ids) if (map.delete(mid)) touched = rid;
      }
      for (const room of state.rooms.values()) {
        if (room.last_message && ids.has(room.last_message.id)) { refreshRooms(); break; }
      }
      if (state.compose && state.compose.message && ids.has(state.compose.message.id)) setCompose(null);
      if (touched && touched === state.current) renderMessages();
    }
  }

  function onTyping(d) {
    if (!d || !d.username || (state.me && d.username === state.me.username)) return;
    const rid = d.room_id || state.current; // older servers do not say where
    if (!rid) return;
    let m = state.typing.get(rid);
    if (!m) { m = new Map(); state.typing.set(rid, m); }
    clearTimeout(m.get(d.username));
    m.set(d.username, setTimeout(() => clearTyping(rid, d.username), TYPING_SHOW_MS));
    renderTyping();
  }
  function clearTyping(rid, username) {
    const m = state.typing.get(rid);
    if (!m || !m.has(username)) return;
    clearTimeout(m.get(username));
    m.delete(username);
    renderTyping();
  }

  // History pages: the newest page when a room is first opened, then older
  // ones by seq on demand. The client delivers everything newer by itself.
  function applyPage(id, page, kind) {
    const list = (page && page.data && page.data.messages) || [];
    const map = roomMessages(id);
    for (const m of list) if (!map.has(m.id)) map.set(m.id, m);
    const older = state.older.get(id) || {};
    if (kind === 'first') {
      older.hasMore = !!page.has_next;
      older.page = page.page || 1;
    } else {
      older.hasMore = 'has_more' in page ? !!page.has_more : list.length >= PAGE_SIZE;
    }
    older.pending = false;
    state.older.set(id, older);
    state.loaded.add(id);
    acknowledge(list);
    if (id === state.current) renderMessages({ keepPosition: kind === 'older', stickToBottom: kind === 'first' });
  }
  function loadFirstPage(id) {
    const o = { pending: true, hasMore: false };
    state.older.set(id, o);
    state.client.roomMessages(id, { paginate: { page: 1, size: PAGE_SIZE } })
      .then((page) => { if (state.rooms.has(id)) applyPage(id, page, 'first'); })
      .catch((err) => { o.pending = false; quiet(err); });
  }
  function requestOlder(id) {
    const o = state.older.get(id) || {};
    if (o.pending) return;
    let oldest = null;
    for (const m of (state.messages.get(id) || new Map()).values()) {
      if (typeof m.seq === 'number' && (oldest === null || m.seq < oldest)) oldest = m.seq;
    }
    o.pending = true;
    state.older.set(id, o);
    renderMessages({ keepPosition: true });
    const q = oldest !== null ? { before_seq: oldest, limit: PAGE_SIZE } : { paginate: { page: (o.page || 1) + 1, size: PAGE_SIZE } };
    state.client.roomMessages(id, q)
      .then((page) => applyPage(id, page, oldest !== null ? 'older' : 'first'))
      .catch((err) => { o.pending = false; report(err); if (id === state.current) renderMessages(); });
  }

  // ------------------------------------------------------------------
  // Sending
  // ------------------------------------------------------------------
  function newClientID() {
    if (crypto.randomUUID) return 'c-' + crypto.randomUUID();
    return 'c-' + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function addPending(cid, roomId, text, parent, forwarded) {
    if (state.pending.has(cid)) return;
    const view = {
      id: 'pending-' + cid, pending: true, room: { id: roomId }, sender: state.me, content: textToHTML(text),
      created_at: new Date().toISOString(), reactions: [], read_receipts: [], delivered_to: [],
      parent_message: parent || null, is_forwarded: !!forwarded,
    };
    state.pending.set(cid, { roomId, text, parent, view });
  }
  function dropPending(cid) {
    const p = state.pending.get(cid);
    if (!p) return null;
    state.pending.delete(cid);
    if (p.roomId === state.current) renderMessages();
    renderConnection();
    return p;
  }
  // sendText hands a message to the client: it shows as sending (🕓) until
  // its own message.dispatch comes back; offline, it waits in the outbox.
  function sendText(roomId, text, opts = {}) {
    const cid = newClientID();
    addPending(cid, roomId, text, opts.parent, opts.forwardedFromId);
    state.sendErrors.delete(roomId);
    const options = { clientMsgId: cid };
    if (opts.parent) options.parentMessageId = opts.parent.id;
    if (opts.forwardedFromId) options.forwardedFromId = opts.forwardedFromId;
    state.client.sendMessage(roomId, textToHTML(text), options).catch((err) => {
      // A refusal of the server arrives as 'sendFailed' first (which drops
      // the pending bubble); a full outbox or a message too large to send
      // only here.
      if (!(err instanceof ClientClosedError) && state.pending.has(cid)) onSendFailed(cid, roomId, err);
    });
    if (roomId === state.current) { renderMessages({ stickToBottom: true }); renderSendError(); }
    renderConnection();
  }
  function onSent(cid) {
    dropPending(cid);
  }
  // A message the server refused (too long, rate limited, no permission):
  // nothing was stored. Its text goes back into the room's message box, with
  // the reason above it.
  function onSendFailed(cid, roomId, err) {
    const p = dropPending(cid);
    const why = `Not sent: ${describe(err)}`;
    state.sendErrors.set(roomId, why);
    if (p && p.text) restoreText(roomId, p.text, p.parent);
    if (roomId === state.current) renderSendError();
    else toast(why, { error: true, code: err instanceof ServerError ? err.code : undefined });
  }
  function restoreText(roomId, text, parent) {
    if (roomId === state.current) {
      const input = $('composer-input');
      const now = input.value;
      if (!now.includes(text)) input.value = now.trim() ? text + '\n' + now : text;
      if (parent && !state.compose) setCompose({ mode: 'reply', message: parent });
      autoGrow();
      input.focus();
    } else {
      const draft = state.drafts.get(roomId) || '';
      if (!draft.includes(text)) state.drafts.set(roomId, draft.trim() ? text + '\n' + draft : text);
    }
  }
  function renderSendError() {
    const box = $('composer-error');
    const why = state.current && state.sendErrors.get(state.current);
    box.hidden = !why;
    $('composer-error-text').textContent = why || '';
  }

  function submitComposer() {
    const input = $('composer-input');
    const text = input.value.replace(/\s+$/, '');
    if (!state.current || !text.trim()) return;
    const roomId = state.current;
    const c = state.compose;
    if (c && c.mode === 'edit') {
      const message = c.message;
      state.client.editMessage(message.id, textToHTML(text)).catch((err) => {
        report(err);
        // Keep the text: back into the box, still editing.
        if (state.current === roomId && !input.value.trim()) {
          setCompose({ mode: 'edit', message });
          input.value = text;
          autoGrow();
        }
      });
    } else {
      sendText(roomId, text, { parent: c && c.mode === 'reply' ? c.message : null });
    }
    input.value = '';
    state.lastTypingSent = 0; // the next keystroke announces typing again
    autoGrow();
    setCompose(null);
  }

  // ------------------------------------------------------------------
  // Receipts
  // ------------------------------------------------------------------
  function isMe(u) { return !!(u && state.me && Number(u.id) === Number(state.me.id)); }
  function isMine(m) { return isMe(m && m.sender); }
  function readByMe(m) { return (m.read_receipts || []).some((r) => isMe(r.reader)); }

  // Delivery receipts: every message from someone else that reached us.
  function acknowledge(msgs) {
    const ids = [];
    for (const m of msgs || []) {
      if (!m || !m.id || isMine(m) || m.is_deleted || state.acked.has(m.id)) continue;
      state.acked.add(m.id);
      if ((m.delivered_to || []).includes(state.me.username)) continue;
      ids.push(m.id);
    }
    if (ids.length && state.client) {
      state.client.acknowledge(ids).catch((err) => { ids.forEach((id) => state.acked.delete(id)); quiet(err); });
    }
  }

  // Read receipts: messages from others that are on screen in the open room
  // while the page is visible. An IntersectionObserver watches their bubbles.
  const readObserver = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (e.isIntersecting) {
        state.readQueue.add(e.target.dataset.id);
        readObserver.unobserve(e.target);
      }
    }
    scheduleRead();
  }, { threshold: 0.6 });
  function scheduleRead() {
    clearTimeout(state.readTimer);
    state.readTimer = setTimeout(flushRead, 250);
  }
  function flushRead() {
    if (document.hidden || !state.current || !state.readQueue.size || !state.client) return;
    const map = state.messages.get(state.current) || new Map();
    const ids = [];
    for (const id of state.readQueue) {
      const m = map.get(id);
      if (m && !isMine(m) && !readByMe(m) && !state.readSent.has(id)) ids.push(id);
    }
    state.readQueue.clear();
    if (!ids.length) return;
    ids.forEach((id) => state.readSent.add(id));
    state.client.markRead(ids).catch((err) => { ids.forEach((id) => state.readSent.delete(id)); quiet(err); });
    const room = state.rooms.get(state.current);
    if (room) {
      room.unread_count = Math.max(0, (room.unread_count || 0) - ids.length);
      renderRoomList();
    }
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.current) renderMessages();
  });

  // ------------------------------------------------------------------
  // Rooms
  // ------------------------------------------------------------------
  function memberList(d) {
    if (!d) return [];
    return d.participants || d.subscribers || [];
  }
  function adminList(d) {
    if (!d) return [];
    return d.admins || d.moderators || [];
  }
  function peerOf(room) {
    return room.peer || memberList(state.details.get(room.id)).find((u) => !isMe(u));
  }
  function roomTitle(room) {
    if (!room) return '';
    if (room.type === 'OneToOneChat') {
      const peer = peerOf(room);
      return peer ? userName(peer) : 'Direct message';
    }
    return room.name || 'Untitled';
  }
  function roomAvatar(room, cls = '') {
    const title = roomTitle(room);
    let key = room.id;
    if (room.type === 'OneToOneChat') {
      const peer = peerOf(room);
      if (peer) key = peer.id; // the same colour as the peer's messages
    }
    const a = avatar(title, key, cls + (room.type === 'Channel' ? '.channel' : ''));
    if (room.type === 'Channel') a.textContent = '#';
    return a;
  }
  function activity(room) {
    return new Date((room.last_message && room.last_message.created_at) || room.created_at || 0).getTime();
  }
  function role(d) {
    const isMember = memberList(d).some(isMe);
    const isCreator = !!(d && d.creator && isMe(d.creator));
    const isAdmin = adminList(d).some(isMe);
    return { isMember, isCreator, isAdmin, manager: isMember && (isCreator || isAdmin) };
  }
  function canSend(roomId) {
    const d = state.details.get(roomId);
    if (!d) return true;
    const r = role(d);
    if (d.type === 'Channel') return r.manager;
    if (d.type === 'GroupChat' && d.group_locked) return r.manager;
    return true;
  }
  function directRoomWith(userId) {
    for (const room of state.rooms.values()) {
      if (room.type !== 'OneToOneChat') continue;
      const peer = peerOf(room);
      if (peer && Number(peer.id) === Number(userId)) return room;
    }
    return null;
  }

  function openRoom(id) {
    if (!state.rooms.has(id) && !state.details.has(id)) return;
    const input = $('composer-input');
    if (state.current !== id) {
      if (state.current) {
        if (input.value.trim()) state.drafts.set(state.current, input.value);
        else state.drafts.delete(state.current);
      }
      state.current = id;
      setCompose(null);
      input.value = state.drafts.get(id) || '';
      state.drafts.delete(id);
    }
    $('empty-state').hidden = true;
    $('room-view').hidden = false;
    $('app').classList.add('room-open');
    // Measured only now that the box is on screen (a hidden box measures 0).
    autoGrow();
    state.client.roomInfo(id).catch(quiet);
    queryPresence(id);
    if (!state.loaded.has(id) && !(state.older.get(id) || {}).pending) loadFirstPage(id);
    renderRoomList();
    renderHeader();
    renderComposerState();
    renderSendError();
    renderMessages({ stickToBottom: true });
    renderDetails();
    input.focus();
  }
  function closeRoom() {
    const input = $('composer-input');
    if (state.current && input.value.trim()) state.drafts.set(state.current, input.value);
    input.value = '';
    state.current = null;
    setCompose(null);
    $('room-view').hidden = true;
    $('empty-state').hidden = false;
    $('app').classList.remove('room-open');
    setDetailsOpen(false);
    renderRoomList();
  }

  // ------------------------------------------------------------------
  // Rendering: sidebar
  // ------------------------------------------------------------------
  function previewOf(room) {
    const m = room.last_message;
    if (!m) {
      return room.type === 'Channel' ? 'Channel created' : room.type === 'GroupChat' ? 'Group created' : 'Say hello 👋';
    }
    const text = plainText(m.content).replace(/\s+/g, ' ').trim() || (m.attachments && m.attachments.length ? '📎 Attachment' : '');
    if (isMine(m)) return 'You: ' + text;
    if (m.is_system) return text;
    if (room.type !== 'OneToOneChat') return `${m.sender && !m.sender.is_deleted ? m.sender.username : userName(m.sender)}: ${text}`;
    return text;
  }
  function renderRoomList() {
    const ul = $('room-list');
    const q = state.search.trim().toLowerCase();
    const rooms = Array.from(state.rooms.values())
      .filter((r) => !q || roomTitle(r).toLowerCase().includes(q))
      .sort((a, b) => activity(b) - activity(a));
    fill(ul, rooms.map((room) => {
      const unread = room.id === state.current && !document.hidden ? 0 : room.unread_count || 0;
      const tag = room.type === 'Channel' ? 'Channel' : room.type === 'GroupChat' ? 'Group' : '';
      const draft = room.id !== state.current && state.drafts.get(room.id);
      return h('li.room-item' + (room.id === state.current ? '.active' : '') + (unread ? '.unread' : ''), {
        dataset: { id: room.id, testid: 'room-item' }, role: 'button', tabindex: '0',
        onclick: () => openRoom(room.id),
        onkeydown: (e) => { if (e.key === 'Enter') openRoom(room.id); },
      },
      roomAvatar(room),
      h('div.room-item-main',
        h('div.room-item-top', h('span.room-item-name', roomTitle(room)), h('span.room-item-time', shortTime(room.last_message ? room.last_message.created_at : room.created_at))),
        h('div.room-item-bottom',
          h('span.room-item-preview', draft ? h('span.draft-tag', 'Draft: ') : tag ? h('span.type-tag', tag + ' · ') : null,
            draft ? draft.replace(/\s+/g, ' ') : previewOf(room)),
          unread ? h('span.badge', { 'aria-label': unread + ' unread' }, unread > 99 ? '99+' : String(unread)) : null)));
    }));
    $('room-list-empty').hidden = state.rooms.size > 0;
    const total = Array.from(state.rooms.values()).reduce((n, r) => n + (r.id === state.current ? 0 : r.unread_count || 0), 0);
    document.title = total ? `(${total}) chatmux` : 'chatmux';
  }

  // ------------------------------------------------------------------
  // Rendering: conversation
  // ------------------------------------------------------------------
  // ------------------------------------------------------------------
  // Presence: a room's members as announced, queried when the room opens
  // (and after a reconnect), then kept by presence.dispatch.
  // ------------------------------------------------------------------
  function setPresence(u) {
    state.presence.set(Number(u.user_id), { online: !!u.online, last_seen: u.last_seen || null });
  }
  function queryPresence(roomId) {
    state.client.queryPresence(roomId).then((users) => {
      users.forEach(setPresence);
      if (state.current === roomId) { renderTyping(); renderPresence(); renderDetails(); }
    }, quiet);
  }
  function onPresence(d) {
    if (!d || d.user_id == null) return;
    setPresence(d);
    if (d.room_id === state.current) { renderTyping(); renderPresence(); renderDetails(); }
  }
  function presenceOf(u) { return u ? state.presence.get(Number(u.id)) : null; }
  function lastSeenText(p) {
    if (!p || !p.last_seen) return 'offline';
    const d = new Date(p.last_seen);
    const now = new Date();
    if (sameDay(d, now)) return `last seen at ${hhmm(d)}`;
    return `last seen ${dayLabel(d).toLowerCase()} at ${hhmm(d)}`;
  }
  function presenceText(u) {
    const p = presenceOf(u);
    if (!p) return '';
    return p.online ? 'online' : lastSeenText(p);
  }
  function presenceDot(u, testid) {
    const p = presenceOf(u);
    const on = !!(p && p.online);
    return h('span.presence-dot' + (on ? '.on' : ''), {
      dataset: { testid, online: String(on), user: String(u.id) },
      title: p ? presenceText(u) : '', 'aria-label': on ? 'online' : 'offline',
    });
  }
  // The header's dot: the other user of a one-to-one chat; in a group or
  // channel, on while anyone else shown is online.
  function renderPresence() {
    const slot = $('room-presence');
    if (!slot) return;
    const room = state.rooms.get(state.current) || state.details.get(state.current);
    if (!room) { fill(slot); return; }
    if (room.type === 'OneToOneChat') {
      const peer = peerOf(room);
      fill(slot, peer ? presenceDot(peer, 'header-presence') : null);
      return;
    }
    const others = memberList(state.details.get(state.current)).filter((u) => !isMe(u));
    const any = others.find((u) => (presenceOf(u) || {}).online);
    fill(slot, others.length ? presenceDot(any || others[0], 'header-presence') : null);
  }
  function onlineCount(d) {
    return memberList(d).filter((u) => (presenceOf(u) || {}).online).length;
  }

  function renderHeader() {
    const room = state.rooms.get(state.current) || (state.details.get(state.current) && listItemFromDetail(state.details.get(state.current)));
    if (!room) return;
    const av = roomAvatar(room);
    av.id = 'room-avatar';
    $('room-avatar').replaceWith(av);
    $('room-title').textContent = roomTitle(room);
    renderTyping();
    renderPresence();
  }
  function subtitle() {
    const d = state.details.get(state.current);
    const room = state.rooms.get(state.current) || d;
    if (!room) return '';
    if (room.type === 'OneToOneChat') {
      const peer = peerOf(room);
      const seen = presenceText(peer);
      return peer ? `@${peer.username}${seen ? ` · ${seen}` : ` · id ${peer.id}`}` : 'Direct message';
    }
    const n = memberList(d).length;
    const on = d ? onlineCount(d) : 0;
    const online = on ? ` · ${on} online` : '';
    if (room.type === 'Channel') return `${room.is_public ? 'Public channel' : 'Private channel'}${d ? ` · ${n} subscriber${n === 1 ? '' : 's'}${online}` : ''}`;
    return `Group${d ? ` · ${n} member${n === 1 ? '' : 's'}${online}` : ''}`;
  }
  function renderTyping() {
    const sub = $('room-subtitle');
    const m = state.typing.get(state.current);
    const names = m ? Array.from(m.keys()) : [];
    if (names.length) {
      sub.textContent = names.length === 1 ? `${names[0]} is typing…` : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} are typing…`;
      sub.classList.add('typing');
    } else {
      sub.textContent = subtitle();
      sub.classList.remove('typing');
    }
  }
  function renderComposerState() {
    const input = $('composer-input');
    const ok = canSend(state.current);
    const d = state.details.get(state.current);
    input.placeholder = ok ? 'Write a message…'
      : d && d.type === 'Channel' ? 'Only moderators can post in this channel' : 'Only admins can post in this group';
  }

  function sortedItems(id) {
    const items = Array.from((state.messages.get(id) || new Map()).values());
    for (const p of state.pending.values()) if (p.roomId === id) items.push(p.view);
    for (const s of state.systemLines.get(id) || []) items.push(s);
    const t = (x) => new Date(x.created_at).getTime();
    return items.sort((a, b) => (!!a.pending - !!b.pending) || (t(a) - t(b)) || ((a.seq || 0) - (b.seq || 0)));
  }

  function ticksOf(m) {
    if (m.pending) return h('span.ticks', { title: 'Sending…' }, '🕓');
    const readers = (m.read_receipts || []).filter((r) => !isMe(r.reader));
    if (readers.length) {
      return h('span.ticks.read', { title: 'Read by ' + readers.map((r) => r.reader.username).join(', '), dataset: { state: 'read' } }, '✓✓');
    }
    const delivered = (m.delivered_to || []).filter((u) => !state.me || u !== state.me.username);
    if (delivered.length) return h('span.ticks', { title: 'Delivered to ' + delivered.join(', '), dataset: { state: 'delivered' } }, '✓');
    return h('span.ticks', { title: 'Sent', dataset: { state: 'sent' } }, '');
  }

  function quoteOf(parent, label) {
    if (!parent) return null;
    return h('div.quote', { onclick: () => highlight(parent.id) },
      h('div.quote-name', label || (isMine(parent) ? 'You' : userName(parent.sender))),
      h('div.quote-text', plainText(parent.content) || '…'));
  }

  function reactionsOf(m) {
    const groups = new Map();
    for (const r of m.reactions || []) {
      const g = groups.get(r.reaction_content) || { n: 0, mine: false, who: [] };
      g.n++;
      g.who.push(r.user ? r.user.username : '?');
      if (isMe(r.user)) g.mine = true;
      groups.set(r.reaction_content, g);
    }
    if (!groups.size) return null;
    return h('div.reactions', Array.from(groups, ([emoji, g]) =>
      h('button.reaction-chip' + (g.mine ? '.mine' : ''), {
        title: g.who.join(', '), dataset: { emoji },
        onclick: (e) => { e.stopPropagation(); react(m, emoji); },
      }, `${emoji} ${g.n}`)));
  }

  function messageRow(m, prev, next) {
    if (m.system) return h('div.system-line', m.text);
    if (m.is_system) {
      // A message of the server's host: a line of the room, nobody's bubble.
      const line = h('div.system-line', { dataset: { id: m.id, testid: 'system-message' } }, safeFragment(m.content));
      if (!readByMe(m) && !state.readSent.has(m.id)) readObserver.observe(line);
      return line;
    }
    const mine = isMine(m);
    const room = state.rooms.get(state.current) || {};
    const sameSender = (a) => a && !a.system && !a.is_system && a.sender && m.sender && a.sender.id === m.sender.id &&
      Math.abs(new Date(a.created_at) - new Date(m.created_at)) < 5 * 60000 && sameDay(new Date(a.created_at), new Date(m.created_at));
    const start = !sameSender(prev);
    const end = !sameSender(next);
    const showSender = !mine && start && room.type !== 'OneToOneChat';
    const bubble = h('div.bubble',
      showSender ? h('div.bubble-sender', { style: `color:${colorFor(m.sender.id)}` }, userName(m.sender)) : null,
      m.is_forwarded ? h('div.forwarded', '↪ Forwarded' + (m.forwarded_from && m.forwarded_from.sender ? ` from ${userName(m.forwarded_from.sender)}` : '')) : null,
      quoteOf(m.parent_message),
      h('div.bubble-content', safeFragment(m.content)),
      (m.attachments || []).map((a) => h('div.bubble-content', '📎 ', h('a', { href: /^https?:/i.test(a.media_url) ? a.media_url : undefined, target: '_blank', rel: 'noopener noreferrer' }, a.caption || a.media_url))),
      reactionsOf(m),
      h('div.bubble-meta', m.is_edited ? h('span', 'edited ·') : null, h('span.time', { title: new Date(m.created_at).toLocaleString() }, hhmm(new Date(m.created_at))), mine ? ticksOf(m) : null));
    const actions = m.pending ? null : h('div.msg-actions',
      h('button', { title: 'React', 'aria-label': 'React', dataset: { action: 'react' }, onclick: (e) => { e.stopPropagation(); togglePicker(row, m); } }, '☺'),
      h('button', { title: 'Reply', 'aria-label': 'Reply', dataset: { action: 'reply' }, onclick: () => setCompose({ mode: 'reply', message: m }) }, '↩'),
      h('button', { title: 'Forward', 'aria-label': 'Forward', dataset: { action: 'forward' }, onclick: () => forwardDialog(m) }, '↪'),
      mine ? h('button', { title: 'Edit', 'aria-label': 'Edit', dataset: { action: 'edit' }, onclick: () => setCompose({ mode: 'edit', message: m }) }, '✎') : null,
      mine ? h('button', { title: 'Delete', 'aria-label': 'Delete', dataset: { action: 'delete' }, onclick: () => deleteMessage(m) }, '🗑') : null);
    const row = h('div.msg-row' + (mine ? '.own' : '') + (start ? '.grouped-start' : '') + (end ? '.grouped-end' : '') + (m.pending ? '.pending' : ''),
      { dataset: { id: m.id, testid: 'message' }, onclick: () => row.classList.toggle('show-actions') },
      mine ? null : avatar(userName(m.sender), m.sender.id, '.sm'),
      bubble, actions);
    if (!mine && !m.pending && !readByMe(m) && !state.readSent.has(m.id)) readObserver.observe(row);
    return row;
  }

  function renderMessages(opts = {}) {
    const box = $('messages');
    if (!state.current) return;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const prevHeight = box.scrollHeight;
    const prevTop = box.scrollTop;
    readObserver.disconnect();
    const items = sortedItems(state.current);
    const nodes = [];
    const older = state.older.get(state.current);
    if (older && older.hasMore) {
      nodes.push(h('button.btn.small.load-older', { onclick: () => requestOlder(state.current) }, older.pending ? 'Loading…' : 'Load older messages'));
    }
    if (!items.length) {
      nodes.push(h('div.no-messages', state.loaded.has(state.current) ? 'No messages yet. Say hello!' : 'Loading…'));
    }
    let lastDay = null;
    items.forEach((m, i) => {
      const d = new Date(m.created_at);
      const key = d.toDateString();
      if (key !== lastDay) { nodes.push(h('div.day-sep', dayLabel(d))); lastDay = key; }
      const prev = i > 0 && new Date(items[i - 1].created_at).toDateString() === key ? items[i - 1] : null;
      const next = i + 1 < items.length ? items[i + 1] : null;
      nodes.push(messageRow(m, prev, next));
    });
    box.replaceChildren(...nodes);
    if (opts.keepPosition) box.scrollTop = box.scrollHeight - prevHeight + prevTop;
    else if (opts.stickToBottom || atBottom) box.scrollTop = box.scrollHeight;
    else box.scrollTop = prevTop;
  }

  function highlight(id) {
    const row = document.querySelector(`.msg-row[data-id="${CSS.escape(id)}"]`);
    if (!row) { toast('That message is not loaded.'); return; }
    row.scrollIntoView({ behavior: 'smooth', block: 'center' });
    row.classList.add('highlight');
    setTimeout(() => row.classList.remove('highlight'), 1300);
  }

  function togglePicker(row, m) {
    const open = row.querySelector('.emoji-picker');
    document.querySelectorAll('.emoji-picker').forEach((p) => p.remove());
    if (open) return;
    row.append(h('div.emoji-picker', { role: 'menu' }, EMOJI.map((e) =>
      h('button', { dataset: { emoji: e }, title: e, onclick: (ev) => { ev.stopPropagation(); react(m, e); row.querySelector('.emoji-picker')?.remove(); } }, e))));
  }
  document.addEventListener('click', (e) => {
    if (!e.target.closest('.emoji-picker') && !e.target.closest('[data-action="react"]')) {
      document.querySelectorAll('.emoji-picker').forEach((p) => p.remove());
    }
  });

  // ------------------------------------------------------------------
  // Actions
  // ------------------------------------------------------------------
  function react(m, emoji) {
    const mine = (m.reactions || []).find((r) => isMe(r.user));
    const done = mine && mine.reaction_content === emoji ? state.client.removeReaction(m.id) : state.client.react(m.id, emoji);
    done.catch(report);
  }
  function deleteMessage(m) {
    confirmDialog('Delete message?', 'It is deleted for everyone in this chat.', 'Delete', () =>
      state.client.deleteMessages([m.id]).catch(report));
  }
  function setCompose(c) {
    state.compose = c;
    const bar = $('compose-bar');
    if (!c) { bar.hidden = true; return; }
    bar.hidden = false;
    $('compose-bar-title').textContent = c.mode === 'edit' ? 'Edit message' : `Reply to ${isMine(c.message) ? 'yourself' : userName(c.message.sender)}`;
    $('compose-bar-body').textContent = plainText(c.message.content);
    const input = $('composer-input');
    if (c.mode === 'edit') input.value = plainText(c.message.content);
    autoGrow();
    input.focus();
  }
  // autoGrow fits the message box to its text, from one line up to 160 px.
  // A box that is not on screen measures 0: it keeps its CSS height then.
  function autoGrow() {
    const input = $('composer-input');
    if (!input.offsetParent) return;
    input.style.height = 'auto';
    const natural = input.scrollHeight + (input.offsetHeight - input.clientHeight);
    input.style.height = Math.min(natural, 160) + 'px';
  }
  function typed() {
    autoGrow();
    if (state.current && state.sendErrors.has(state.current) && !$('composer-input').value.trim()) {
      state.sendErrors.delete(state.current);
      renderSendError();
    }
    if (!state.current || !canSend(state.current) || state.conn.state !== 'connected') return;
    const now = Date.now();
    if (now - state.lastTypingSent > TYPING_SEND_MS && $('composer-input').value.trim()) {
      state.lastTypingSent = now;
      state.client.typing(state.current).catch(quiet);
    }
  }
  function parseIDs(text) {
    const ids = String(text || '').split(/[\s,;]+/).filter(Boolean).map(Number);
    if (ids.some((n) => !Number.isInteger(n) || n <= 0)) return null;
    return Array.from(new Set(ids));
  }

  // ------------------------------------------------------------------
  // Finding people (user.search)
  // ------------------------------------------------------------------
  // peoplePicker is a search box that finds users by name with user.search
  // (docs/protocol.md#user-search); a user id typed as a number is offered
  // too. multiple: picked users collect as chips (selected() returns their
  // ids); otherwise onPick(user) is called at once.
  function peoplePicker({ id, label, placeholder, multiple, onPick, exclude }) {
    const chosen = new Map();
    const input = h('input', { id, placeholder, autocomplete: 'off', spellcheck: 'false', 'aria-label': label });
    const chips = h('div.chips');
    const results = h('ul.people-results', { role: 'listbox', 'aria-label': 'People found' });
    let seq = 0;
    let timer = null;
    let shown = [];
    function excluded(u) {
      return isMe(u) || chosen.has(Number(u.id)) || (exclude && exclude(u));
    }
    function drawChips() {
      fill(chips, Array.from(chosen.values()).map((u) => h('span.chip', { dataset: { id: String(u.id) } },
        avatar(userName(u), u.id, '.xs'), userName(u),
        h('button', { type: 'button', 'aria-label': `Remove ${userName(u)}`, onclick: () => { chosen.delete(Number(u.id)); drawChips(); input.focus(); } }, '✕'))));
    }
    function pick(u) {
      if (multiple) {
        chosen.set(Number(u.id), u);
        drawChips();
        input.value = '';
        fill(results);
        shown = [];
        input.focus();
      } else {
        onPick(u);
      }
    }
    function draw(list, note) {
      shown = list;
      fill(results, list.map((u) => h('li', {
        role: 'option', dataset: { id: String(u.id), testid: 'person' },
        onmousedown: (e) => e.preventDefault(),
        onclick: () => pick(u),
      }, avatar(userName(u), u.id, '.sm'),
      h('div.person-main', h('div.person-name', u.byId ? `User id ${u.id}` : userName(u)),
        h('div.person-sub', u.byId ? 'by id' : `@${u.username} · id ${u.id}`)))),
      note ? h('li.people-note', note) : null);
    }
    async function search() {
      const q = input.value.trim();
      const mine = ++seq;
      if (!q) { draw([]); return; }
      const byId = /^\d+$/.test(q) && Number(q) > 0 ? [{ id: Number(q), username: '', byId: true }] : [];
      try {
        const users = await state.client.searchUsers(q, SEARCH_LIMIT);
        if (mine !== seq) return;
        const found = byId.filter((u) => !excluded(u) && !users.some((x) => Number(x.id) === u.id)).concat(users.filter((u) => !excluded(u)));
        draw(found, found.length ? null : 'No one found. Try the beginning of a name or username.');
      } catch (err) {
        if (mine !== seq) return;
        draw(byId.filter((u) => !excluded(u)), describe(err));
      }
    }
    input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(search, 150); });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        if (shown.length) pick(shown[0]);
      } else if (e.key === 'Backspace' && multiple && !input.value && chosen.size) {
        chosen.delete(Array.from(chosen.keys()).pop());
        drawChips();
      }
    });
    // A div, not a label: a label around the chips' buttons would press
    // the first of them when its text is clicked.
    const box = h('div.people-box', { onclick: (e) => { if (e.target === box) input.focus(); } }, chips, input);
    const node = h('div.people-picker', h('div.field', h('label', { for: id }, label), box), results);
    return { node, input, selected: () => Array.from(chosen.keys()) };
  }

  // ------------------------------------------------------------------
  // Dialogs
  // ------------------------------------------------------------------
  function modal(build) {
    const close = () => { backdrop.remove(); document.removeEventListener('keydown', onKey); };
    const onKey = (e) => { if (e.key === 'Escape') close(); };
    const box = h('div.modal', { role: 'dialog', 'aria-modal': 'true' });
    const backdrop = h('div.modal-backdrop', { onmousedown: (e) => { if (e.target === backdrop) close(); } }, box);
    build(box, close);
    $('modal-root').append(backdrop);
    document.addEventListener('keydown', onKey);
    const first = box.querySelector('input, textarea, select');
    if (first) first.focus();
    return close;
  }
  function confirmDialog(title, text, label, onOK) {
    modal((box, close) => box.append(
      h('h3', title), h('p.muted', text),
      h('div.actions', h('button.btn', { onclick: close }, 'Cancel'),
        h('button.btn.primary', { dataset: { testid: 'confirm' }, onclick: () => { close(); onOK(); } }, label))));
  }
  function newChatDialog() {
    modal((box, close) => {
      let type = 'OneToOneChat';
      let busy = false;
      const tabs = h('div.tabs');
      const body = h('div');
      const error = h('p.login-error', { id: 'new-chat-error', role: 'alert' });
      const submitBtn = h('button.btn.primary', { type: 'submit', id: 'new-chat-submit' }, 'Create');
      const actions = h('div.actions', h('button.btn', { type: 'button', onclick: close }, 'Cancel'), submitBtn);
      const form = h('form', { onsubmit: (e) => { e.preventDefault(); submit(); } }, tabs, body, error, actions);
      const tab = (t, text) => h('button', { type: 'button', dataset: { type: t }, onclick: () => { type = t; draw(); } }, text);
      tabs.append(tab('OneToOneChat', 'Direct'), tab('GroupChat', 'Group'), tab('Channel', 'Channel'));
      let picker = null;
      function create(data) {
        if (busy) return;
        busy = true;
        submitBtn.disabled = true;
        error.textContent = '';
        state.client.createRoom(data).then((d) => {
          setDetail(d);
          close();
          openRoom(d.id);
        }, (err) => {
          error.textContent = describe(err);
        }).finally(() => { busy = false; submitBtn.disabled = false; });
      }
      function startDirect(u) {
        const existing = directRoomWith(u.id);
        if (existing) { close(); openRoom(existing.id); return; }
        create({ type: 'OneToOneChat', participants: [Number(u.id)] });
      }
      function draw() {
        tabs.querySelectorAll('button').forEach((b) => b.classList.toggle('active', b.dataset.type === type));
        error.textContent = '';
        if (type === 'OneToOneChat') {
          picker = peoplePicker({ id: 'new-peer', label: 'Find someone by name', placeholder: 'Start typing a name or username', onPick: startDirect });
          fill(body, picker.node,
            h('p.muted.hint', `Others find you as @${state.me.username} (user id ${state.me.id}).`));
          submitBtn.hidden = true;
        } else {
          picker = peoplePicker({ id: 'new-members', label: type === 'Channel' ? 'Subscribers (optional)' : 'Members (optional)', placeholder: 'Add people by name', multiple: true });
          fill(body,
            h('label.field', h('span', 'Name'), h('input', { id: 'new-name', maxlength: '64', required: true, placeholder: type === 'Channel' ? 'e.g. announcements' : 'e.g. Weekend trip' })),
            h('label.field', h('span', 'Description (optional)'), h('input', { id: 'new-desc' })),
            picker.node,
            type === 'Channel' ? h('label.check', h('input', { type: 'checkbox', id: 'new-public', checked: true }), 'Public: anyone with the id can join') : null);
          submitBtn.hidden = false;
        }
        const f = body.querySelector('input');
        if (f) f.focus();
      }
      function submit() {
        if (type === 'OneToOneChat') return;
        const name = box.querySelector('#new-name').value.trim();
        if (!name) { error.textContent = 'A name is required.'; return; }
        const members = picker.selected();
        const data = { type, name };
        const desc = box.querySelector('#new-desc').value.trim();
        if (desc) data.description = desc;
        if (type === 'Channel') {
          const isPublic = box.querySelector('#new-public').checked;
          data.subscribers = members;
          data.is_public = isPublic;
          data.extra_fields = { is_public: isPublic };
        } else {
          data.participants = members;
        }
        create(data);
      }
      box.append(h('h3', 'New chat'), form);
      draw();
    });
  }
  function joinDialog() {
    modal((box, close) => {
      const input = h('input', { id: 'join-id', placeholder: 'Channel id (a UUID)', required: true });
      box.append(h('h3', 'Join a public channel'), h('p.muted', 'Ask someone in the channel for its id (in the channel’s info panel).'),
        h('form', { onsubmit: (e) => {
          e.preventDefault();
          const id = input.value.trim();
          if (!id) return;
          close();
          state.client.joinRoom(id).then(() => {
            refreshRooms();
            openRoom(id);
          }, report);
        } }, h('label.field', h('span', 'Channel id'), input),
        h('div.actions', h('button.btn', { type: 'button', onclick: close }, 'Cancel'), h('button.btn.primary', { type: 'submit', id: 'join-submit' }, 'Join'))));
    });
  }
  function forwardDialog(m) {
    modal((box, close) => {
      const rooms = Array.from(state.rooms.values()).sort((a, b) => activity(b) - activity(a));
      box.append(h('h3', 'Forward message'), h('p.muted', plainText(m.content).slice(0, 120)),
        h('ul.pick-list', rooms.map((room) => h('li', {
          dataset: { id: room.id },
          onclick: () => {
            close();
            sendText(room.id, plainText(m.content) || '…', { forwardedFromId: m.id });
            toast(`Forwarded to ${roomTitle(room)}`);
          },
        }, roomAvatar(room, '.sm'), h('span', roomTitle(room))))),
        h('div.actions', h('button.btn', { onclick: close }, 'Cancel')));
    });
  }

  // ------------------------------------------------------------------
  // Details panel: members and admin management
  // ------------------------------------------------------------------
  function setDetailsOpen(open) {
    state.detailsOpen = open;
    $('details').hidden = !open;
    if (open) renderDetails();
  }
  function renderDetails() {
    if (!state.detailsOpen) return;
    const body = $('details-body');
    const d = state.details.get(state.current);
    const room = state.rooms.get(state.current);
    if (!d || !room) { fill(body, h('p.muted', 'Loading…')); return; }
    // Keep what the user is typing in the panel's fields across a redraw.
    const active = document.activeElement && body.contains(document.activeElement) ? document.activeElement.id : null;
    const r = role(d);
    const admins = new Set(adminList(d).map((u) => Number(u.id)));
    const creatorId = d.creator ? Number(d.creator.id) : null;
    const roleName = d.type === 'Channel' ? 'moderator' : 'admin';
    const kind = d.type === 'Channel' ? (d.is_public ? 'Public channel' : 'Private channel') : d.type === 'GroupChat' ? 'Group' : 'Direct message';
    const act = (p) => p.catch(report);

    const members = memberList(d).slice().sort((a, b) =>
      (Number(b.id) === creatorId) - (Number(a.id) === creatorId) || admins.has(Number(b.id)) - admins.has(Number(a.id)) || a.username.localeCompare(b.username));
    const memberIds = new Set(members.map((u) => Number(u.id)));
    const memberRows = members.map((u) => {
      const uid = Number(u.id);
      const isCreator = uid === creatorId;
      const isAdmin = admins.has(uid);
      const actions = [];
      if (r.manager && d.type !== 'OneToOneChat' && !isMe(u) && !isCreator) {
        actions.push(isAdmin
          ? h('button.btn', { dataset: { action: 'remove-role' }, title: `Remove ${roleName}`, onclick: () => act(state.client.modifyRoom(d.id, `remove_${roleName}`, { users: [uid] })) }, `− ${roleName}`)
          : h('button.btn', { dataset: { action: 'add-role' }, title: `Make ${roleName}`, onclick: () => act(state.client.modifyRoom(d.id, `add_${roleName}`, { users: [uid] })) }, `+ ${roleName}`));
        actions.push(h('button.btn.danger', { dataset: { action: 'remove-member' }, title: 'Remove from chat', onclick: () => act(state.client.removeMembers(d.id, [uid])) }, 'Remove'));
      }
      const seen = d.type === 'Channel' && !isAdmin && !isCreator && !isMe(u) ? '' : presenceText(u);
      return h('div.member', { dataset: { id: String(uid), testid: 'member' } },
        h('span.avatar-wrap', avatar(userName(u), u.id, '.sm'), seen ? presenceDot(u, 'member-presence') : null),
        h('div.member-main',
          h('div.member-name', userName(u),
            isCreator ? h('span.role.creator', 'creator') : null,
            isAdmin && !isCreator ? h('span.role.admin', roleName) : null,
            isMe(u) ? h('span.role.you', 'you') : null),
          h('div.member-sub', `@${u.username} · id ${u.id}${seen ? ` · ${seen}` : ''}`),
          actions.length ? h('div.member-actions', actions) : null));
    });

    let addRow = null;
    if (r.manager && d.type !== 'OneToOneChat') {
      const picker = peoplePicker({ id: 'add-members-input', label: 'Find people', placeholder: 'Add people by name', multiple: true, exclude: (u) => memberIds.has(Number(u.id)) });
      addRow = h('form.add-row', { onsubmit: (e) => {
        e.preventDefault();
        const ids = picker.selected();
        if (!ids.length) { toast('Pick someone first: type a name.', { error: true }); return; }
        act(state.client.addMembers(d.id, ids));
      } }, picker.node, h('button.btn.primary.small', { type: 'submit', id: 'add-members-submit' }, 'Add'));
    }

    let settings = null;
    if (r.manager && d.type !== 'OneToOneChat') {
      const name = h('input.inline-input', { id: 'settings-name', maxlength: '64', value: d.name || '' });
      const desc = h('input.inline-input', { id: 'settings-desc', value: d.description || '', placeholder: 'Description' });
      const flagKey = d.type === 'Channel' ? 'is_public' : 'group_locked';
      const flag = h('input', { type: 'checkbox', id: 'settings-flag', checked: !!d[flagKey] });
      settings = h('form.settings', { onsubmit: (e) => {
        e.preventDefault();
        const data = {};
        const n = name.value.trim();
        const ds = desc.value.trim();
        if (!n) { toast('A name is required.', { error: true }); return; }
        if (n !== (d.name || '')) data.name = n;
        if (ds && ds !== (d.description || '')) data.description = ds;
        if (flag.checked !== !!d[flagKey]) data[flagKey] = flag.checked;
        if (!Object.keys(data).length) { toast('Nothing changed.'); return; }
        act(state.client.modifyRoom(d.id, 'update', data));
      } },
      h('label.field', h('span', 'Name'), name),
      h('label.field', h('span', 'Description'), desc),
      h('label.check', flag, d.type === 'Channel' ? 'Public: anyone with the id can join' : 'Only admins can send messages'),
      h('button.btn.primary.small', { type: 'submit', id: 'settings-save' }, 'Save'));
    }

    const danger = [];
    if (d.type !== 'OneToOneChat') {
      danger.push(h('button.btn.danger.wide', { id: 'leave-btn', onclick: () => confirmDialog('Leave this chat?', `You will stop receiving messages from “${roomTitle(room)}”.`, 'Leave', () => act(state.client.leaveRoom(d.id))) }, d.type === 'Channel' ? 'Leave channel' : 'Leave group'));
    }
    if (d.type === 'OneToOneChat' || r.isCreator) {
      danger.push(h('button.btn.danger.wide', { id: 'delete-room-btn', onclick: () => confirmDialog('Delete this chat?', 'Every message is deleted, for everyone.', 'Delete', () => act(state.client.deleteRoom(d.id))) }, 'Delete chat'));
    }

    fill(body,
      h('div.details-hero', roomAvatar(room, '.lg'), h('h3', roomTitle(room)), h('div.muted', kind),
        d.description ? h('p.details-desc', d.description) : null),
      d.type === 'Channel' ? h('div.details-section', h('h4', 'Channel id'),
        h('div.id-box', h('code', { id: 'room-id-code' }, d.id),
          h('button.btn.small', { onclick: () => { navigator.clipboard?.writeText(d.id).then(() => toast('Channel id copied.'), () => {}); } }, 'Copy')),
        h('p.muted.small-note', d.is_public ? 'Anyone with this id can join.' : 'Private: only moderators can add people.')) : null,
      h('div.details-section', h('h4', `${d.type === 'Channel' ? 'Subscribers' : 'Members'} · ${members.length}`), memberRows),
      addRow ? h('div.details-section', h('h4', 'Add people'), addRow) : null,
      settings ? h('div.details-section', h('h4', 'Settings'), settings) : null,
      danger.length ? h('div.details-section.details-danger', danger) : null);
    if (active && $(active)) $(active).focus();
  }

  // ------------------------------------------------------------------
  // Sign in / out
  // ------------------------------------------------------------------
  async function whoami(cred) {
    const q = cred.token ? 'token=' + encodeURIComponent(cred.token) : 'user=' + encodeURIComponent(cred.user);
    const res = await fetch('me?' + q, { cache: 'no-store' });
    if (res.status === 401) throw new Error(state.cfg.auth === 'jwt' ? 'That token was refused.' : 'That username is not valid: use letters, digits and @ . + - _');
    if (!res.ok) {
      const err = new Error(res.status === 503
        ? 'The server cannot check who you are right now (its database is away): trying again…'
        : `The server answered ${res.status}.`);
      err.status = res.status;
      throw err;
    }
    return res.json();
  }
  async function signIn(cred) {
    state.me = await whoami(cred);
    state.cred = cred;
    sessionStorage.setItem('chatmux.cred', JSON.stringify(cred));
    $('login').hidden = true;
    $('app').hidden = false;
    const av = avatar(userName(state.me), state.me.id);
    av.id = 'me-avatar';
    $('me-avatar').replaceWith(av);
    $('me-name').textContent = `${userName(state.me)} · #${state.me.id}`;
    $('me-name').title = `@${state.me.username}, user id ${state.me.id}`;
    $('empty-id').textContent = `You are @${state.me.username}: others find you by that name.`;
    state.conn = { state: 'idle', everConnected: false, retryAt: 0, paced: false };
    renderConnection();
    renderRoomList();
    startClient();
  }
  function signOut(reason) {
    const client = state.client;
    state.client = null;
    if (client) client.close();
    sessionStorage.removeItem('chatmux.cred');
    for (const k of ['rooms', 'details', 'messages', 'systemLines', 'older', 'typing', 'pending', 'drafts', 'sendErrors']) state[k].clear();
    state.loaded.clear(); state.acked.clear(); state.readSent.clear();
    closeRoom();
    state.current = null; state.me = null; state.cred = null;
    state.conn = { state: 'idle', everConnected: false, retryAt: 0, paced: false };
    renderConnection();
    $('app').hidden = true;
    showLogin(reason);
  }
  function showLogin(error) {
    $('login').hidden = false;
    const jwt = state.cfg.auth === 'jwt';
    $('username-field').hidden = jwt;
    $('token-field').hidden = !jwt;
    $('login-hint').textContent = jwt ? 'Sign in with an access token issued for you.' : 'Pick a name to chat as.';
    $('login-foot').textContent = jwt ? '' : 'Development mode: no password. Open a second window to chat with yourself.';
    $('login-error').textContent = error || '';
    (jwt ? $('login-token') : $('login-username')).focus();
  }

  // ------------------------------------------------------------------
  // Wiring
  // ------------------------------------------------------------------
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const jwt = state.cfg.auth === 'jwt';
    const cred = jwt ? { token: $('login-token').value.trim() } : { user: $('login-username').value.trim() };
    if (!(cred.token || cred.user)) { $('login-error').textContent = jwt ? 'Paste your token.' : 'Enter a username.'; return; }
    $('login-submit').disabled = true;
    try { await signIn(cred); } catch (err) { $('login-error').textContent = err.message; } finally { $('login-submit').disabled = false; }
  });
  $('signout-btn').addEventListener('click', () => signOut());
  $('new-chat-btn').addEventListener('click', newChatDialog);
  $('join-btn').addEventListener('click', joinDialog);
  $('room-search').addEventListener('input', (e) => { state.search = e.target.value; renderRoomList(); });
  $('details-btn').addEventListener('click', () => setDetailsOpen(!state.detailsOpen));
  $('details-close').addEventListener('click', () => setDetailsOpen(false));
  $('back-btn').addEventListener('click', closeRoom);
  $('compose-bar-cancel').addEventListener('click', () => { if (state.compose && state.compose.mode === 'edit') $('composer-input').value = ''; setCompose(null); autoGrow(); });
  $('composer-error-close').addEventListener('click', () => { state.sendErrors.delete(state.current); renderSendError(); });
  $('composer').addEventListener('submit', (e) => { e.preventDefault(); submitComposer(); });
  $('composer-input').addEventListener('input', typed);
  $('composer-input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submitComposer(); }
    if (e.key === 'Escape' && state.compose) { setCompose(null); }
  });
  $('messages').addEventListener('scroll', () => {
    const box = $('messages');
    const o = state.older.get(state.current);
    if (box.scrollTop < 40 && o && o.hasMore && !o.pending) requestOlder(state.current);
  });
  window.addEventListener('resize', autoGrow);
  setInterval(() => { if (state.rooms.size) renderRoomList(); }, 60000); // relative times

  // For the browser test and for debugging from the console.
  window.chatmux = {
    state,
    get client() { return state.client; },
    // dropConnection closes the WebSocket as a network failure would: the
    // client reconnects with backoff and catches up.
    dropConnection() { if (liveSocket) liveSocket.close(); },
  };

  try {
    const res = await fetch('config.json', { cache: 'no-store' });
    if (res.ok) state.cfg = Object.assign(state.cfg, await res.json());
  } catch { /* keep the defaults */ }
  const saved = sessionStorage.getItem('chatmux.cred');
  if (saved) {
    // A refused credential (401) or an unreadable one is dropped; a server
    // that is away or cannot check it now (503, no answer) is asked again
    // with backoff: an outage never signs the user out.
    for (let delay = 1000; ; delay = Math.min(delay * 2, 30000)) {
      try { await signIn(JSON.parse(saved)); return; } catch (e) {
        if (e instanceof SyntaxError || e.status === 401 || (e.status && e.status !== 503)) {
          sessionStorage.removeItem('chatmux.cred');
          break;
        }
        toast(e.status ? e.message : 'Cannot reach the server: trying again…');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
  showLogin();
})();
