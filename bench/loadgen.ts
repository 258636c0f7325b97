import type { ChannelOptions } from '@grpc/grpc-js';
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { processCpuSeconds, processMemory } from './controller-process';
import type { AgentStats } from './sim-agent';

/*
 * Simulated agents spread over load-generator processes (bench/loadgen-worker.ts), for the scale
 * benchmark: one Node process cannot hold 5,000 agents' streams and spans and still decode their
 * snapshots in time (its heap and its one event loop), so each holds a share, and this side asks
 * them over IPC. A watch or a sync target covers every process; times come back on clockMs.
 */

/** The machine's monotonic clock in ms (CLOCK_MONOTONIC, the same in every process), for times measured in one process and compared in another. */
export const clockMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export interface AgentSpec {
  /** Global index: the host's in the layout. */
  index: number;
  hostName: string;
  vtepIp: string;
  /** host:port of the controller replica this agent talks to. */
  target: string;
}

/** Per agent that applied a watched key: [global index, clockMs, bytes of the SyncResponse, upserts + removals]. */
export interface WatchReport {
  arrivals: [number, number, number, number][];
  unexpected: number;
  revision: number;
}

export type LoadGenRequest =
  | { op: 'init'; id: number; agents: AgentSpec[]; channelOptions: ChannelOptions }
  /**
   * From now on, waits (up to timeoutMs) until every agent of `indexes` (default: all of this
   * process; only the connected ones without `connect`) acked `revision` or later; with
   * `connect`, first drops their streams and opens new ones, with their state (resume) or without (fresh).
   */
  | { op: 'sync'; id: number; revision: number; timeoutMs: number; connect?: 'fresh' | 'resume'; indexes?: number[] }
  | { op: 'watch'; id: number; key: string; expected: number[] }
  | { op: 'unwatch'; id: number; key: string }
  | { op: 'state'; id: number }
  /** This process's event-loop stalls and GC pauses since the last call (and forgets them). */
  | { op: 'stalls'; id: number }
  | { op: 'disconnect'; id: number };

export interface SyncReply {
  id: number;
  ok: boolean;
  members: number;
  synced: number;
  /** clockMs of each member's first ack of the revision (NaN: none), and of its first message after its Hello (NaN: none since). */
  times: number[];
  firstMessage: number[];
  /** How long this process took to close its members' streams and open new ones (a slice at a time, the event loop served between slices). */
  issuedMs: number;
  stats: AgentStats;
  lastError?: string;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

export interface StateReply {
  id: number;
  ok: true;
  stats: AgentStats;
  /** [global index, span size, connected 0/1] per agent. */
  spans: [number, number, number][];
  heapUsedMb: number;
}

/** [clockMs, ms late] per timer tick that came late; [clockMs at start, ms, kind] per GC pause. */
export interface StallsReply {
  id: number;
  ok: true;
  stalls: [number, number][];
  gcPauses: [number, number, number][];
}

export type LoadGenReply =
  | SyncReply
  | StallsReply
  | StateReply
  | { id: number; ok: boolean; report?: WatchReport; error?: string }
  | { id: number; ok: false; error: string };

/** A request without its id (the sender numbers them). */
type RequestBody = LoadGenRequest extends infer T ? (T extends LoadGenRequest ? Omit<T, 'id'> : never) : never;

type WatchEvent = { event: 'watchDone'; key: string; report: WatchReport };

const WORKER = path.join(__dirname, 'loadgen-worker.js');

class LoadGenProcess {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (r: LoadGenReply) => void; reject: (e: Error) => void }>();
  private exitInfo?: string;
  readonly done = new Map<string, (report: WatchReport) => void>();

  constructor(
    readonly child: ChildProcess,
    readonly agents: AgentSpec[],
  ) {
    child.on('message', (msg: LoadGenReply | WatchEvent) => {
      if ('event' in msg) {
        this.done.get(msg.key)?.(msg.report);
        return;
      }
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      p?.resolve(msg);
    });
    child.once('exit', (code, signal) => {
      this.exitInfo = `load generator pid ${child.pid} exited (code ${code}, signal ${signal})`;
      for (const p of this.pending.values()) {
        p.reject(new Error(this.exitInfo));
      }
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get exited(): string | undefined {
    return this.exitInfo;
  }

  request<R extends LoadGenReply>(req: RequestBody, timeoutMs: number): Promise<R> {
    if (this.exitInfo) {
      return Promise.reject(new Error(this.exitInfo));
    }
    const id = ++this.seq;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`load generator pid ${this.pid}: no answer to ${req.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          if (!r.ok && 'error' in r && r.error) {
            reject(new Error(`load generator pid ${this.pid}: ${r.error}`));
          } else {
            resolve(r as R);
          }
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ ...req, id });
    });
  }
}

/** The outcome of a watched key over every process. */
export interface FleetWatch {
  /** Resolves when every process's expected agents applied it. */
  done: Promise<void>;
  /** Ends the watch and gathers what arrived (complete or not). */
  finish(): Promise<WatchReport & { complete: boolean }>;
}

export class LoadGenerators {
  private constructor(private readonly procs: LoadGenProcess[]) {}

  /** Forks `count` processes and gives each the agents whose index modulo `count` is its number. */
  static async start(agents: AgentSpec[], count: number, channelOptions: ChannelOptions, nodeArgs: string[]): Promise<LoadGenerators> {
    const procs: LoadGenProcess[] = [];
    const gens = new LoadGenerators(procs);
    try {
      for (let k = 0; k < count; k++) {
        const share = agents.filter((a) => a.index % count === k);
        const child = fork(WORKER, [], { execArgv: nodeArgs, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        procs.push(new LoadGenProcess(child, share));
      }
      await Promise.all(procs.map((p) => p.request({ op: 'init', agents: p.agents, channelOptions }, 30_000)));
    } catch (err) {
      gens.kill();
      throw err;
    }
    return gens;
  }

  get pids(): number[] {
    return this.procs.map((p) => p.pid);
  }

  /** A process that exited, if any (said when something stops). */
  get exited(): string | undefined {
    return this.procs.map((p) => p.exited).find(Boolean);
  }

  /** Each process's RSS and peak RSS (kB). */
  memory(): { pid: number; rssKb: number; hwmKb: number }[] {
    return this.procs.map((p) => ({ pid: p.pid, ...(processMemory(p.pid) ?? { rssKb: NaN, hwmKb: NaN }) }));
  }

  cpuSeconds(): number {
    return this.procs.reduce((n, p) => n + processCpuSeconds(p.pid), 0);
  }

  /** Sync (see LoadGenRequest) on every process at once; the members of the answer are concatenated. */
  async sync(req: { revision: number; timeoutMs: number; connect?: 'fresh' | 'resume'; indexes?: number[] }): Promise<SyncReply[]> {
    const count = this.procs.length;
    return Promise.all(
      this.procs.map((p, k) =>
        p.request<SyncReply>({ op: 'sync', ...req, indexes: req.indexes?.filter((g) => g % count === k) }, req.timeoutMs + 30_000),
      ),
    );
  }

  /** Registers a watch on every process (resolved once all of them watch, so a write sent after cannot be missed). */
  async watch(key: string, expected: number[]): Promise<FleetWatch> {
    const count = this.procs.length;
    const reports: WatchReport[] = [];
    let remaining = 0;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const involved = this.procs.filter((_, k) => expected.some((g) => g % count === k));
    remaining = involved.length;
    for (const p of involved) {
      p.done.set(key, () => {
        p.done.delete(key);
        if (--remaining === 0) {
          resolve();
        }
      });
    }
    if (remaining === 0) {
      resolve();
    }
    await Promise.all(this.procs.map((p, k) => p.request({ op: 'watch', key, expected: expected.filter((g) => g % count === k) }, 10_000)));
    return {
      done,
      finish: async () => {
        for (const p of this.procs) {
          p.done.delete(key);
        }
        const replies = await Promise.all(this.procs.map((p) => p.request<{ id: number; ok: boolean; report?: WatchReport }>({ op: 'unwatch', key }, 10_000)));
        for (const r of replies) {
          if (r.report) {
            reports.push(r.report);
          }
        }
        const arrivals = reports.flatMap((r) => r.arrivals);
        return {
          arrivals,
          unexpected: reports.reduce((n, r) => n + r.unexpected, 0),
          revision: Math.max(0, ...reports.map((r) => r.revision)),
          complete: arrivals.length >= expected.length,
        };
      },
    };
  }

  async state(): Promise<StateReply[]> {
    return Promise.all(this.procs.map((p) => p.request<StateReply>({ op: 'state' }, 30_000)));
  }

  async stalls(): Promise<StallsReply[]> {
    return Promise.all(this.procs.map((p) => p.request<StallsReply>({ op: 'stalls' }, 30_000)));
  }

  async disconnect(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.request({ op: 'disconnect' }, 10_000).catch(() => undefined)));
  }

  /** Closes the IPC channels (each process then drops its streams and exits) and kills what is left. */
  kill(): void {
    for (const p of this.procs) {
      if (p.child.connected) {
        p.child.disconnect();
      }
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGTERM');
      }
    }
  }

  /** Last resort from a synchronous `exit` handler. */
  killNow(): void {
    for (const p of this.procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
      }
    }
  }
}
