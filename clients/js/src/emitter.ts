/** A listener of an event whose payload is T. */
export type Listener<T> = (payload: T) => void;

/** A small typed event emitter: on/once/off/emit, listeners called in order, errors reported not thrown. */
export class Emitter<Events extends object> {
  private listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Calls fn for every event of that name until off is called; returns a function that removes it. */
  on<K extends keyof Events>(name: K, fn: Listener<Events[K]>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => this.off(name, fn);
  }

  /** Calls fn for the next event of that name only. */
  once<K extends keyof Events>(name: K, fn: Listener<Events[K]>): () => void {
    const off = this.on(name, (p) => {
      off();
      fn(p);
    });
    return off;
  }

  /** Removes a listener added with on. */
  off<K extends keyof Events>(name: K, fn: Listener<Events[K]>): void {
    this.listeners.get(name)?.delete(fn as Listener<never>);
  }

  /** Reports whether anyone listens to name. */
  protected hasListeners(name: keyof Events): boolean {
    return (this.listeners.get(name)?.size ?? 0) > 0;
  }

  /**
   * Calls every listener of name with payload. A listener that throws does
   * not stop the others nor the client: the error goes to onListenerError.
   */
  protected emit<K extends keyof Events>(name: K, payload: Events[K]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<Events[K]>)(payload);
      } catch (err) {
        this.onListenerError(err, String(name));
      }
    }
  }

  /** Called when a listener throws; the default rethrows it asynchronously, outside the client's stack. */
  protected onListenerError(err: unknown, _name: string): void {
    setTimeout(() => {
      throw err;
    }, 0);
  }
}
