/** node's `gc`, present when it runs with `--expose-gc` (as deploy/overlay-agent-runtime.conf starts the agent); absent in tests and a development run. */
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

/**
 * A full garbage collection now (with `--expose-gc` only). The agent calls it between the stages
 * of a full pass (reconciler.ts, `stageDone`): else the pass's peak held every stage's garbage at
 * once (the kernel's listings, then the desired links, then the firewall's render and drift
 * check), 2-4 MB over what it holds live. One collection of the agent's heap takes tens of
 * milliseconds, against about a second of CPU for the pass (docs/agent.md, "Memory and CPU").
 */
export function collectGarbage(): void {
  gc();
}

/**
 * A full garbage collection, then a second one that gives back the pages the first emptied; the
 * agent calls it after each pass of its work queue (a change's, a periodic one, a retry). A pass
 * allocates megabytes (the kernel read back, the desired links, the firewall's render), and an
 * idle agent allocates too little for V8 to collect that garbage soon: the heap stayed grown for
 * tens of seconds after every periodic pass, and during a stream of changes each pass started on
 * the garbage of the ones before. One collection is not enough: with `--single-threaded-gc` V8
 * sweeps lazily, on the main thread, and the pages a collection emptied stay committed until the
 * next one (the first thing a collection does is finish the sweeping of the one before). In the
 * dataplane bench (1,000 local ports, 10,000 remote entries) the second collection took the agent's
 * RSS during 100 changes a second from a mean of 76.8 to 74.8 MB, its peak from 79.7 to 77.3 MB,
 * idle from 71.7 to 70.1 MB, the CPU the same within the runs' noise.
 */
export function collectAndReleaseGarbage(): void {
  gc();
  gc();
}
