/** A small typed event emitter: on/once/off/emit, listeners called in order, errors reported not thrown. */
export class Emitter {
    listeners = new Map();
    /** Calls fn for every event of that name until off is called; returns a function that removes it. */
    on(name, fn) {
        let set = this.listeners.get(name);
        if (!set)
            this.listeners.set(name, (set = new Set()));
        set.add(fn);
        return () => this.off(name, fn);
    }
    /** Calls fn for the next event of that name only. */
    once(name, fn) {
        const off = this.on(name, (p) => {
            off();
            fn(p);
        });
        return off;
    }
    /** Removes a listener added with on. */
    off(name, fn) {
        this.listeners.get(name)?.delete(fn);
    }
    /** Reports whether anyone listens to name. */
    hasListeners(name) {
        return (this.listeners.get(name)?.size ?? 0) > 0;
    }
    /**
     * Calls every listener of name with payload. A listener that throws does
     * not stop the others nor the client: the error goes to onListenerError.
     */
    emit(name, payload) {
        const set = this.listeners.get(name);
        if (!set)
            return;
        for (const fn of [...set]) {
            try {
                fn(payload);
            }
            catch (err) {
                this.onListenerError(err, String(name));
            }
        }
    }
    /** Called when a listener throws; the default rethrows it asynchronously, outside the client's stack. */
    onListenerError(err, _name) {
        setTimeout(() => {
            throw err;
        }, 0);
    }
}
