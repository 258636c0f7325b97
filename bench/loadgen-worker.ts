import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { diffStats, Fleet, type DeltaWatch, type SimAgent } from './sim-agent';
import { clockMs, type LoadGenReply, type LoadGenRequest, type WatchReport } from './loadgen';

/*
 * A load-generator process of the scale benchmark (bench/scale.ts, through bench/loadgen.ts):
 * hosts a share of the simulated agents (bench/sim-agent.ts) and does what the parent asks over
 * the IPC channel. Agents are known to the parent by their global index; times go back on the
 * machine's monotonic clock (clockMs), which every process reads alike.
 */

const fleet = new Fleet();
/** Agents reconnected between two turns of the event loop in a storm (see 'sync'). */
const OPEN_SLICE = 50;
/**
 * No stack traces in this process: grpc-js makes an Error with the caller's stack for every call
 * that ends (each cancelled stream of a storm), and capturing and formatting them took 4 % of a
 * load generator's CPU in a resume storm. What it reports of an error is the message.
 */
Error.stackTraceLimit = 0;
/** Global index of each local agent, and the reverse. */
let globals: number[] = [];
const localOf = new Map<number, number>();
const watches = new Map<string, DeltaWatch>();
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

/** performance.now() of this process -> clockMs. */
const offset = clockMs() - performance.now();
const abs = (t: number): number => (t > 0 ? t + offset : NaN);

/**
 * This process's own stalls, on the shared clock, for the writes' figures: a tick of a 10 ms
 * timer that came STALL_MS or more late ([clockMs when it fired, ms late]), and GC pauses of
 * GC_PAUSE_MS or more ([clockMs at their start, ms, kind]). An agent's arrival time is taken on
 * this event loop: a stall here delays it as much as one in a replica.
 */
const STALL_MS = 30;
const GC_PAUSE_MS = 10;
const stalls: [number, number][] = [];
const gcPauses: [number, number, number][] = [];
let lastTick = performance.now();
setInterval(() => {
  const now = performance.now();
  if (now - lastTick - 10 >= STALL_MS && stalls.length < 10_000) {
    stalls.push([abs(now), now - lastTick - 10]);
  }
  lastTick = now;
}, 10).unref();
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.duration >= GC_PAUSE_MS && gcPauses.length < 10_000) {
      gcPauses.push([abs(e.startTime), e.duration, ((e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0)]);
    }
  }
}).observe({ entryTypes: ['gc'] });

function members(indexes?: number[]): SimAgent[] {
  return indexes ? indexes.map((g) => fleet.agents[localOf.get(g)!]).filter((a) => a !== undefined) : fleet.agents;
}

function report(watch: DeltaWatch): WatchReport {
  return {
    arrivals: [...watch.arrivals].map(([local, at]) => [globals[local], abs(at), watch.bytes.get(local) ?? 0, watch.entries.get(local) ?? 0]),
    unexpected: watch.unexpected,
    revision: watch.revision,
  };
}

async function handle(req: LoadGenRequest): Promise<LoadGenReply> {
  switch (req.op) {
    case 'init':
      globals = req.agents.map((a) => a.index);
      req.agents.forEach((a, local) => {
        localOf.set(a.index, local);
        fleet.add(a.hostName, a.vtepIp, a.target, req.channelOptions);
      });
      return { id: req.id, ok: true };
    case 'sync': {
      // Sets the target before anything reconnects: acks from before do not count.
      const group = members(req.indexes);
      const connectedOnly = req.connect === undefined;
      const targets = connectedOnly ? group.filter((a) => a.connected) : group;
      fleet.setSyncTarget(req.revision, targets);
      const before = fleet.totals(group);
      loopDelay.reset();
      const t0 = performance.now();
      if (req.connect !== undefined) {
        for (const agent of group) {
          agent.disconnect();
        }
        // Reopened a slice at a time, the event loop served between slices: the first agents'
        // connections leave (and are answered) while the others are still being made, as hosts
        // reconnecting each on its own would. In one piece, making 1,250 channels held this process
        // 1.4-2.4 s before the first TCP connect left it, the replicas idle meanwhile.
        for (let i = 0; i < group.length; i += OPEN_SLICE) {
          for (const agent of group.slice(i, i + OPEN_SLICE)) {
            agent.connect(req.connect === 'fresh');
          }
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } else {
        fleet.countAlreadySynced(t0);
      }
      const issuedMs = performance.now() - t0;
      const ok = await fleet.waitSynced(req.timeoutMs);
      const times = fleet.syncTimes(targets);
      return {
        id: req.id,
        ok,
        members: targets.length,
        synced: times.filter((t) => t > 0).length,
        times: times.map(abs),
        firstMessage: targets.map((a) => abs(a.firstMessageAt)),
        issuedMs,
        stats: diffStats(fleet.totals(group), before),
        lastError: group.find((a) => a.lastError)?.lastError,
        loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
        loopDelayMaxMs: loopDelay.max / 1e6,
      };
    }
    case 'watch': {
      const expected = new Set(req.expected.map((g) => localOf.get(g)).filter((l): l is number => l !== undefined));
      const watch = fleet.watch(req.key, expected);
      watches.set(req.key, watch);
      void watch.done.then(() => {
        if (watches.get(req.key) === watch) {
          process.send?.({ event: 'watchDone', key: req.key, report: report(watch) });
        }
      });
      return { id: req.id, ok: true };
    }
    case 'unwatch': {
      const watch = watches.get(req.key);
      watches.delete(req.key);
      if (watch) {
        fleet.unwatch(watch);
      }
      return { id: req.id, ok: true, report: watch ? report(watch) : undefined };
    }
    case 'state':
      return {
        id: req.id,
        ok: true,
        stats: fleet.totals(),
        spans: fleet.agents.map((a) => [globals[a.index], a.spanSize, a.connected ? 1 : 0]),
        heapUsedMb: process.memoryUsage().heapUsed / 1e6,
      };
    case 'stalls': {
      const reply = { id: req.id, ok: true as const, stalls: stalls.splice(0), gcPauses: gcPauses.splice(0) };
      return reply;
    }
    case 'disconnect':
      fleet.disconnectAll();
      return { id: req.id, ok: true };
  }
}

process.on('message', (req: LoadGenRequest) => {
  handle(req).then(
    (reply) => process.send?.(reply),
    (err: unknown) => process.send?.({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});

// The parent is gone (or closed the channel): drop every stream and leave.
process.on('disconnect', () => {
  fleet.disconnectAll();
  process.exit(0);
});
// A Ctrl-C reaches the whole process group when the bench runs in a terminal: the parent cleans up, this one just leaves.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    fleet.disconnectAll();
    process.exit(130);
  });
}
