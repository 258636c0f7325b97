/**
 * A full garbage collection now, when node runs with `--expose-gc` (as
 * deploy/overlay-agent-runtime.conf starts the agent); nothing otherwise (tests, a development
 * run). The agent calls it after each pass of its work queue (a change's, a periodic one, a
 * retry): a pass reads the whole kernel back (megabytes of JSON at 1,000 taps and 10,000
 * entries). An idle agent allocates too little for V8 to collect that garbage soon, so the heap
 * stayed grown for tens of seconds after every periodic pass; during a stream of changes each
 * pass started on the garbage of the ones before. It also calls it between the stages of a full
 * pass (reconciler.ts, `stageDone`): else the pass's peak held every stage's garbage at once (the
 * kernel's listings, then the desired links, then the firewall's render and drift check), 2-4 MB
 * over what it holds live. One collection of the agent's heap takes tens of milliseconds, against
 * about a second of CPU for the pass (docs/agent.md, "Memory and CPU").
 */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
