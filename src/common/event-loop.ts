/** Lets the event loop run what waits (I/O callbacks, timers) before going on: a turn between two slices of a long piece of work. */
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
