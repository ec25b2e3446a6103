// chatmux example web client. Plain JavaScript, no build step, no
// dependencies: it speaks the chatmux wire protocol (docs/protocol.md) over
// one WebSocket.
'use strict';

(() => {
  // ------------------------------------------------------------------
  // Small DOM helpers
  // ------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  // h('div.cls#id', {attrs}, ...children): a tiny hyperscript.
  function h(spec, attrs, ...children) {
    const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
    const node = document.createElement((m && m[1]) || 'div');
    if (m && m[2]) {
      for (const part of m[2].match(/[.#][\w-]+/g)) {
        if (part[0] === '.') node.classList.add(part.slice(1));
        else node.id = part.slice(1);
      }
    }
    if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
      children.unshift(attrs);
      attrs = null;
    }
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // ------------------------------------------------------------------
  // State
  // ------------------------------------------------------------------
  const EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🎉'];
  const HEARTBEAT_MS = 20000;
  const TYPING_SEND_MS = 2500;
  const TYPING_SHOW_MS = 4000;
  const PAGE_SIZE = 50;

  const state = {
    cfg: { auth: 'dev', path: '/messaging/' },
    cred: null, // {user} or {token}
    me: null, // {id, username, ...}
    ws: null,
    retry: 0,
    retryTimer: null,
    hbTimer: null,
    signingOut: false,
    everConnected: false,
    rooms: new Map(), // room id -> RoomListItem (kept up to date)
    details: new Map(), // room id -> RoomDetail
    messages: new Map(), // room id -> Map(message id -> Message)
    systemLines: new Map(), // room id -> [{id, text, created_at, system: true}]
    loaded: new Set(), // rooms whose first page arrived
    older: new Map(), // room id -> {pending, hasMore}
    current: null,
    compose: null, // {mode: 'reply'|'edit', message}
    typing: new Map(), // room id -> Map(username -> timer)
    lastTypingSent: 0,
    pending: new Map(), // client_msg_id -> {room_id, content, extra, created_at}
    acked: new Set(),
    readSent: new Set(),
    readQueue: new Set(),
    readTimer: null,
    expectCreate: false,
    expectJoin: null,
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
  function userName(u) {
    if (!u) return 'unknown';
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

  // Message content is HTML sanitised by the server (a small allow-list).
  // The page renders it through its own allow-list too: tags b, i, strong,
  // em, a, span, p, ul, ol, li, br; on <a> only an http(s)/mailto href.
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
  // Toasts
  // ------------------------------------------------------------------
  function toast(text, opts = {}) {
    const node = h('div.toast' + (opts.error ? '.error' : ''), { role: opts.error ? 'alert' : 'status' },
      h('div', h('div.toast-text', text), opts.code ? h('div.toast-code', 'error ' + opts.code) : null),
      h('button', { 'aria-label': 'Dismiss', onclick: () => node.remove() }, '✕'));
    $('toasts').append(node);
    setTimeout(() => node.remove(), opts.error ? 6000 : 4000);
  }
  function detailText(detail) {
    if (detail === undefined || detail === null) return 'Something went wrong.';
    if (typeof detail === 'string') return detail;
    if (Array.isArray(detail)) return detail.map(detailText).join(' ');
    if (typeof detail === 'object') {
      return Object.entries(detail).map(([k, v]) => `${k}: ${detailText(v)}`).join('; ');
    }
    return String(detail);
  }

  // ------------------------------------------------------------------
  // Connection
  // ------------------------------------------------------------------
  function send(event, data) {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify({ event_type: event, data: data || {} }));
    return true;
  }
  function authQuery() {
    return state.cred.token
      ? 'token=' + encodeURIComponent(state.cred.token)
      : 'user=' + encodeURIComponent(state.cred.user);
  }
  function setStatus(kind, text) {
    $('status-dot').className = 'status-dot ' + kind;
    $('status-text').textContent = text;
  }
  function connect() {
    clearTimeout(state.retryTimer);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}${state.cfg.path}?${authQuery()}`);
    state.ws = ws;
    setStatus('', state.everConnected ? 'Reconnecting…' : 'Connecting…');
    ws.onopen = () => {
      if (state.ws !== ws) return;
      state.retry = 0;
      state.everConnected = true;
      setStatus('online', 'Online');
      send('room.list');
      startHeartbeat();
      resync();
    };
    ws.onmessage = (ev) => {
      if (state.ws !== ws) return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      try { handle(msg); } catch (err) { console.error('chat: failed to handle', msg, err); }
    };
    ws.onclose = (ev) => {
      if (state.ws !== ws) return;
      state.ws = null;
      stopHeartbeat();
      if (state.signingOut) return;
      if (ev.code === 4001) {
        signOut('Authentication failed: sign in again.');
        return;
      }
      scheduleReconnect(ev.code);
    };
  }
  function scheduleReconnect(code) {
    const base = Math.min(30000, 1000 * 2 ** state.retry);
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    state.retry++;
    const why = code === 4008 ? ' (too slow)' : code === 1001 ? ' (server restarting)' : '';
    setStatus('offline', `Offline${why}: retrying in ${Math.ceil(delay / 1000)} s`);
    state.retryTimer = setTimeout(connect, delay);
  }
  function startHeartbeat() {
    stopHeartbeat();
    state.hbTimer = setInterval(() => send('session.heartbeat'), HEARTBEAT_MS);
  }
  function stopHeartbeat() {
    clearInterval(state.hbTimer);
    state.hbTimer = null;
  }
  // After a (re)connect: catch up on the open room, re-send what is pending.
  function resync() {
    const id = state.current;
    if (id) {
      send('room.info', { room_id: id });
      const last = lastSeq(id);
      if (state.loaded.has(id) && last > 0) send('room.messages', { room_id: id, after_seq: last, limit: 100 });
      else requestFirstPage(id);
    }
    for (const [cid, p] of state.pending) {
      send('message.send', { room_id: p.room_id, content: p.content, client_msg_id: cid, extra_fields: p.extra });
    }
  }
  function lastSeq(roomId) {
    let max = 0;
    for (const m of (state.messages.get(roomId) || new Map()).values()) if (m.seq > max) max = m.seq;
    return max;
  }

  // ------------------------------------------------------------------
  // Incoming frames
  // ------------------------------------------------------------------
  function handle(msg) {
    if (msg && Object.prototype.hasOwnProperty.call(msg, 'error')) {
      const e = msg.error;
      if (typeof e === 'string') toast(e === 'invalid event type' ? 'The server does not know that action.' : e, { error: true });
      else toast(detailText(e && e.detail), { error: true, code: e && e.code });
      state.expectCreate = false;
      state.expectJoin = null;
      return;
    }
    if (!msg || !msg.eventType) return; // {"status":"success"} of a heartbeat
    const d = msg.data;
    switch (msg.eventType) {
      case 'chat.notifications': onNotifications(d); break;
      case 'roomlist.dispatch': onRoomList(d); break;
      case 'roominfo.dispatch': setDetail(d); break;
      case 'roommessages.dispatch': onRoomMessages(d); break;
      case 'message.dispatch': onMessage(d); break;
      case 'messagedelivered.dispatch': [].concat(d || []).forEach(updateMessage); break;
      case 'readreceipt.dispatch': [].concat(d || []).forEach(updateMessage); break;
      case 'reaction.dispatch': if (d && d.message) updateMessage(d.message); break;
      case 'messagetyping.dispatch': onTyping(d); break;
      case 'messagemodification.dispatch': onModification(d); break;
      case 'roomcreate.dispatch': onRoomCreate(d); break;
      case 'roomaddmembers.dispatch': onMembersAdded(d); break;
      case 'roomremovemembers.dispatch': onMembersRemoved(d); break;
      case 'roomexit.dispatch': onExit(d); break;
      case 'roomdelete.dispatch': onRoomDelete(d); break;
      case 'roomupdate.dispatch': setDetail(d); break;
      default: break;
    }
  }

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
      state.rooms.set(item.id, Object.assign({}, old || {}, item));
      if (item.last_message) acknowledge([item.last_message]);
    }
    for (const id of Array.from(state.rooms.keys())) if (!seen.has(id)) dropRoom(id);
    if (state.current && !state.rooms.has(state.current)) closeRoom();
    renderRoomList();
  }

  function roomMessages(id) {
    let m = state.messages.get(id);
    if (!m) { m = new Map(); state.messages.set(id, m); }
    return m;
  }

  function onRoomMessages(d) {
    const data = (d && d.data) || {};
    const id = data.room_id;
    if (!id) return;
    const list = data.messages || [];
    const map = roomMessages(id);
    for (const m of list) map.set(m.id, m);
    const older = state.older.get(id) || {};
    const has = (k) => Object.prototype.hasOwnProperty.call(d, k);
    if (has('has_next')) {
      // page/size: the first page (newest messages).
      older.hasMore = !!d.has_next;
      older.page = d.page || 1;
    } else if (has('before_seq')) {
      older.hasMore = has('has_more') ? !!d.has_more : list.length >= PAGE_SIZE;
    } else if (has('after_seq') && d.has_more) {
      // Catch-up after a reconnect: keep fetching until nothing is left.
      send('room.messages', { room_id: id, after_seq: lastSeq(id), limit: 100 });
    }
    older.pending = false;
    state.older.set(id, older);
    state.loaded.add(id);
    acknowledge(list);
    if (id === state.current) renderMessages({ keepPosition: older.keepPosition });
    older.keepPosition = false;
  }

  function onMessage(m) {
    if (!m || !m.room) return;
    const id = m.room.id;
    if (m.client_msg_id && state.pending.has(m.client_msg_id)) state.pending.delete(m.client_msg_id);
    const isNew = !roomMessages(id).has(m.id);
    roomMessages(id).set(m.id, m);
    const room = state.rooms.get(id);
    if (room) {
      room.last_message = m;
      if (isNew && !isMine(m) && !(id === state.current && !document.hidden)) {
        room.unread_count = (room.unread_count || 0) + 1;
      }
    } else {
      send('room.list');
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
        if (room.last_message && ids.has(room.last_message.id)) { send('room.list'); break; }
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

  function listItemFromDetail(d) {
    const item = {
      type: d.type, id: d.id, created_at: d.created_at, updated_at: d.updated_at,
      name: d.name, description: d.description, creator: d.creator, is_public: d.is_public,
      last_message: null, unread_count: 0,
    };
    if (d.type === 'OneToOneChat') item.peer = (d.participants || []).find((u) => !isMe(u)) || null;
    return item;
  }
  function setDetail(d) {
    if (!d || !d.id) return;
    state.details.set(d.id, d);
    const room = state.rooms.get(d.id);
    if (room) {
      for (const k of ['name', 'description', 'is_public', 'avatar', 'group_locked', 'updated_at']) {
        if (k in d) room[k] = d[k];
      }
    } else if (memberList(d).some(isMe)) {
      state.rooms.set(d.id, listItemFromDetail(d));
    }
    renderRoomList();
    if (d.id === state.current) { renderHeader(); renderComposerState(); renderDetails(); }
  }
  function onRoomCreate(d) {
    setDetail(d);
    if (state.expectCreate && memberList(d).some(isMe)) {
      state.expectCreate = false;
      openRoom(d.id);
    }
  }
  function onMembersAdded(d) {
    if (!d || !d.room) return;
    setDetail(d.room);
    const names = (d.new_members || []).join(', ');
    if (names) {
      addSystemLine(d.room.id, d.added_by === 'self' ? `${names} joined` : `${d.added_by} added ${names}`);
    }
    if (state.expectJoin === d.room.id) {
      state.expectJoin = null;
      send('room.list');
      openRoom(d.room.id);
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
    if (state.current === id) closeRoom();
  }
  function addSystemLine(roomId, text) {
    let list = state.systemLines.get(roomId);
    if (!list) { list = []; state.systemLines.set(roomId, list); }
    list.push({ id: 'sys-' + Math.random().toString(36).slice(2), system: true, text, created_at: new Date().toISOString() });
    if (roomId === state.current) renderMessages();
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
    if (ids.length) send('message.acknowledged', { message_id: ids });
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
    if (document.hidden || !state.current || !state.readQueue.size) return;
    const map = state.messages.get(state.current) || new Map();
    const ids = [];
    for (const id of state.readQueue) {
      const m = map.get(id);
      if (m && !isMine(m) && !readByMe(m) && !state.readSent.has(id)) ids.push(id);
    }
    state.readQueue.clear();
    if (!ids.length || !send('message.read', { message_id: ids })) return;
    ids.forEach((id) => state.readSent.add(id));
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
  function roomTitle(room) {
    if (!room) return '';
    if (room.type === 'OneToOneChat') {
      const peer = room.peer || (memberList(state.details.get(room.id)).find((u) => !isMe(u)));
      return peer ? userName(peer) : 'Direct message';
    }
    return room.name || 'Untitled';
  }
  function roomAvatar(room, cls = '') {
    const title = roomTitle(room);
    let key = room.id;
    if (room.type === 'OneToOneChat') {
      const peer = room.peer || memberList(state.details.get(room.id)).find((u) => !isMe(u));
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
    const me = state.me;
    const isMember = memberList(d).some(isMe);
    const isCreator = !!(d && d.creator && isMe(d.creator));
    const isAdmin = adminList(d).some(isMe);
    return { isMember, isCreator, isAdmin, manager: isMember && (isCreator || isAdmin), me };
  }
  function canSend(roomId) {
    const d = state.details.get(roomId);
    const room = state.rooms.get(roomId);
    const type = (d || room || {}).type;
    if (!d) return true;
    const r = role(d);
    if (type === 'Channel') return r.manager;
    if (type === 'GroupChat' && d.group_locked) return r.manager;
    return true;
  }
  function requestFirstPage(id) {
    state.older.set(id, { pending: false, hasMore: false });
    send('room.messages', { room_id: id, paginate: { page: 1, size: PAGE_SIZE } });
  }
  function requestOlder(id) {
    const o = state.older.get(id) || {};
    if (o.pending) return;
    let oldest = null;
    for (const m of (state.messages.get(id) || new Map()).values()) {
      if (typeof m.seq === 'number' && (oldest === null || m.seq < oldest)) oldest = m.seq;
    }
    o.pending = true;
    o.keepPosition = true;
    state.older.set(id, o);
    if (oldest !== null) send('room.messages', { room_id: id, before_seq: oldest, limit: PAGE_SIZE });
    else send('room.messages', { room_id: id, paginate: { page: (o.page || 1) + 1, size: PAGE_SIZE } });
  }

  function openRoom(id) {
    if (!state.rooms.has(id) && !state.details.has(id)) return;
    if (state.current !== id) {
      state.current = id;
      setCompose(null);
      $('composer-input').value = '';
      autoGrow();
    }
    $('empty-state').hidden = true;
    $('room-view').hidden = false;
    $('app').classList.add('room-open');
    send('room.info', { room_id: id });
    if (!state.loaded.has(id)) requestFirstPage(id);
    renderRoomList();
    renderHeader();
    renderComposerState();
    renderMessages({ stickToBottom: true });
    renderDetails();
    $('composer-input').focus();
  }
  function closeRoom() {
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
    if (room.type !== 'OneToOneChat') return `${m.sender.username}: ${text}`;
    return text;
  }
  function renderRoomList() {
    const ul = $('room-list');
    const q = state.search.trim().toLowerCase();
    const rooms = Array.from(state.rooms.values())
      .filter((r) => !q || roomTitle(r).toLowerCase().includes(q))
      .sort((a, b) => activity(b) - activity(a));
    ul.replaceChildren(...rooms.map((room) => {
      const unread = room.id === state.current && !document.hidden ? 0 : room.unread_count || 0;
      const tag = room.type === 'Channel' ? 'Channel' : room.type === 'GroupChat' ? 'Group' : '';
      return h('li.room-item' + (room.id === state.current ? '.active' : '') + (unread ? '.unread' : ''), {
        dataset: { id: room.id, testid: 'room-item' }, role: 'button', tabindex: '0',
        onclick: () => openRoom(room.id),
        onkeydown: (e) => { if (e.key === 'Enter') openRoom(room.id); },
      },
      roomAvatar(room),
      h('div.room-item-main',
        h('div.room-item-top', h('span.room-item-name', roomTitle(room)), h('span.room-item-time', shortTime(room.last_message ? room.last_message.created_at : room.created_at))),
        h('div.room-item-bottom',
          h('span.room-item-preview', tag ? h('span.type-tag', tag + ' · ') : null, previewOf(room)),
          unread ? h('span.badge', { 'aria-label': unread + ' unread' }, unread > 99 ? '99+' : String(unread)) : null)));
    }));
    $('room-list-empty').hidden = state.rooms.size > 0;
    const total = Array.from(state.rooms.values()).reduce((n, r) => n + (r.id === state.current ? 0 : r.unread_count || 0), 0);
    document.title = total ? `(${total}) chatmux` : 'chatmux';
  }

  // ------------------------------------------------------------------
  // Rendering: conversation
  // ------------------------------------------------------------------
  function renderHeader() {
    const room = state.rooms.get(state.current) || (state.details.get(state.current) && listItemFromDetail(state.details.get(state.current)));
    if (!room) return;
    const av = roomAvatar(room);
    av.id = 'room-avatar';
    $('room-avatar').replaceWith(av);
    $('room-title').textContent = roomTitle(room);
    renderTyping();
  }
  function subtitle() {
    const d = state.details.get(state.current);
    const room = state.rooms.get(state.current) || d;
    if (!room) return '';
    if (room.type === 'OneToOneChat') {
      const peer = room.peer || memberList(d).find((u) => !isMe(u));
      return peer ? `@${peer.username} · id ${peer.id}` : 'Direct message';
    }
    const n = memberList(d).length;
    if (room.type === 'Channel') return `${room.is_public ? 'Public channel' : 'Private channel'}${d ? ` · ${n} subscriber${n === 1 ? '' : 's'}` : ''}`;
    return `Group${d ? ` · ${n} member${n === 1 ? '' : 's'}` : ''}`;
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
    for (const p of state.pending.values()) if (p.room_id === id && !p.sent) items.push(p.view);
    for (const s of state.systemLines.get(id) || []) items.push(s);
    const t = (x) => new Date(x.created_at).getTime();
    return items.sort((a, b) => (t(a) - t(b)) || ((a.seq || 0) - (b.seq || 0)));
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
    const mine = isMine(m);
    const room = state.rooms.get(state.current) || {};
    const sameSender = (a) => a && !a.system && a.sender && m.sender && a.sender.id === m.sender.id &&
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
    if (mine && mine.reaction_content === emoji) send('message.react', { type: 'remove', message_id: m.id });
    else send('message.react', { type: 'add', message_id: m.id, reaction_content: emoji });
  }
  function deleteMessage(m) {
    confirmDialog('Delete message?', 'It is deleted for everyone in this chat.', 'Delete', () =>
      send('message.modify', { action: 'delete', message_id: [m.id] }));
  }
  function newClientID() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return 'c' + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function sendText(roomId, text, extra) {
    const content = textToHTML(text);
    const cid = newClientID();
    const now = new Date().toISOString();
    const view = {
      id: 'pending-' + cid, pending: true, room: { id: roomId }, sender: state.me, content,
      created_at: now, reactions: [], read_receipts: [], delivered_to: [], is_forwarded: !!(extra && extra.forwarded_from_id),
    };
    const p = { room_id: roomId, content, extra: extra || undefined, view };
    state.pending.set(cid, p);
    send('message.send', { room_id: roomId, content, client_msg_id: cid, extra_fields: extra || undefined });
    if (roomId === state.current) renderMessages({ stickToBottom: true });
    // A send that is refused (an error envelope) leaves the pending bubble:
    // drop it if no echo arrives in a while and we are connected.
    setTimeout(() => {
      if (state.pending.has(cid) && state.ws && state.ws.readyState === WebSocket.OPEN) {
        state.pending.delete(cid);
        if (roomId === state.current) renderMessages();
      }
    }, 15000);
  }
  function submitComposer() {
    const input = $('composer-input');
    const text = input.value.replace(/\s+$/, '');
    if (!state.current || !text.trim()) return;
    const c = state.compose;
    if (c && c.mode === 'edit') {
      send('message.modify', { action: 'update', message_id: c.message.id, extra_fields: { content: textToHTML(text) } });
    } else if (c && c.mode === 'reply') {
      sendText(state.current, text, { parent_message_id: c.message.id });
    } else {
      sendText(state.current, text);
    }
    input.value = '';
    state.lastTypingSent = 0; // the next keystroke announces typing again
    autoGrow();
    setCompose(null);
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
  function autoGrow() {
    const input = $('composer-input');
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 160) + 'px';
  }
  function typed() {
    autoGrow();
    if (!state.current || !canSend(state.current)) return;
    const now = Date.now();
    if (now - state.lastTypingSent > TYPING_SEND_MS && $('composer-input').value.trim()) {
      state.lastTypingSent = now;
      send('message.typing', { room_id: state.current });
    }
  }
  function parseIDs(text) {
    const ids = String(text || '').split(/[\s,;]+/).filter(Boolean).map(Number);
    if (ids.some((n) => !Number.isInteger(n) || n <= 0)) return null;
    return Array.from(new Set(ids));
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
      const tabs = h('div.tabs');
      const body = h('div');
      const form = h('form', { onsubmit: (e) => { e.preventDefault(); submit(); } }, tabs, body,
        h('p.login-error', { id: 'new-chat-error' }),
        h('div.actions', h('button.btn', { type: 'button', onclick: close }, 'Cancel'), h('button.btn.primary', { type: 'submit', id: 'new-chat-submit' }, 'Create')));
      const tab = (t, label) => h('button', { type: 'button', dataset: { type: t }, onclick: () => { type = t; draw(); } }, label);
      tabs.append(tab('OneToOneChat', 'Direct'), tab('GroupChat', 'Group'), tab('Channel', 'Channel'));
      function draw() {
        tabs.querySelectorAll('button').forEach((b) => b.classList.toggle('active', b.dataset.type === type));
        if (type === 'OneToOneChat') {
          body.replaceChildren(
            h('label.field', h('span', 'User id of the person to chat with'), h('input', { id: 'new-peer', inputmode: 'numeric', placeholder: 'e.g. 2', required: true })),
            h('p.muted', { style: 'font-size:13px' }, `Your own id is ${state.me.id}: share it so others can message you.`));
        } else {
          body.replaceChildren(
            h('label.field', h('span', 'Name'), h('input', { id: 'new-name', maxlength: '64', required: true, placeholder: type === 'Channel' ? 'e.g. announcements' : 'e.g. Weekend trip' })),
            h('label.field', h('span', 'Description (optional)'), h('input', { id: 'new-desc' })),
            h('label.field', h('span', `${type === 'Channel' ? 'Subscribers' : 'Members'}: user ids (optional)`), h('input', { id: 'new-members', placeholder: 'e.g. 2, 3, 5' })),
            type === 'Channel' ? h('label.check', h('input', { type: 'checkbox', id: 'new-public', checked: true }), 'Public: anyone with the id can join') : null);
        }
        const f = body.querySelector('input');
        if (f) f.focus();
      }
      function submit() {
        const err = box.querySelector('#new-chat-error');
        let data;
        if (type === 'OneToOneChat') {
          const ids = parseIDs(box.querySelector('#new-peer').value);
          if (!ids || ids.length !== 1) { err.textContent = 'Enter one user id (a positive number).'; return; }
          if (ids[0] === Number(state.me.id)) { err.textContent = 'That is your own id.'; return; }
          data = { type, participants: ids };
        } else {
          const name = box.querySelector('#new-name').value.trim();
          const members = parseIDs(box.querySelector('#new-members').value);
          if (!name) { err.textContent = 'A name is required.'; return; }
          if (!members) { err.textContent = 'Member ids are positive numbers, separated by commas.'; return; }
          data = { type, name, description: box.querySelector('#new-desc').value.trim() || undefined };
          if (type === 'Channel') {
            const isPublic = box.querySelector('#new-public').checked;
            data.subscribers = members;
            data.is_public = isPublic;
            data.extra_fields = { is_public: isPublic };
          } else {
            data.participants = members;
          }
        }
        state.expectCreate = true;
        if (!send('room.create', data)) { err.textContent = 'Not connected.'; return; }
        close();
      }
      draw();
      box.append(h('h3', 'New chat'), form);
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
          state.expectJoin = id;
          send('room.join', { room_id: id });
          close();
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
            sendText(room.id, plainText(m.content) || '…', { forwarded_from_id: m.id });
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
    if (!d || !room) { body.replaceChildren(h('p.muted', 'Loading…')); return; }
    const r = role(d);
    const admins = new Set(adminList(d).map((u) => Number(u.id)));
    const creatorId = d.creator ? Number(d.creator.id) : null;
    const roleName = d.type === 'Channel' ? 'moderator' : 'admin';
    const roleAction = d.type === 'Channel' ? 'moderator' : 'admin';
    const kind = d.type === 'Channel' ? (d.is_public ? 'Public channel' : 'Private channel') : d.type === 'GroupChat' ? 'Group' : 'Direct message';

    const members = memberList(d).slice().sort((a, b) =>
      (Number(b.id) === creatorId) - (Number(a.id) === creatorId) || admins.has(Number(b.id)) - admins.has(Number(a.id)) || a.username.localeCompare(b.username));
    const memberRows = members.map((u) => {
      const uid = Number(u.id);
      const isCreator = uid === creatorId;
      const isAdmin = admins.has(uid);
      const actions = [];
      if (r.manager && d.type !== 'OneToOneChat' && !isMe(u) && !isCreator) {
        actions.push(isAdmin
          ? h('button.btn', { dataset: { action: 'remove-role' }, title: `Remove ${roleName}`, onclick: () => send('room.modify', { room_id: d.id, action: `remove_${roleAction}`, data: { users: [uid] } }) }, `− ${roleName}`)
          : h('button.btn', { dataset: { action: 'add-role' }, title: `Make ${roleName}`, onclick: () => send('room.modify', { room_id: d.id, action: `add_${roleAction}`, data: { users: [uid] } }) }, `+ ${roleName}`));
        actions.push(h('button.btn.danger', { dataset: { action: 'remove-member' }, title: 'Remove from chat', onclick: () => send('room.remove_members', { room_id: d.id, members: [uid] }) }, 'Remove'));
      }
      return h('div.member', { dataset: { id: String(uid), testid: 'member' } },
        avatar(userName(u), u.id, '.sm'),
        h('div.member-main',
          h('div.member-name', userName(u),
            isCreator ? h('span.role.creator', 'creator') : null,
            isAdmin && !isCreator ? h('span.role.admin', roleName) : null,
            isMe(u) ? h('span.role.you', 'you') : null),
          h('div.member-sub', `@${u.username} · id ${u.id}`),
          actions.length ? h('div.member-actions', actions) : null));
    });

    let addRow = null;
    if (r.manager && d.type !== 'OneToOneChat') {
      const input = h('input.inline-input', { id: 'add-members-input', placeholder: 'User ids, e.g. 4, 7' });
      addRow = h('form.add-row', { onsubmit: (e) => {
        e.preventDefault();
        const ids = parseIDs(input.value);
        if (!ids || !ids.length) { toast('Enter user ids (positive numbers).', { error: true }); return; }
        send('room.add_members', { room_id: d.id, members: ids });
        input.value = '';
      } }, input, h('button.btn.primary.small', { type: 'submit' }, 'Add'));
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
        send('room.modify', { room_id: d.id, action: 'update', data });
      } },
      h('label.field', h('span', 'Name'), name),
      h('label.field', h('span', 'Description'), desc),
      h('label.check', flag, d.type === 'Channel' ? 'Public: anyone with the id can join' : 'Only admins can send messages'),
      h('button.btn.primary.small', { type: 'submit', id: 'settings-save' }, 'Save'));
    }

    const danger = [];
    if (d.type !== 'OneToOneChat') {
      danger.push(h('button.btn.danger.wide', { id: 'leave-btn', onclick: () => confirmDialog('Leave this chat?', `You will stop receiving messages from “${roomTitle(room)}”.`, 'Leave', () => send('room.leave', { room_id: d.id })) }, d.type === 'Channel' ? 'Leave channel' : 'Leave group'));
    }
    if (d.type === 'OneToOneChat' || r.isCreator) {
      danger.push(h('button.btn.danger.wide', { id: 'delete-room-btn', onclick: () => confirmDialog('Delete this chat?', 'Every message is deleted, for everyone.', 'Delete', () => send('room.modify', { room_id: d.id, action: 'delete' })) }, 'Delete chat'));
    }

    body.replaceChildren(...[
      h('div.details-hero', roomAvatar(room, '.lg'), h('h3', roomTitle(room)), h('div.muted', kind),
        d.description ? h('p.details-desc', d.description) : null),
      d.type === 'Channel' ? h('div.details-section', h('h4', 'Channel id'),
        h('div.id-box', h('code', { id: 'room-id-code' }, d.id),
          h('button.btn.small', { onclick: () => { navigator.clipboard?.writeText(d.id).then(() => toast('Channel id copied.'), () => {}); } }, 'Copy')),
        h('p.muted', { style: 'font-size:12px;margin:6px 0 0' }, d.is_public ? 'Anyone with this id can join.' : 'Private: only moderators can add people.')) : null,
      h('div.details-section', h('h4', `${d.type === 'Channel' ? 'Subscribers' : 'Members'} · ${members.length}`), memberRows),
      addRow ? h('div.details-section', h('h4', 'Add people'), addRow) : null,
      settings ? h('div.details-section', h('h4', 'Settings'), settings) : null,
      danger.length ? h('div.details-section.details-danger', danger) : null,
    ].filter(Boolean));
  }

  // ------------------------------------------------------------------
  // Sign in / out
  // ------------------------------------------------------------------
  async function whoami(cred) {
    const q = cred.token ? 'token=' + encodeURIComponent(cred.token) : 'user=' + encodeURIComponent(cred.user);
    const res = await fetch('me?' + q, { cache: 'no-store' });
    if (res.status === 401) throw new Error(state.cfg.auth === 'jwt' ? 'That token was refused.' : 'That username is not valid: use letters, digits and @ . + - _');
    if (!res.ok) throw new Error(`The server answered ${res.status}.`);
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
    $('empty-id').textContent = `You are @${state.me.username}, user id ${state.me.id}.`;
    state.signingOut = false;
    renderRoomList();
    connect();
  }
  function signOut(reason) {
    state.signingOut = true;
    clearTimeout(state.retryTimer);
    stopHeartbeat();
    if (state.ws) { const ws = state.ws; state.ws = null; ws.close(1000, 'sign out'); }
    sessionStorage.removeItem('chatmux.cred');
    for (const k of ['rooms', 'details', 'messages', 'systemLines', 'older', 'typing', 'pending']) state[k].clear();
    state.loaded.clear(); state.acked.clear(); state.readSent.clear();
    state.current = null; state.me = null; state.cred = null; state.everConnected = false;
    closeRoom();
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
  setInterval(() => { if (state.rooms.size) renderRoomList(); }, 60000); // relative times

  (async function start() {
    try {
      const res = await fetch('config.json', { cache: 'no-store' });
      if (res.ok) state.cfg = Object.assign(state.cfg, await res.json());
    } catch { /* keep the defaults */ }
    const saved = sessionStorage.getItem('chatmux.cred');
    if (saved) {
      try { await signIn(JSON.parse(saved)); return; } catch { sessionStorage.removeItem('chatmux.cred'); }
    }
    showLogin();
  })();

  // For the browser test and for debugging from the console.
  window.chatmux = { state, send };
})();
