/**
 * A full garbage collection now, when node runs with `--expose-gc` (as
 * deploy/overlay-agent-runtime.conf starts the agent); nothing otherwise (tests, a development
 * run). The agent calls it after each periodic pass: a pass reads the whole kernel back (megabytes
 * of JSON at 1,000 taps and 10,000 entries), and an idle agent allocates too little for V8 to
 * collect that garbage soon, so the heap and the buffers it holds stayed grown for tens of
 * seconds after every pass. One collection of the agent's heap takes tens of milliseconds, once a
 * reconcile interval (docs/agent.md, "Memory and CPU").
 */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
