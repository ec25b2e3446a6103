/** The default storage: memory, lost with the page or process. */
export class MemoryOutboxStorage {
    entries = [];
    load() {
        return this.entries.map((e) => ({ ...e }));
    }
    save(entries) {
        this.entries = entries.map((e) => ({ ...e }));
    }
}
/**
 * An outbox kept in Web Storage under one key, e.g.
 * new WebStorageOutbox(localStorage, 'chatmux.outbox.' + userId). Use one
 * key per user, so that a shared browser does not send one user's messages
 * as another's.
 */
export class WebStorageOutbox {
    storage;
    key;
    constructor(storage, key) {
        this.storage = storage;
        this.key = key;
    }
    load() {
        const raw = this.storage.getItem(this.key);
        if (!raw)
            return [];
        try {
            const v = JSON.parse(raw);
            return Array.isArray(v) ? v.filter(isEntry) : [];
        }
        catch {
            return [];
        }
    }
    save(entries) {
        if (entries.length === 0)
            this.storage.removeItem(this.key);
        else
            this.storage.setItem(this.key, JSON.stringify(entries));
    }
}
function isEntry(v) {
    const e = v;
    return (!!e &&
        typeof e === 'object' &&
        typeof e.clientMsgId === 'string' &&
        typeof e.roomId === 'string' &&
        typeof e.content === 'string' &&
        typeof e.createdAt === 'number');
}
