import Redis from 'ioredis';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchToken, ControllerProcess, controllerEnv, freePort, redactedEnv } from './controller-process';
import { JsonHttpClient } from './http-client';
import { ovnCentralMissing, OvnCentral, ovnToolVersion } from './ovn-central';
import { OvsdbClient } from './ovsdb-client';
import { runPool, type PoolResult } from './pool';
import { PortFactory, type PortInput } from './port-factory';
import { batchBodies, createBatches, createSingles, portFixtures, PORT_WORKLOAD, singleBodies } from './port-workload';
import { startPrivateRedis, type PrivateRedis } from '../test/support/private-redis';
import { redisInfoField, redisSnapshot } from './redis-tools';
import { dec, exitWith, gitDescribe, int, machineCpu, pad, ROOT, round2, verdict, writeResults } from './report';
import { guardPhase } from './phase-guard';
import { benchControllerRuntime } from './runtime-settings';

/*
 * OVN peer benchmark: `BENCH_ONLY=ovn npm run bench` (not in the default run; about a minute).
 * It needs Debian's ovn-central (`apt-get install -y ovn-central`); without it, it says so and
 * skips, exit 0.
 *
 * The port workload of the REST benchmark (bench/port-workload.ts: 100 segments; each port a MAC
 * and an IPv4 of its segment's /16) runs three times, one after the other on this machine, each
 * alone on it:
 *
 *   1. overlayd: a controller child process with the deployment's runtime settings, over REST,
 *      on a redis-server of its own (free port, temp dir; not the shared one, as OVN's servers are
 *      its own) with the durability of a standalone OVSDB: a standalone ovsdb-server appends each
 *      commit to its file without fsync (it fsyncs only a transaction that asks to be durable),
 *      so Redis appends each write to its AOF without fsync (`appendfsync no`);
 *   2. a private OVN central (bench/ovn-central.ts: NB and SB ovsdb-server, ovn-northd), written
 *      as an OVN management system's library writes it: OVSDB `transact` over the NB socket from
 *      this process (per port an insert into Logical_Switch_Port with `addresses` "<mac> <ip>" and
 *      a mutation of its switch's `ports`; a batch is one transaction), one connection per call
 *      in flight. The server checks the schema and the unique port name; no duplicate-address
 *      check (ovn-nbctl's is client-side);
 *   3. a fresh private OVN central written with ovn-nbctl in daemon mode (`lsp-add` and
 *      `lsp-set-addresses` per port; a batch is one invocation of 1,000 of each; with its
 *      duplicate-address check). The daemon runs one command at a time, so one-per-call creates
 *      run NBCTL_SINGLE_CONCURRENCY invocations in flight, enough to keep it busy (more add only
 *      process starts).
 *
 * Each: 1,000 ports created one per call (a warm-up; ovn-nbctl: one batch), then 9,000 in
 * batches of 1,000, 2 in flight: the batch rate, 10,000 stored; then PORT_ROUNDS rounds of
 * one-per-call creates (64 in flight; up to 2,000 or 2.5 s each; the median round). For OVN the
 * rate to the NB commit, and to SB synced: after the batches and after each round,
 * `ovn-nbctl --wait=sb sync` (returns once ovn-northd has translated every NB change so far).
 *
 * Figures: the ratios ours / OVN's faster way (NB commit, the counterpart of our 2xx: the write
 * is stored) for batch and one per call, target >= 1; memory at 10,000 ports, the RSS of the
 * controller and its redis-server against that of NB + SB ovsdb-server and ovn-northd, target
 * <= 1. These targets are ours: the issue sets none. Printed, and written to
 * .bench-out/ovn.json; a missed target is reported, only a broken run exits non-zero. Every
 * process started is stopped and every temp dir removed at the end, also after an error or a
 * signal.
 */

const CONTROLLER_SCRIPT = path.join(ROOT, 'dist', 'src', 'controller', 'main.js');
const OUT_FILE = path.join(ROOT, '.bench-out', 'ovn.json');
const NB = 'OVN_Northbound';

const { segments: SEGMENTS, hosts: HOSTS, batchSize: BATCH_SIZE, batchInFlight: BATCH_IN_FLIGHT, singleConcurrency: SINGLE_CONCURRENCY } = PORT_WORKLOAD;
const WARM_PORTS = 1_000;
const STORED = 10_000;
const BATCH_CALLS = (STORED - WARM_PORTS) / BATCH_SIZE;
const PORT_ROUNDS = 3;
/** ovn-nbctl invocations in flight for one-per-call creates through the daemon (it runs one command at a time). */
const NBCTL_SINGLE_CONCURRENCY = 8;
const SYNC_TIMEOUT_MS = 120_000;
const HARD_DEADLINE_MS = 360_000;

const TARGETS = { minRateRatio: 1, maxMemoryRatio: 1 };

interface Target {
  name: string;
  value: number;
  target: string;
  pass: boolean;
}

/** One way of writing the workload: overlayd over REST, or OVN one way or the other. */
interface Side {
  label: string;
  startedAt: string;
  batch: PoolResult;
  /** OVN: the batches and the sync after them (ms), for the rate to SB synced. */
  batchSyncMs?: number;
  /** CPU seconds each process used during the batches (and the sync after them). */
  batchCpu: Record<string, number>;
  singles: { pool: PoolResult; syncMs?: number }[];
  single: { pool: PoolResult; syncMs?: number };
  /** RSS at 10,000 ports (kB per process). */
  memory: { name: string; kb: number; counted: boolean }[];
  /** How it ran (for the results file). */
  setup: Record<string, unknown>;
}

interface Results {
  meta: Record<string, unknown>;
  sides: Record<string, unknown>[];
  targets: Target[];
  errors: string[];
}

const started = {
  controllers: [] as ControllerProcess[],
  clients: [] as { close: () => void }[],
  ovn: [] as OvnCentral[],
  redis: [] as PrivateRedis[],
};
let aborted = false;
const shouldStop = (): boolean => aborted;

const rateSb = (items: number, elapsedMs: number, syncMs: number | undefined): number => (syncMs === undefined ? NaN : (items * 1000) / (elapsedMs + syncMs));
const medianRound = <T extends { pool: PoolResult }>(rounds: T[]): T => [...rounds].sort((a, b) => a.pool.rate - b.pool.rate)[Math.floor((rounds.length - 1) / 2)];

function checkPool(what: string, r: PoolResult, expectItems?: number): void {
  if (r.errors || r.stoppedBy === 'errors' || r.stoppedBy === 'abort' || (expectItems !== undefined && r.items !== expectItems)) {
    throw new Error(`${what}: ${r.items} created, ${r.errors} failed calls${r.stoppedBy ? `, stopped by ${r.stoppedBy}` : ''}${r.firstError ? `; first: ${r.firstError}` : ''}`);
  }
}

/** CPU seconds of named processes, read before and after `run`. */
async function withCpu<T>(read: () => Map<string, number>, run: () => Promise<T>): Promise<{ value: T; cpu: Record<string, number> }> {
  const before = read();
  const value = await run();
  const after = read();
  return { value, cpu: Object.fromEntries([...after].map(([name, s]) => [name, +(s - (before.get(name) ?? NaN)).toFixed(2)])) };
}

function printSide(side: Side): void {
  const b = side.batch;
  const sb = rateSb(b.items, b.elapsedMs, side.batchSyncMs);
  console.log(
    `  batches (${int(b.items)} ports, ${BATCH_SIZE}/call, ${BATCH_IN_FLIGHT} in flight) ${int(b.rate)} ports/s${side.batchSyncMs === undefined ? '' : ` to the NB commit, ${int(sb)} ports/s to SB synced (${dec(b.elapsedMs / 1000, 2)} s + sync ${dec(side.batchSyncMs / 1000, 2)} s)`}; p50 ${dec(b.latencyMs.p50)} ms per call`,
  );
  console.log(`      CPU s during them: ${Object.entries(side.batchCpu).map(([name, s]) => `${name} ${dec(s, 2)}`).join(', ')}`);
  const s = side.single;
  const roundsText = side.singles.map((r) => `${int(r.pool.rate)}${r.syncMs === undefined ? '' : ` (${int(rateSb(r.pool.items, r.pool.elapsedMs, r.syncMs))} to SB)`}`).join(' / ');
  console.log(`  one per call, ${PORT_ROUNDS} rounds: ${roundsText} ports/s; median ${int(s.pool.rate)} ports/s, p50 ${dec(s.pool.latencyMs.p50)} ms, p99 ${dec(s.pool.latencyMs.p99)} ms`);
  console.log(`  memory at ${int(STORED)} ports: ${side.memory.map((m) => `${m.name} ${dec(m.kb / 1024)} MiB${m.counted ? '' : ' (not counted)'}`).join(', ')}; counted ${dec(memoryKb(side) / 1024)} MiB`);
}

const memoryKb = (side: Side): number => side.memory.filter((m) => m.counted).reduce((sum, m) => sum + m.kb, 0);

function sideJson(side: Side): Record<string, unknown> {
  const pool = (r: PoolResult): Record<string, unknown> => ({
    rate: Math.round(r.rate),
    items: r.items,
    calls: r.calls,
    errors: r.errors,
    elapsedMs: Math.round(r.elapsedMs),
    latencyMs: { p50: round2(r.latencyMs.p50), p99: round2(r.latencyMs.p99), max: round2(r.latencyMs.max) },
  });
  return {
    label: side.label,
    startedAt: side.startedAt,
    setup: side.setup,
    batch: { ...pool(side.batch), syncMs: side.batchSyncMs === undefined ? null : Math.round(side.batchSyncMs), rateToSbSynced: side.batchSyncMs === undefined ? null : Math.round(rateSb(side.batch.items, side.batch.elapsedMs, side.batchSyncMs)) },
    batchCpuSeconds: side.batchCpu,
    singleRounds: side.singles.map((r) => ({ ...pool(r.pool), syncMs: r.syncMs === undefined ? null : Math.round(r.syncMs), rateToSbSynced: r.syncMs === undefined ? null : Math.round(rateSb(r.pool.items, r.pool.elapsedMs, r.syncMs)) })),
    singleMedianRate: Math.round(side.single.pool.rate),
    memoryAt10kKb: Object.fromEntries(side.memory.map((m) => [m.name, Math.round(m.kb)])),
    countedMemoryKb: Math.round(memoryKb(side)),
  };
}

// ---------------------------------------------------------------------------------------------
// 1. overlayd

async function ours(): Promise<Side> {
  const startedAt = new Date().toISOString();
  const store = await startPrivateRedis({ appendfsync: 'no' });
  started.redis.push(store);
  const redis = new Redis(store.url, { maxRetriesPerRequest: 1, connectTimeout: 5_000 });
  redis.on('error', () => undefined);
  started.clients.push({ close: () => redis.disconnect() });
  const prefix = `bench-ovn-${randomBytes(4).toString('hex')}`;
  const httpPort = await freePort();
  // The deployment's memory settings (deploy/overlayd-runtime.conf), as the sync bench runs it, unless BENCH_CONTROLLER_RUNTIME=none.
  const runtime = benchControllerRuntime(ROOT);
  const env = { ...(await controllerEnv({ REDIS_URL: store.url }, prefix, httpPort, benchToken())), ...runtime.env };
  const script = process.env.BENCH_CONTROLLER_SCRIPT ?? CONTROLLER_SCRIPT;
  const ctl = await ControllerProcess.start({ script, env, port: httpPort, readyTimeoutMs: 20_000, nodeArgs: runtime.nodeFlags });
  started.controllers.push(ctl);
  const client = new JsonHttpClient('127.0.0.1', httpPort, SINGLE_CONCURRENCY, { token: env.OVERLAY_BOOTSTRAP_TOKEN });
  started.clients.push(client);
  console.log(`\n1. overlayd over REST (${startedAt}): ${path.relative(ROOT, script)} pid ${ctl.pid}${runtime.nodeFlags.length ? `, node ${runtime.nodeFlags.join(' ')}` : ''}; redis-server :${store.port} of its own, AOF appendfsync no`);

  const factory = await portFixtures(client, { name: 'ovn-peer', segments: SEGMENTS, hosts: HOSTS });
  checkPool('warm-up', await createSingles(client, singleBodies(factory, WARM_PORTS), { maxMs: 30_000, shouldStop }), WARM_PORTS);
  const bodies = batchBodies(factory, BATCH_CALLS);
  const cpu = (): Map<string, number> => new Map([['controller', ctl.cpuSeconds()]]);
  const r0 = await redisSnapshot(redis);
  const u0 = process.cpuUsage();
  const { value: batch, cpu: batchCpu } = await withCpu(cpu, () => createBatches(client, bodies, { maxMs: 60_000, shouldStop }));
  const u1 = process.cpuUsage(u0);
  const r1 = await redisSnapshot(redis);
  checkPool('batches', batch, BATCH_CALLS * BATCH_SIZE);
  batchCpu['redis-server'] = +(r1.cpuSeconds - r0.cpuSeconds).toFixed(2);
  batchCpu['load generator'] = +((u1.user + u1.system) / 1e6).toFixed(2);

  const memory = [
    { name: 'controller RSS', kb: ctl.memory()?.rssKb ?? NaN, counted: true },
    { name: 'redis-server RSS', kb: Number(await redisInfoField(redis, 'memory', 'used_memory_rss')) / 1024, counted: true },
  ];

  const singles: Side['singles'] = [];
  for (let r = 0; r < PORT_ROUNDS && !aborted; r++) {
    const pool = await createSingles(client, singleBodies(factory, PORT_WORKLOAD.singleRoundMax), { maxMs: PORT_WORKLOAD.singleRoundMs, shouldStop });
    checkPool(`one-per-call round ${r + 1}`, pool);
    singles.push({ pool });
  }
  if (aborted) {
    throw new Error('aborted');
  }
  client.close();
  redis.disconnect();
  await ctl.stop();
  started.controllers.splice(started.controllers.indexOf(ctl), 1);
  await store.destroy();
  started.redis.splice(started.redis.indexOf(store), 1);
  const setup = { script: path.relative(ROOT, script), nodeArgs: runtime.nodeFlags, env: redactedEnv(env), redis: 'redis-server of its own, appendonly yes, appendfsync no', singleConcurrency: SINGLE_CONCURRENCY };
  const side: Side = { label: 'overlayd (REST)', startedAt, batch, batchCpu, singles, single: medianRound(singles), memory, setup };
  printSide(side);
  return side;
}

// ---------------------------------------------------------------------------------------------
// OVN: the same ports, a logical switch per segment.

/** The factory's ports for OVN: segment i is logical switch seg-<i>; the same MACs and addresses as ours (hosts are not bound: that is ovn-controller's). */
function ovnFactory(): PortFactory {
  return new PortFactory(
    Array.from({ length: SEGMENTS }, (_, i) => ({ id: `seg-${i}`, tenantId: 'ovn', index: i })),
    ['none'],
  );
}

const lspName = (p: PortInput): string => p.vmId;
const lspAddresses = (p: PortInput): string => `${p.mac} ${p.ips[0]}`;

async function startCentral(label: string, startedAt: string): Promise<OvnCentral> {
  if (aborted) {
    throw new Error('aborted');
  }
  const ovn = new OvnCentral();
  started.ovn.push(ovn);
  await ovn.start({ readyTimeoutMs: 20_000 });
  console.log(`\n${label} (${startedAt}): a private OVN central in ${ovn.dir}: ${ovn.processes().map((p) => `${p.name} pid ${p.pid}`).join(', ')}`);
  return ovn;
}

async function stopCentral(ovn: OvnCentral): Promise<void> {
  started.ovn.splice(started.ovn.indexOf(ovn), 1);
  await ovn.stop();
}

/** How one OVN side writes ports. */
interface OvnWriter {
  batch: (ports: PortInput[]) => Promise<void>;
  single: (port: PortInput) => Promise<void>;
  singleConcurrency: number;
  /** The warm-up (the first 1,000 ports) one per call, as ours, or as one batch (ovn-nbctl: one per call would take minutes). */
  warmUp: 'single' | 'batch';
}

const selfCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** The OVN side's figures: warm-up, batches then `--wait=sb sync`, memory, one-per-call rounds each followed by a sync. */
async function ovnWorkload(ovn: OvnCentral, label: string, startedAt: string, write: OvnWriter, setup: Record<string, unknown>): Promise<Side> {
  const factory = ovnFactory();
  const warm = factory.take(WARM_PORTS);
  if (write.warmUp === 'batch') {
    await write.batch(warm);
  } else {
    checkPool('warm-up', await runPool({ count: warm.length, concurrency: write.singleConcurrency, maxMs: 60_000, shouldStop, maxErrors: 1, task: async (i) => (await write.single(warm[i]), 1) }), WARM_PORTS);
  }
  // northd done with the warm-up: the batches' time to SB synced is theirs alone.
  await ovn.syncSb(SYNC_TIMEOUT_MS);

  const batches = Array.from({ length: BATCH_CALLS }, () => factory.take(BATCH_SIZE));
  const { value: batchRun, cpu: batchCpu } = await withCpu(
    () => new Map([...ovn.cpuSeconds(), ['load generator', selfCpuSeconds()]]),
    async () => {
      const batch = await runPool({ count: batches.length, concurrency: BATCH_IN_FLIGHT, maxMs: 120_000, shouldStop, maxErrors: 1, task: async (i) => (await write.batch(batches[i]), batches[i].length) });
      checkPool('batches', batch, BATCH_CALLS * BATCH_SIZE);
      return { batch, syncMs: await ovn.syncSb(SYNC_TIMEOUT_MS) };
    },
  );
  ovn.checkRunning();
  const memory = ovn.memory().map((m) => ({ name: `${m.name} RSS`, kb: m.rssKb, counted: m.central }));

  const singles: Side['singles'] = [];
  for (let r = 0; r < PORT_ROUNDS && !aborted; r++) {
    const ports = factory.take(PORT_WORKLOAD.singleRoundMax);
    const pool = await runPool({ count: ports.length, concurrency: write.singleConcurrency, maxMs: PORT_WORKLOAD.singleRoundMs, shouldStop, task: async (i) => (await write.single(ports[i]), 1) });
    checkPool(`one-per-call round ${r + 1}`, pool);
    singles.push({ pool, syncMs: await ovn.syncSb(SYNC_TIMEOUT_MS) });
  }
  if (aborted) {
    throw new Error('aborted');
  }
  ovn.checkRunning();
  const side: Side = { label, startedAt, batch: batchRun.batch, batchSyncMs: batchRun.syncMs, batchCpu, singles, single: medianRound(singles), memory, setup: { ...setup, singleConcurrency: write.singleConcurrency, warmUp: write.warmUp } };
  printSide(side);
  return side;
}

// ---------------------------------------------------------------------------------------------
// 2. OVN through OVSDB transact

async function ovnTransact(): Promise<Side> {
  const startedAt = new Date().toISOString();
  const label = 'OVN, OVSDB transact';
  const ovn = await startCentral(`2. ${label} over the NB socket, one connection per call in flight`, startedAt);
  const clients = await Promise.all(Array.from({ length: SINGLE_CONCURRENCY }, () => OvsdbClient.connect(ovn.nbSocket)));
  started.clients.push(...clients);
  const created = await clients[0].transact(
    NB,
    Array.from({ length: SEGMENTS }, (_, i) => ({ op: 'insert', table: 'Logical_Switch', row: { name: `seg-${i}` }, 'uuid-name': `ls${i}` })),
  );
  const switches = new Map(created.map((r, i) => [`seg-${i}`, r.uuid?.[1]]));
  /** Inserts the ports and adds them to their switches' `ports` (a port no switch refers to would be garbage-collected: the table is not a root). */
  const ops = (ports: PortInput[]): Record<string, unknown>[] => {
    const bySwitch = new Map<string, unknown[]>();
    const inserts = ports.map((p, i) => {
      bySwitch.set(p.segmentId, [...(bySwitch.get(p.segmentId) ?? []), ['named-uuid', `p${i}`]]);
      return { op: 'insert', table: 'Logical_Switch_Port', row: { name: lspName(p), addresses: ['set', [lspAddresses(p)]] }, 'uuid-name': `p${i}` };
    });
    const mutations = [...bySwitch].map(([sw, refs]) => ({ op: 'mutate', table: 'Logical_Switch', where: [['_uuid', '==', ['uuid', switches.get(sw)]]], mutations: [['ports', 'insert', ['set', refs]]] }));
    return [...inserts, ...mutations];
  };
  let next = 0;
  const client = (): OvsdbClient => clients[next++ % clients.length];
  const side = await ovnWorkload(ovn, label, startedAt, {
    batch: async (ports) => void (await client().transact(NB, ops(ports))),
    single: async (port) => void (await client().transact(NB, ops([port]))),
    singleConcurrency: SINGLE_CONCURRENCY,
    warmUp: 'single',
  }, { writer: 'OVSDB transact over the NB Unix socket from the load generator', connections: clients.length });
  for (const c of clients) {
    c.close();
  }
  await stopCentral(ovn);
  return side;
}

// ---------------------------------------------------------------------------------------------
// 3. OVN through the ovn-nbctl daemon

async function ovnNbctl(): Promise<Side> {
  const startedAt = new Date().toISOString();
  const label = 'OVN, ovn-nbctl daemon';
  const ovn = await startCentral(`3. ${label} (lsp-add + lsp-set-addresses; one-per-call: ${NBCTL_SINGLE_CONCURRENCY} invocations in flight)`, startedAt);
  await ovn.startNbctlDaemon();
  await ovn.nbctl(Array.from({ length: SEGMENTS }, (_, i) => ['--', 'ls-add', `seg-${i}`]).flat());
  const commands = (ports: PortInput[]): string[] => ports.flatMap((p) => ['--', 'lsp-add', p.segmentId, lspName(p), '--', 'lsp-set-addresses', lspName(p), lspAddresses(p)]);
  const side = await ovnWorkload(ovn, label, startedAt, {
    batch: async (ports) => void (await ovn.nbctl(commands(ports))),
    single: async (port) => void (await ovn.nbctl(commands([port]))),
    singleConcurrency: NBCTL_SINGLE_CONCURRENCY,
    warmUp: 'batch',
  }, { writer: 'ovn-nbctl through its daemon (OVN_NB_DAEMON), lsp-add + lsp-set-addresses per port' });
  await stopCentral(ovn);
  return side;
}

// ---------------------------------------------------------------------------------------------

function compare(our: Side, peers: Side[], results: Results): void {
  console.log(`\nOurs against OVN (NB commit: the write stored, as our 2xx; the target is ours, the issue sets none)`);
  const fastest = (rate: (s: Side) => number): Side => peers.reduce((a, b) => (rate(b) > rate(a) ? b : a));
  const rows: { name: string; ours: number; rate: (s: Side) => number; sb: (s: Side) => number }[] = [
    { name: 'batch', ours: our.batch.rate, rate: (s) => s.batch.rate, sb: (s) => rateSb(s.batch.items, s.batch.elapsedMs, s.batchSyncMs) },
    { name: 'one per call', ours: our.single.pool.rate, rate: (s) => s.single.pool.rate, sb: (s) => rateSb(s.single.pool.items, s.single.pool.elapsedMs, s.single.syncMs) },
  ];
  for (const row of rows) {
    const best = fastest(row.rate);
    const ratio = row.ours / row.rate(best);
    const pass = ratio >= TARGETS.minRateRatio;
    console.log(`  ${pad(`${row.name}: ours / ${best.label}`, 52)} ${int(row.ours)} / ${int(row.rate(best))} ports/s = ${dec(ratio, 2)}   target >= ${TARGETS.minRateRatio}  ${verdict(pass)}`);
    console.log(`      against each: ${peers.map((p) => `${p.label} ${dec(row.ours / row.rate(p), 2)} (NB commit), ${dec(row.ours / row.sb(p), 2)} (SB synced)`).join('; ')}`);
    results.targets.push({ name: `${row.name} ports/s, ours / OVN (${best.label.replace('OVN, ', '')})`, value: round2(ratio) ?? NaN, target: `>= ${TARGETS.minRateRatio}`, pass });
  }
  const smallest = peers.reduce((a, b) => (memoryKb(b) < memoryKb(a) ? b : a));
  const memRatio = memoryKb(our) / memoryKb(smallest);
  const memPass = memRatio <= TARGETS.maxMemoryRatio;
  console.log(
    `  ${pad(`memory at ${int(STORED)} ports: ours / ${smallest.label}`, 52)} ${dec(memoryKb(our) / 1024)} / ${dec(memoryKb(smallest) / 1024)} MiB = ${dec(memRatio, 2)}   target <= ${TARGETS.maxMemoryRatio}  ${verdict(memPass)}`,
  );
  console.log(`      ours: RSS of the controller + its redis-server; OVN: RSS of NB + SB ovsdb-server + ovn-northd (the ovn-nbctl daemon, a client, not counted)`);
  results.targets.push({ name: 'memory @10k, ours / OVN (NB+SB+northd)', value: round2(memRatio) ?? NaN, target: `<= ${TARGETS.maxMemoryRatio}`, pass: memPass });
}

function printSummary(sides: Side[], results: Results): void {
  if (!sides.length) {
    return;
  }
  console.log('\nSummary');
  for (const s of sides) {
    const sb = s.batchSyncMs === undefined ? '' : ` (SB synced ${int(rateSb(s.batch.items, s.batch.elapsedMs, s.batchSyncMs))})`;
    const singleSb = s.single.syncMs === undefined ? '' : ` (SB synced ${int(rateSb(s.single.pool.items, s.single.pool.elapsedMs, s.single.syncMs))})`;
    console.log(`  ${pad(s.label, 26)} batch ${int(s.batch.rate)}${sb}, one per call ${int(s.single.pool.rate)}${singleSb} ports/s; memory @10k ${dec(memoryKb(s) / 1024)} MiB`);
  }
  for (const t of results.targets) {
    console.log(`  ${pad(t.name, 52)} ${String(t.value).padStart(7)}   target ${pad(t.target, 6)} ${verdict(t.pass)}`);
  }
}

async function cleanup(): Promise<void> {
  for (const c of started.clients.splice(0)) {
    c.close();
  }
  await Promise.all(started.controllers.splice(0).map((c) => c.stop().catch(() => undefined)));
  await Promise.all(started.ovn.splice(0).map((o) => o.stop().catch(() => undefined)));
  await Promise.all(started.redis.splice(0).map((r) => r.destroy().catch(() => undefined)));
}

async function main(): Promise<number> {
  const missing = ovnCentralMissing();
  if (missing.length) {
    console.log(`OVN peer benchmark skipped: ovn-central is not installed (missing ${missing.join(', ')}; Debian: apt-get install -y ovn-central)`);
    return 0;
  }
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore', timeout: 5_000 }).status !== 0) {
    console.log('OVN peer benchmark skipped: redis-server is not installed (Debian: apt-get install -y redis-server)');
    return 0;
  }
  const wallStart = performance.now();
  const results: Results = { meta: {}, sides: [], targets: [], errors: [] };
  const versions = { ovnNbctl: ovnToolVersion('ovn-nbctl'), ovsdbServer: ovnToolVersion('ovsdb-server'), ovnNorthd: ovnToolVersion('ovn-northd') };
  console.log(`OVN peer benchmark — commit ${gitDescribe()}, node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}); ${versions.ovnNorthd}, ${versions.ovsdbServer}`);
  console.log(
    `The same ports (${SEGMENTS} segments / logical switches; a MAC and an IPv4 each): ${int(WARM_PORTS)} one per call (warm-up), ${BATCH_CALLS} batches of ${int(BATCH_SIZE)} (${BATCH_IN_FLIGHT} in flight) to ${int(STORED)} stored, then ${PORT_ROUNDS} rounds of one per call (up to ${int(PORT_WORKLOAD.singleRoundMax)} or ${dec(PORT_WORKLOAD.singleRoundMs / 1000)} s); each side alone on the machine, one after the other.`,
  );
  const load = os.loadavg().map((l) => +l.toFixed(2));
  console.log(`Load average at the start: ${load.join(', ')}`);
  results.meta = { commit: gitDescribe(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', ...versions, loadAverageAtStart: load, startedAt: new Date().toISOString() };

  let cleaning: Promise<void> | undefined;
  const cleanupOnce = (): Promise<void> => (cleaning ??= cleanup());
  process.on('exit', () => {
    started.controllers.forEach((c) => c.killNow());
    started.ovn.forEach((o) => o.killNow());
  });
  const guard = guardPhase({ name: 'run', stop: () => (aborted = true), cleanup: cleanupOnce, hardMs: HARD_DEADLINE_MS, hardAction: 'stopping everything' });

  const sides: Side[] = [];
  const m0 = machineCpu();
  let failed = await guard.run(
    async () => {
      sides.push(await ours());
      sides.push(await ovnTransact());
      sides.push(await ovnNbctl());
      compare(sides[0], sides.slice(1), results);
    },
    {
      errors: results.errors,
      onError: () => {
        for (const c of started.controllers) {
          console.error(`controller log (last lines):\n${c.logTail()}`);
        }
      },
    },
  );
  const m1 = machineCpu();
  results.meta.machineBusyPct = m1.total > m0.total ? Math.round(((m1.busy - m0.busy) / (m1.total - m0.total)) * 100) : null;
  results.meta.loadAverageAtEnd = os.loadavg().map((l) => +l.toFixed(2));
  results.sides = sides.map(sideJson);
  printSummary(sides, results);
  if (!writeResults(OUT_FILE, results, wallStart, performance.now())) {
    failed = true;
  }
  return failed ? 1 : 0;
}

exitWith(main());
