import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchToken, ControllerProcess, freePort } from './controller-process';
import { JsonHttpClient } from './http-client';
import { percentile } from './pool';
import { dec, int, ROOT, round2 } from './report';
import { benchControllerRuntime } from './runtime-settings';
import { agentChannelOptions } from './sim-agent';
import type { ChannelOptions } from '@grpc/grpc-js';

/*
 * What the sync benchmark (bench/sync.ts) and the scale benchmark (bench/scale.ts) share:
 * distributions and their formatting, starting a controller child process the way both run it,
 * its resident memory over a few seconds, and the API's view of the hosts.
 */

export const CONTROLLER_SCRIPT = path.join(ROOT, 'dist', 'src', 'controller', 'main.js');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export const mb = (kb: number): string => `${dec((kb * 1024) / 1e6)} MB (${dec(kb / 1024)} MiB)`;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Dist {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function dist(values: number[]): Dist {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN };
}

export const distText = (d: Dist, unit = 'ms'): string => `p50 ${dec(d.p50)} ${unit}, p99 ${dec(d.p99)} ${unit}, max ${dec(d.max)} ${unit}`;
export const distBytes = (d: Dist): string => `p50 ${int(d.p50)} B, p99 ${int(d.p99)} B, max ${int(d.max)} B`;
export const distJson = (d: Dist): Record<string, number | null> => ({ n: d.n, p50: round2(d.p50), p99: round2(d.p99), max: round2(d.max) });

/** Prints what went wrong in a series of watched writes: failures, writes that missed an expected agent, deltas that reached an unexpected one. */
export function reportProblems<R extends { error?: string; agentsApplied: number; agentsExpected: number; unexpected: number }>(
  results: R[],
  words: { what: string; who: string; stray: string },
  timeoutMs: number,
): { failed: R[]; lost: R[]; unexpected: number } {
  const failed = results.filter((r) => r.error);
  const lost = results.filter((r) => !r.error && r.agentsApplied < r.agentsExpected);
  const unexpected = results.reduce((n, r) => n + r.unexpected, 0);
  if (failed.length) {
    console.log(`      !! ${failed.length} ${words.what}(s) failed; first: ${failed[0].error}`);
  }
  if (lost.length) {
    console.log(`      !! ${lost.length} ${words.what}(s) did not reach every ${words.who} within ${timeoutMs} ms (e.g. ${lost[0].agentsApplied}/${lost[0].agentsExpected})`);
  }
  if (unexpected) {
    console.log(`      !! ${unexpected} delta(s) carried ${words.stray}`);
  }
  return { failed, lost, unexpected };
}

export interface BenchController {
  ctl: ControllerProcess;
  client: JsonHttpClient;
  script: string;
  nodeArgs: string[];
  env: Record<string, string>;
  httpPort: number;
  grpcPort: number;
  /** The runtime settings and BENCH_CONTROLLER_ENV, as `NAME=value ...` (for the log). */
  extraEnv: string;
}

/**
 * Starts a controller child process on the shared Redis under `prefix`, with gRPC insecure, the
 * deployment's runtime settings (deploy/overlayd-runtime.conf; BENCH_CONTROLLER_RUNTIME=none
 * leaves them out), BENCH_CONTROLLER_ENV ("NAME=value ...", the controller only) and
 * BENCH_CONTROLLER_NODE_ARGS; BENCH_CONTROLLER_SCRIPT measures another build. Replicas of one
 * deployment are started with the same prefix and `token`.
 */
export async function startBenchController(opts: { prefix: string; token?: string; extraNodeArgs?: string[]; readyTimeoutMs?: number; clientSockets?: number }): Promise<BenchController> {
  const httpPort = await freePort();
  const grpcPort = await freePort();
  const env: Record<string, string> = {
    REDIS_URL,
    OVERLAY_HTTP_PORT: String(httpPort),
    OVERLAY_GRPC_PORT: String(grpcPort),
    OVERLAY_GRPC_INSECURE: 'true',
    OVERLAY_KEY_PREFIX: opts.prefix,
    OVERLAY_VNI_RANGES: '1-16777215',
    OVERLAY_MAX_BATCH_SIZE: '10000',
    OVERLAY_BOOTSTRAP_TOKEN: opts.token ?? benchToken(),
  };
  const runtime = benchControllerRuntime(ROOT);
  Object.assign(env, runtime.env);
  for (const pair of (process.env.BENCH_CONTROLLER_ENV ?? '').split(' ').filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq > 0) {
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  const script = process.env.BENCH_CONTROLLER_SCRIPT ?? CONTROLLER_SCRIPT;
  const nodeArgs = [...runtime.nodeFlags, ...(process.env.BENCH_CONTROLLER_NODE_ARGS ?? '').split(' ').filter(Boolean), ...(opts.extraNodeArgs ?? [])];
  for (const arg of nodeArgs) {
    const dir = /^--(?:cpu-prof-dir|diagnostic-dir)=(.+)$/.exec(arg)?.[1];
    if (dir) {
      mkdirSync(dir, { recursive: true });
    }
  }
  const ctl = await ControllerProcess.start({ script, env, port: httpPort, readyTimeoutMs: opts.readyTimeoutMs ?? 20_000, nodeArgs });
  const client = new JsonHttpClient('127.0.0.1', httpPort, opts.clientSockets ?? 32, { token: env.OVERLAY_BOOTSTRAP_TOKEN });
  const extraEnv = [...Object.entries(runtime.env).map(([k, v]) => `${k}=${v}`), process.env.BENCH_CONTROLLER_ENV ?? ''].filter(Boolean).join(' ');
  return { ctl, client, script, nodeArgs, env, httpPort, grpcPort, extraEnv };
}

/** The simulated agents' channel options: the real agent's, with BENCH_AGENT_FLOW_CONTROL_WINDOW (bytes) as their HTTP/2 window if set. */
export function benchAgentChannelOptions(): ChannelOptions {
  const window = Number(process.env.BENCH_AGENT_FLOW_CONTROL_WINDOW ?? '');
  return agentChannelOptions(Number.isFinite(window) && window > 0 ? { 'grpc-node.flow_control_window': window } : {});
}

export interface RssSample {
  medianKb: number;
  minKb: number;
  maxKb: number;
  hwmKb: number;
  samples: number;
}

/** RSS of `ctl` sampled every 100 ms for `ms` (it moves with the GC's cycle): median, min and max. */
export async function sampleRss(ctl: ControllerProcess, ms: number): Promise<RssSample> {
  const values: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const m = ctl.memory();
    if (m) {
      values.push(m.rssKb);
    }
    await sleep(100);
  }
  values.sort((a, b) => a - b);
  return { medianKb: percentile(values, 50), minKb: values[0] ?? NaN, maxKb: values[values.length - 1] ?? NaN, hwmKb: ctl.memory()?.hwmKb ?? NaN, samples: values.length };
}

export interface HostsInSync {
  ok: boolean;
  /** From `t0` to the poll that saw every host connected with lag 0. */
  ms: number;
  connected: number;
  inSync: number;
  polls: number;
}

/** Polls GET /v1/hosts every 100 ms until `expected` hosts are connected with lag 0, or for `timeoutMs`. */
export async function hostsInSync(client: JsonHttpClient, expected: number, t0: number, timeoutMs: number, stop: () => boolean): Promise<HostsInSync> {
  const deadline = performance.now() + timeoutMs;
  const maxPages = Math.ceil(expected / 1000) + 10;
  let connected = 0;
  let inSync = 0;
  let polls = 0;
  while (!stop()) {
    polls++;
    connected = 0;
    inSync = 0;
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { items: { connected: boolean; lag: number }[]; nextCursor: string | null } = await client.json('GET', `/v1/hosts?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      for (const h of page.items) {
        connected += h.connected ? 1 : 0;
        inSync += h.connected && h.lag === 0 ? 1 : 0;
      }
      cursor = page.nextCursor;
    } while (cursor && ++pages < maxPages);
    if (inSync === expected) {
      return { ok: true, ms: performance.now() - t0, connected, inSync, polls };
    }
    if (performance.now() > deadline) {
      break;
    }
    await sleep(100);
  }
  return { ok: false, ms: NaN, connected, inSync, polls };
}
