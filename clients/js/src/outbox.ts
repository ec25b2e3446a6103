import type { Id } from './types.js';

/**
 * One message waiting to be stored: handed to sendMessage, not yet
 * confirmed by its own message.dispatch. It is resent with the same
 * client_msg_id until it is (docs/protocol.md#idempotent-sends).
 */
export interface OutboxEntry {
  clientMsgId: string;
  roomId: Id;
  content: string;
  /** extra_fields of message.send (parent_message_id, forwarded_from_id, media, host fields). */
  extraFields?: Record<string, unknown>;
  /** When sendMessage was called (ms since the epoch). */
  createdAt: number;
}

/**
 * Where the outbox is kept. The client calls load once when it starts and
 * save after every change, with every entry in send order; saves are never
 * concurrent. Keep it somewhere that survives a page reload (localStorage,
 * IndexedDB) to carry unsent messages across reloads.
 */
export interface OutboxStorage {
  load(): OutboxEntry[] | Promise<OutboxEntry[]>;
  save(entries: OutboxEntry[]): void | Promise<void>;
}

/** The default storage: memory, lost with the page or process. */
export class MemoryOutboxStorage implements OutboxStorage {
  private entries: OutboxEntry[] = [];

  load(): OutboxEntry[] {
    return this.entries.map((e) => ({ ...e }));
  }

  save(entries: OutboxEntry[]): void {
    this.entries = entries.map((e) => ({ ...e }));
  }
}

/** The part of the Web Storage API (localStorage, sessionStorage) that WebStorageOutbox uses. */
export interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * An outbox kept in Web Storage under one key, e.g.
 * new WebStorageOutbox(localStorage, 'chatmux.outbox.' + userId). Use one
 * key per user, so that a shared browser does not send one user's messages
 * as another's.
 */
export class WebStorageOutbox implements OutboxStorage {
  constructor(
    private readonly storage: WebStorageLike,
    private readonly key: string,
  ) {}

  load(): OutboxEntry[] {
    const raw = this.storage.getItem(this.key);
    if (!raw) return [];
    try {
      const v: unknown = JSON.parse(raw);
      return Array.isArray(v) ? v.filter(isEntry) : [];
    } catch {
      return [];
    }
  }

  save(entries: OutboxEntry[]): void {
    if (entries.length === 0) this.storage.removeItem(this.key);
    else this.storage.setItem(this.key, JSON.stringify(entries));
  }
}

function isEntry(v: unknown): v is OutboxEntry {
  const e = v as OutboxEntry;
  return (
    !!e &&
    typeof e === 'object' &&
    typeof e.clientMsgId === 'string' &&
    typeof e.roomId === 'string' &&
    typeof e.content === 'string' &&
    typeof e.createdAt === 'number'
  );
}
