type Listener<T> = (event: T) => void;

/**
 * Listeners of named events, each name with its payload type (`Events`, e.g. `{ acked: {...} }`).
 * As with node's EventEmitter, an event goes to the listeners there were when it was emitted.
 */
export class TypedEvents<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Calls `listener` with every `name` event until the returned function is called (idempotent). */
  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const set = this.listeners.get(name);
    if (set?.size) {
      for (const listener of [...set] as Listener<Events[K]>[]) {
        listener(event);
      }
    }
  }
}
