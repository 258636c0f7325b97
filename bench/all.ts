import { spawn } from 'node:child_process';
import path from 'node:path';
import { exitWith } from './report';

/*
 * `npm run bench`: the REST benchmark (bench/run.ts), then the sync benchmark (bench/sync.ts),
 * then the agent's dataplane benchmark (bench/dataplane.ts: root only, in a throwaway network
 * namespace; it skips itself, exit 0, without root, `ip`, `bridge` or `nft`), each in a process
 * of its own (own controller, own key prefix or namespace, own deadlines and cleanup), their
 * output passed through unchanged. Exits non-zero if any run broke (a missed target is not a
 * break). BENCH_ONLY=rest|sync|dataplane|ha|ovn|scale runs one of them. Three run only when asked: the
 * Redis high availability benchmark (bench/ha.ts: write rate by OVERLAY_REDIS_MIN_REPLICAS, five
 * Sentinel failovers on Redis processes of its own; about two minutes), BENCH_ONLY=ha, the OVN
 * peer (bench/ovn.ts: the same port workload on a private OVN central, Debian's ovn-central; it
 * skips without it), BENCH_ONLY=ovn, and the scale benchmark (bench/scale.ts: two replicas, 5,000
 * agents, 500,000 ports; 5-9 minutes and most of the machine), BENCH_ONLY=scale.
 *
 * The children run in their own process group, so a Ctrl-C reaches them once, forwarded from
 * here, and each can finish its cleanup (stop its controller, delete its keys) before the next
 * would start; after an interruption the next one is not started.
 */

const PHASES = [
  { name: 'rest', script: path.join(__dirname, 'run.js'), byDefault: true },
  { name: 'sync', script: path.join(__dirname, 'sync.js'), byDefault: true },
  { name: 'dataplane', script: path.join(__dirname, 'dataplane.js'), byDefault: true },
  { name: 'ha', script: path.join(__dirname, 'ha.js'), byDefault: false },
  { name: 'ovn', script: path.join(__dirname, 'ovn.js'), byDefault: false },
  { name: 'scale', script: path.join(__dirname, 'scale.js'), byDefault: false },
] as const;

let interrupted: NodeJS.Signals | undefined;
let current: ReturnType<typeof spawn> | undefined;

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = signal;
    if (current && current.exitCode === null && current.signalCode === null) {
      current.kill(signal);
    }
  });
}

function runPhase(script: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], { stdio: 'inherit', detached: true });
    current = child;
    child.once('error', (err) => {
      console.error(`could not start ${script}: ${err.message}`);
      resolve(1);
    });
    child.once('exit', (code, signal) => {
      current = undefined;
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

async function main(): Promise<number> {
  const only = process.env.BENCH_ONLY;
  let worst = 0;
  for (const phase of PHASES) {
    if (only ? only !== phase.name : !phase.byDefault) {
      if (!only) {
        console.log(`\n(${phase.name} benchmark not in the default run: BENCH_ONLY=${phase.name} npm run bench)`);
      }
      continue;
    }
    if (interrupted) {
      console.error(`(${phase.name} benchmark not started: ${interrupted})`);
      return 130;
    }
    if (phase.name !== PHASES[0].name && !only) {
      console.log('\n' + '='.repeat(100) + '\n');
    }
    const code = await runPhase(phase.script);
    worst = Math.max(worst, code);
  }
  return interrupted ? 130 : worst;
}

exitWith(main());
