/**
 * `npm run demo` (as root): the overlay on real kernels, narrated, in about a minute.
 *
 * Three hypervisors in network namespaces on one underlay, overlayd in this process (as in the
 * system tests: its own key prefix on the Redis at REDIS_URL, else on 127.0.0.1:6379, else on a
 * redis-server of its own for the demo's duration), a real overlay-agent process per
 * hypervisor on the Linux dataplane (VXLAN, bridges, nftables). Then: pings across VXLAN, a
 * security group that refuses one VM and admits another until a PATCH adds it to the group, and
 * a mirror session copying one VM's traffic, both ways, to an analyzer VM on another hypervisor, and
 * a live migration while a third VM pings the migrating one every 10 ms (the mirror session follows
 * the VM). Every API call carries a
 * bearer token: the first admin token (the harness's OVERLAY_BOOTSTRAP_TOKEN) makes an operator
 * token, the demo works with that, and shows what the audit trail recorded. Everything it made is
 * removed at the end, on error and on Ctrl-C (and, should this process be killed, by the
 * topology's watchdog).
 *
 * It reuses the system tests' topology, agent process and controller harness; nothing here is
 * asserted, it shows what happens, and exits non-zero with the reason when a step fails.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { tapName } from '../src/agent/dataplane/names';
import { SessionRegistry } from '../src/controller/distribution/session-registry';
import { redisProbeUrl, startLocalRedis, type LocalRedis } from '../src/controller/dev/local-redis';
import { redactRedisUrl, redisProblem, unusableRedisMessage } from '../src/controller/store/redis-probe';
import { waitUntil } from '../test/support/agents';
import { api, dropPrefix, startController, type Harness } from '../test/support/controller-harness';
import { AgentProcess, ensureAgentBuilt } from '../test/system/agent-process';
import { EchoCapture } from '../test/system/capture';
import { must, systemTestSkipReason, Topology, trackProcess, trackRedisPrefix, type Vm } from '../test/system/topology';

/** The Redis the demo works in (demoRedis): REDIS_URL, 127.0.0.1:6379, or one of its own. */
let REDIS_URL = process.env.REDIS_URL ?? redisProbeUrl();
const PING_INTERVAL_MS = 10;

/** A TCP server on <ip>:<port>: answers each connection with one line. */
const SERVER_SCRIPT = `
const [host, port] = process.argv.slice(1);
require('net').createServer((c) => { c.on('error', () => {}); c.end('postgres says hello\\n'); })
  .listen(Number(port), host, () => console.log('listening'));
`;
/** A TCP client: prints "ok" with the server's line, or the error (a dropped SYN ends in "timeout"). */
const CLIENT_SCRIPT = `
const [host, port, timeoutMs] = process.argv.slice(1);
const done = (s) => { console.log(s); process.exit(0); };
setTimeout(() => done('timeout'), Number(timeoutMs));
const s = require('net').connect({ host, port: Number(port) });
s.on('error', (e) => done(e.code || e.message));
s.on('data', (d) => done('ok ' + d.toString().trim()));
`;

const t0 = Date.now();
/**
 * Set by the first Ctrl-C or SIGTERM; later ones (npm forwards the terminal's SIGINT a second
 * time) are ignored while tearing down. The steps stop at their next check, so that nothing new
 * is made while the teardown runs.
 */
let interrupted: NodeJS.Signals | undefined;
const say = (text: string) => console.log(text);
const step = (n: number, title: string) => {
  if (interrupted && n < 7) {
    throw new Error(`interrupted by ${interrupted}`);
  }
  say(`\n[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${n}. ${title}`);
};
const detail = (text: string) => say(`         ${text}`);

/** What the demo made, for teardown in reverse order. */
const state: {
  topology?: Topology;
  ctl?: Harness;
  prefix?: string;
  untrackRedis?: () => void;
  /** The redis-server the demo started, when the machine had none. */
  localRedis?: LocalRedis;
  agents: AgentProcess[];
  children: ChildProcess[];
  captures: EchoCapture[];
} = { agents: [], children: [], captures: [] };

/** Why the demo cannot run here, or undefined. */
async function prerequisiteProblem(): Promise<string | undefined> {
  const reason = systemTestSkipReason();
  if (reason) {
    return reason.replace('system tests need', 'the demo needs').replace('sudo npm run test:system', 'sudo npm run demo');
  }
  for (const [cmd, args, pkg] of [
    ['nft', ['--version'], 'nftables'],
    ['arping', ['-V'], 'iputils-arping'],
  ] as const) {
    try {
      execFileSync(cmd, args, { stdio: 'ignore' });
    } catch (err) {
      // arping -V exits 0 or 1 depending on the version; only a missing binary matters.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return `\`${cmd}\` is not available: install ${pkg}`;
      }
    }
  }
  return demoRedis();
}

/**
 * Where the demo's keys go: REDIS_URL when set (it must answer), else 127.0.0.1:6379 when a Redis
 * answers there, else a redis-server started for the demo (temp directory, no AOF), stopped and
 * removed by the teardown. Why none can be had, or undefined.
 */
async function demoRedis(): Promise<string | undefined> {
  const problem = await redisProblem(REDIS_URL, 2_000);
  if (problem === undefined) {
    return undefined;
  }
  if (process.env.REDIS_URL !== undefined) {
    return unusableRedisMessage(redactRedisUrl(REDIS_URL), problem);
  }
  const dir = mkdtempSync(join(tmpdir(), 'overlay-demo-redis-'));
  try {
    state.localRedis = await startLocalRedis({ dir, appendonly: false });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return `no REDIS_URL and no Redis at ${redactRedisUrl(REDIS_URL)}; ${(err as Error).message}`;
  }
  say(`(no Redis at ${redactRedisUrl(REDIS_URL)}: started redis-server on 127.0.0.1:${state.localRedis.port} for the demo, pid ${state.localRedis.pid}; the teardown stops it)`);
  REDIS_URL = state.localRedis.url;
  return undefined;
}

async function ping(from: Vm, to: Vm, count: number): Promise<{ ok: boolean; summary: string }> {
  const result = await state.topology!.exec(from.ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '1', '-q', to.ip]);
  const summary = result.stdout
    .split('\n')
    .filter((l) => /packets transmitted|rtt/.test(l))
    .join('; ');
  return { ok: result.code === 0, summary };
}

async function connect(from: Vm, to: Vm, port: number, timeoutMs = 1500): Promise<string> {
  const result = await state.topology!.exec(from.ns, process.execPath, ['-e', CLIENT_SCRIPT, to.ip, String(port), String(timeoutMs)]);
  return result.stdout.trim() || `client failed: ${result.stderr.trim()}`;
}

async function main(): Promise<void> {
  const problem = await prerequisiteProblem();
  if (problem) {
    throw new Error(`cannot run the demo: ${problem}`);
  }
  say('overlay demo: overlayd + three overlay-agents on real kernels (network namespaces, VXLAN, bridges, nftables)');
  if (ensureAgentBuilt()) {
    say('(built dist/agent/overlay-agent.js)');
  }

  // 1. Topology, controller, agents.
  const topology = await Topology.create(3);
  state.topology = topology;
  state.prefix = `demo-${randomBytes(4).toString('hex')}`;
  const ctl = await startController({ prefix: state.prefix, redisUrl: REDIS_URL });
  state.ctl = ctl;
  state.untrackRedis = trackRedisPrefix(REDIS_URL, state.prefix);
  // As an operator would: the admin token makes a token for the work, the work uses that.
  const operator = await api(ctl.url).post('/v1/tokens', { name: 'demo-operator', role: 'operator' });
  if (operator.status !== 201) {
    throw new Error(`POST /v1/tokens: ${operator.status} ${JSON.stringify(operator.body)}`);
  }
  const client = api(ctl.url, operator.body.token);
  const target = await topology.exposeController(ctl.grpcTarget);
  const hostIds = new Map<string, string>();
  for (const hv of topology.hypervisors) {
    const host = await client.post('/v1/hosts', { name: hv.name, vtepIp: hv.vtepIp });
    if (host.status !== 201) {
      throw new Error(`POST /v1/hosts ${hv.name}: ${host.status} ${JSON.stringify(host.body)}`);
    }
    hostIds.set(hv.name, host.body.id);
    const agent = new AgentProcess(topology, hv, target);
    state.agents.push(agent);
    agent.start();
  }
  const agentLogs = () => '\n' + state.agents.flatMap((a) => a.log.slice(-10)).join('\n');
  const sync = ctl.app.get(SessionRegistry);
  await waitUntil(() => [...hostIds.values()].every((id) => sync.session(id) !== undefined), 20_000, () => `agents did not connect${agentLogs()}`);
  step(1, '3 hypervisors (netns) on an underlay; controller up; agents connected');
  for (const hv of topology.hypervisors) {
    detail(`${hv.name}: namespace ${hv.ns}, VTEP ${hv.vtepIp}, overlay-agent pid ${state.agents.find((a) => a.hv === hv)!.pid}`);
  }
  detail(`overlayd: REST ${ctl.url}, gRPC ${ctl.grpcTarget}, Redis ${redactRedisUrl(REDIS_URL)} under key prefix {${state.prefix}}`);
  detail(`API tokens: admin token 'bootstrap' (from OVERLAY_BOOTSTRAP_TOKEN) made operator token 'demo-operator' (${operator.body.id}); every call below carries it`);

  // 2. Tenant, segment, three VMs; a ping across VXLAN.
  const tenant = await client.post('/v1/tenants', { name: 'demo' });
  const segment = await client.post('/v1/segments', { tenantId: tenant.body.id, name: 'demo-net', cidr: '10.0.0.0/24' });
  if (tenant.status !== 201 || segment.status !== 201) {
    throw new Error(`tenant/segment: ${tenant.status} ${segment.status} ${JSON.stringify(segment.body)}`);
  }
  const ports = new Map<string, string>();
  /** The port (unbound), the VM behind its tap, then the port bound to the host and realized there. */
  const addVm = async (name: string, hvName: string, ip: string): Promise<Vm> => {
    if (interrupted) {
      throw new Error(`interrupted by ${interrupted}`);
    }
    const port = await client.post('/v1/ports', { segmentId: segment.body.id, vmId: name, ips: [ip] });
    if (port.status !== 201) {
      throw new Error(`POST /v1/ports ${name}: ${port.status} ${JSON.stringify(port.body)}`);
    }
    ports.set(name, port.body.id);
    // web live-migrates (step 5): a VM with a NIC per host it is plugged on (Topology.addVm).
    const vm = await topology.addVm(name, topology.hypervisor(hvName), { tap: tapName(port.body.id), mac: port.body.mac, ip, prefixLength: 24 }, { migrates: name === 'web' });
    const bound = await client.patch(`/v1/ports/${port.body.id}?wait=realized&timeout=15000`, { hostId: hostIds.get(hvName) });
    if (bound.status !== 200) {
      throw new Error(`binding ${name} to ${hvName}: ${bound.status} ${JSON.stringify(bound.body)}${agentLogs()}`);
    }
    return vm;
  };
  const web = await addVm('web', 'hv1', '10.0.0.10');
  const db = await addVm('db', 'hv2', '10.0.0.20');
  const cl = await addVm('client', 'hv3', '10.0.0.30');
  // The first ping may race the ARP exchange and the agents' last apply.
  await waitUntil(async () => (await ping(web, db, 1)).ok, 15_000, () => `web cannot ping db${agentLogs()}`);
  step(2, `tenant "demo", segment demo-net 10.0.0.0/24 (VNI ${segment.body.vni}); VMs in the tenant's default group`);
  for (const vm of [web, db, cl]) {
    detail(`${vm.name.padEnd(6)} on ${vm.hv.name}: ${vm.ip} ${vm.mac} (tap ${vm.tap} on br${segment.body.vni})`);
  }
  const across = await ping(web, db, 3);
  detail(`web -> db (hv1 -> hv2 over VXLAN), ping -c 3: ${across.summary}`);

  // 3. A security group on db admitting tcp/5432 and ICMP only from group "web".
  const webGroup = await client.post('/v1/security-groups', { tenantId: tenant.body.id, name: 'web' });
  const dbGroup = await client.post('/v1/security-groups', {
    tenantId: tenant.body.id,
    name: 'db',
    rules: [
      { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 5432, portRangeMax: 5432, remoteGroupId: webGroup.body.id },
      { direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp', remoteGroupId: webGroup.body.id },
    ],
  });
  if (webGroup.status !== 201 || dbGroup.status !== 201) {
    throw new Error(`security groups: ${webGroup.status} ${dbGroup.status} ${JSON.stringify(dbGroup.body)}`);
  }
  /** PATCHes a port's groups and waits until every agent concerned applied it; returns how long that took. */
  const setGroups = async (vm: string, groups: string[]): Promise<number> => {
    const start = Date.now();
    const res = await client.patch(`/v1/ports/${ports.get(vm)}?wait=realized&timeout=15000`, { securityGroupIds: groups });
    if (res.status !== 200) {
      throw new Error(`PATCH port ${vm} securityGroupIds: ${res.status} ${JSON.stringify(res.body)}${agentLogs()}`);
    }
    return Date.now() - start;
  };
  const defaultGroup = tenant.body.defaultSecurityGroupId as string;
  await setGroups('web', [defaultGroup, webGroup.body.id]);
  await setGroups('db', [dbGroup.body.id]);
  const server = topology.spawnIn(db.ns, process.execPath, ['-e', SERVER_SCRIPT, db.ip, '5432']);
  state.children.push(server);
  await new Promise<void>((resolve, reject) => {
    server.stdout!.once('data', () => resolve());
    server.once('exit', (code) => reject(new Error(`TCP server in db exited (${code})`)));
  });
  step(3, 'security group "db" on db: ingress tcp/5432 and ICMP from members of group "web" only');
  detail('web: groups [default, web]; db: [db]; client: [default]; a TCP server listens on db:5432');
  const refused = await connect(cl, db, 5432);
  const refusedPing = await ping(cl, db, 2);
  detail(`client -> db:5432  ${refused === 'timeout' ? 'REFUSED (SYN dropped at db\'s tap: timeout after 1.5 s)' : `unexpected: ${refused}`}`);
  detail(`client -> db ping  ${refusedPing.ok ? 'unexpected: answered' : `REFUSED (${refusedPing.summary || 'no answer'})`}`);
  await waitUntil(async () => (await connect(web, db, 5432)).startsWith('ok'), 10_000, () => `web cannot reach db:5432${agentLogs()}`);
  detail(`web    -> db:5432  allowed: ${await connect(web, db, 5432)}`);
  // db's host before and after: the PATCH should change only the elements of group web's set.
  const table = () => topology.mustExec(db.hv.ns, 'nft', ['-a', 'list', 'table', 'bridge', 'overlay']);
  const webSet = `g_${(webGroup.body.id as string).replace(/-/g, '').slice(-12)}_4`;
  const elementsOf = (text: string) => new RegExp(`set ${webSet} \\{[^}]*?elements = \\{ ([^}]*) \\}`).exec(text)?.[1] ?? '(empty)';
  const withoutElements = (text: string) => text.replace(/elements = \{[^}]*\}/g, 'elements = {...}');
  const before = await table();
  const patchedAt = Date.now();
  const realizedMs = await setGroups('client', [defaultGroup, webGroup.body.id]);
  await waitUntil(async () => (await connect(cl, db, 5432)).startsWith('ok'), 10_000, () => `client still refused after joining web${agentLogs()}`);
  const allowedAfterMs = Date.now() - patchedAt;
  const afterTable = await table();
  detail(`PATCH /v1/ports/<client> {"securityGroupIds":[default, web]}?wait=realized: applied by the agents in ${realizedMs} ms`);
  detail(
    `  on hv2, set ${webSet} (group web): ${elementsOf(before)} -> ${elementsOf(afterTable)}; chains and rule handles ${withoutElements(before) === withoutElements(afterTable) ? 'unchanged (a set update, not a reload)' : 'CHANGED (the table was reloaded)'}`,
  );
  detail(`client -> db:5432  now allowed (${allowedAfterMs} ms after the PATCH): ${await connect(cl, db, 5432)}`);

  // 4. A mirror session: everything web sends and receives, copied to an analyzer VM on hv3.
  const analyzerPort = await client.post('/v1/ports', { segmentId: segment.body.id, vmId: 'analyzer', role: 'analyzer' });
  if (analyzerPort.status !== 201) {
    throw new Error(`POST /v1/ports (analyzer): ${analyzerPort.status} ${JSON.stringify(analyzerPort.body)}`);
  }
  const analyzer = await topology.addVm('analyzer', topology.hypervisor('hv3'), { tap: tapName(analyzerPort.body.id), mac: analyzerPort.body.mac, ip: '10.0.0.250', prefixLength: 24 });
  const analyzerBound = await client.patch(`/v1/ports/${analyzerPort.body.id}?wait=realized&timeout=15000`, { hostId: hostIds.get('hv3') });
  if (analyzerBound.status !== 200) {
    throw new Error(`binding the analyzer to hv3: ${analyzerBound.status} ${JSON.stringify(analyzerBound.body)}${agentLogs()}`);
  }
  const capture = await new EchoCapture(topology, analyzer.ns).start();
  state.captures.push(capture);
  const session = await client.post('/v1/mirror-sessions', { tenantId: tenant.body.id, name: 'watch-web', sources: [{ portId: ports.get('web'), direction: 'both' }], sink: { type: 'port', portId: analyzerPort.body.id } });
  if (session.status !== 201) {
    throw new Error(`POST /v1/mirror-sessions: ${session.status} ${JSON.stringify(session.body)}`);
  }
  let pingId = 4000;
  const echoes = async (from: Vm, to: Vm, count: number): Promise<number> => {
    const id = pingId++;
    await topology.exec(from.ns, 'ping', ['-c', String(count), '-i', '0.05', '-W', '1', '-e', String(id), '-q', to.ip]);
    return id;
  };
  await waitUntil(
    async () => {
      const id = await echoes(cl, web, 1);
      return capture.echoes.some((e) => e.id === id);
    },
    15_000,
    () => `the analyzer sees no copy of web's traffic${agentLogs()}`,
  );
  const watched = await echoes(cl, web, 3);
  const marker = await echoes(web, db, 1);
  await waitUntil(() => capture.echoes.some((e) => e.id === marker), 10_000, () => 'the marker ping never reached the analyzer');
  step(4, 'mirror session "watch-web": web\'s traffic, both ways, copied to an analyzer VM on hv3 (NIST VM-TM-R1..R3)');
  detail(`analyzer port on hv3 (role analyzer: in no bridge, sends nothing, receives copies only); session VNI ${session.body.vni}`);
  detail(`on hv1: what web sends is copied on its tap's ingress, what it receives after the firewall; copies travel to hv3 in VXLAN under VNI ${session.body.vni}`);
  detail(`client -> web, ping -c 3: the analyzer saw requests ${JSON.stringify(capture.seqs('request', watched))} (web received) and replies ${JSON.stringify(capture.seqs('reply', watched))} (web sent)`);

  // 5. Live migration of web from hv1 to hv2 while client pings it every 10 ms.
  const [hv1, hv2] = [topology.hypervisor('hv1'), topology.hypervisor('hv2')];
  const migrationPings = pingId++;
  const pinger = spawn('ip', ['netns', 'exec', cl.ns, 'ping', '-D', '-n', '-i', String(PING_INTERVAL_MS / 1000), '-W', '1', '-e', String(migrationPings), web.ip], { stdio: ['ignore', 'pipe', 'ignore'] });
  trackProcess(pinger);
  state.children.push(pinger);
  const replies: { seq: number; at: number }[] = [];
  pinger.stdout.on('data', (chunk: Buffer) => {
    for (const m of chunk.toString('utf8').matchAll(/^\[(\d+\.\d+)\] .*icmp_seq=(\d+)/gm)) {
      replies.push({ seq: Number(m[2]), at: Number(m[1]) * 1000 });
    }
  });
  await waitUntil(() => replies.length >= 20, 10_000, () => 'client gets no answers from web');
  // In libvirt's order: the destination is prepared, then its QEMU starts and opens the tap (on
  // hv2; in the VM a second NIC, closed until it runs there), which hv2's agent attaches.
  const prepareStart = Date.now();
  const prepared = await client.post('/v1/migrations?timeout=30000', { vmId: 'web', sourceHostId: hostIds.get(hv1.name), destinationHostId: hostIds.get(hv2.name) });
  if (prepared.status !== 201) {
    throw new Error(`POST /v1/migrations: ${prepared.status} ${JSON.stringify(prepared.body)}${agentLogs()}`);
  }
  const prepareMs = Date.now() - prepareStart;
  await topology.plugIncoming(web, hv2);
  await waitUntil(async () => JSON.parse(await must('ip', ['-n', hv2.ns, '-j', 'link', 'show', web.tap]))[0]?.master !== undefined, 10_000, () => `hv2 did not attach web's tap${agentLogs()}`);
  // The VM stops on hv1 and runs on hv2 (one step), announces itself, and its hv1 vNIC and tap go.
  const switchAt = Date.now();
  await topology.resume(web);
  const migrationUrl = `/v1/migrations/${prepared.body.id}`;
  await waitUntil(async () => (await client.get(migrationUrl)).body.state === 'completed', 20_000, () => `migration not completed${agentLogs()}`);
  type By = { name: string } | { system: string };
  const done = (await client.get(migrationUrl)).body as { state: string; timeline: { event: string; at: string; revision?: number; connections?: number; by?: By }[] };
  const at = (event: string) => Date.parse(done.timeline.find((e) => e.event === event)?.at ?? '');
  // Let the pings of the window come back (or time out, -W 1) before counting.
  const windowEnd = Math.max(Date.now(), at('peers-acked') || 0, at('source-cleaned') || 0) + 300;
  await new Promise((r) => setTimeout(r, windowEnd + 1100 - Date.now()));
  pinger.kill('SIGINT');
  const inWindow = replies.filter((r) => r.at >= switchAt - 100 && r.at <= windowEnd);
  const seqs = inWindow.map((r) => r.seq);
  const lost = seqs.length ? Math.max(...seqs) - Math.min(...seqs) + 1 - new Set(seqs).size : Number.NaN;
  let gap = 0;
  for (let k = 1; k < inWindow.length; k++) {
    gap = Math.max(gap, inWindow[k].at - inWindow[k - 1].at);
  }
  step(5, 'live migration of web from hv1 to hv2 while client (hv3) pings web every 10 ms');
  detail(`POST /v1/migrations {"vmId":"web"}: ${prepared.body.state} in ${prepareMs} ms; then web's vNIC plugged on hv2 (tap ${web.tap}) and attached by hv2's agent`);
  detail('switched the VM: one nftables transaction in its namespace (the hv1 NIC closes, the hv2 one opens), `arping -U`, then its hv1 vNIC deleted');
  /** A step the controller took itself: a commit its agent asked for names the agent's host. */
  const systemActor = (name: string): string => {
    const host = [...hostIds].find(([, id]) => name === `agent-${id}`)?.[0];
    return host ? `overlayd, for ${host}'s agent` : `overlayd (${name})`;
  };
  detail(`timeline (ms after the switch), state ${done.state}:`);
  for (const e of done.timeline) {
    const ms = Date.parse(e.at) - switchAt;
    const by = e.by === undefined ? '' : ` by ${'name' in e.by ? `token '${e.by.name}'` : systemActor(e.by.system)}`;
    detail(`  ${String(ms).padStart(6)}  ${e.event}${by}${e.revision !== undefined ? ` (revision ${e.revision})` : ''}${e.connections !== undefined ? ` (${e.connections} tracked connection${e.connections === 1 ? '' : 's'} of web)` : ''}`);
  }
  detail(`pings from 100 ms before the switch until every ack: ${seqs.length + (Number.isNaN(lost) ? 0 : lost)} sent, ${Number.isNaN(lost) ? '?' : lost} lost; blackout ${Math.max(0, Math.round(gap - PING_INTERVAL_MS))} ms`);
  const gone = (await topology.exec(hv1.ns, 'ip', ['link', 'show', web.tap])).code !== 0;
  const attached = JSON.parse(await must('ip', ['-n', hv2.ns, '-j', 'link', 'show', web.tap]))[0] as { master?: string };
  detail(`web's tap: ${gone ? 'gone from hv1' : 'still on hv1'}, on hv2 attached to ${attached.master ?? 'nothing'}`);
  const after = await ping(cl, web, 3);
  detail(`client -> web (now hv3 -> hv2), ping -c 3: ${after.summary}`);
  // Every echo web exchanged during the move reached the analyzer, wherever web ran at the time.
  const followMarker = await echoes(web, db, 1);
  await waitUntil(() => capture.echoes.some((e) => e.id === followMarker), 10_000, () => 'the marker ping never reached the analyzer');
  const answered = replies.map((r) => r.seq);
  const copied = (kind: 'request' | 'reply') => answered.filter((seq) => capture.seqs(kind, migrationPings).includes(seq)).length;
  const status = (await client.get(`/v1/mirror-sessions/${session.body.id}`)).body.status?.[0] as { hostId: string; state: string; packets: number } | undefined;
  const statusHost = [...hostIds].find(([, id]) => id === status?.hostId)?.[0] ?? status?.hostId;
  detail(`mirror session watch-web followed web: of ${answered.length} pings answered before, during and after the move, the analyzer got ${copied('request')} requests and ${copied('reply')} replies; the source is now on ${statusHost} (${status?.state}, ${status?.packets} packets copied as its agent last reported)`);

  // 5. The audit trail: the operator's writes (an operator may not read it: the admin token does).
  const trail = await api(ctl.url).get(`/v1/events?actor=demo-operator&type=write&limit=1000`);
  if (trail.status !== 200) {
    throw new Error(`GET /v1/events: ${trail.status} ${JSON.stringify(trail.body)}`);
  }
  const events = trail.body.items as { actor: { method?: string; route?: string } }[];
  const routes = new Map<string, number>();
  for (const e of events) {
    const route = `${e.actor.method} ${e.actor.route}`;
    routes.set(route, (routes.get(route) ?? 0) + 1);
  }
  step(6, 'the audit trail: every write is recorded with the token and the route that made it');
  detail(`GET /v1/events?actor=demo-operator&type=write (with the admin token): ${events.length} writes by 'demo-operator'`);
  for (const [route, n] of [...routes].sort((a, b) => b[1] - a[1])) {
    detail(`  ${String(n).padStart(3)} x ${route}`);
  }
}

let tearingDown: Promise<void> | undefined;

/** Removes everything the demo made, saying what. Idempotent; never throws. */
function teardown(): Promise<void> {
  tearingDown ??= (async () => {
    const removed: string[] = [];
    await Promise.all(state.captures.map((capture) => capture.stop()));
    for (const child of state.children) {
      child.kill('SIGKILL');
    }
    if (state.children.length) {
      removed.push(`helper processes (${state.children.length}: the TCP server on db, the pings)`);
    }
    const pids = state.agents.map((a) => a.pid).filter((p) => p !== undefined);
    await Promise.all(state.agents.map((a) => a.stop().catch(() => null)));
    if (pids.length) {
      removed.push(`overlay-agent processes ${pids.join(', ')}`);
    }
    if (state.topology) {
      const namespaces = [state.topology.underlay, ...state.topology.hypervisors.map((h) => h.ns), ...state.topology.vms.map((v) => v.ns)];
      await state.topology.destroy();
      removed.push(`network namespaces ${namespaces.join(' ')} (with their VXLAN devices, bridges, taps and nftables tables)`);
      removed.push(`scratch directory ${state.topology.dir}`);
    }
    if (state.ctl) {
      // Bounded: a request still waiting for acks (interrupted mid-step) can hold the HTTP server's close open.
      const closed = await Promise.race([
        state.ctl.close().then(
          () => true,
          () => true,
        ),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 3000).unref()),
      ]);
      removed.push(closed ? 'overlayd (REST and gRPC servers)' : 'overlayd (its HTTP server did not close within 3 s: a request was still in flight; it ends with this process)');
    }
    if (state.prefix && state.untrackRedis) {
      try {
        const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
        const count = (await redis.keys(`{${state.prefix}}:*`)).length;
        redis.disconnect();
        await dropPrefix(REDIS_URL, state.prefix);
        state.untrackRedis();
        removed.push(`${count} Redis keys {${state.prefix}}:*`);
      } catch (err) {
        removed.push(`Redis keys {${state.prefix}}:* NOT removed: ${(err as Error).message}`);
      }
    }
    if (state.localRedis) {
      const { pid, dir } = state.localRedis;
      await state.localRedis.stop();
      rmSync(dir, { recursive: true, force: true });
      removed.push(`the demo's redis-server (pid ${pid}) and its directory ${dir}`);
    }
    if (removed.length) {
      step(7, 'teardown');
      for (const line of removed) {
        detail(`removed ${line}`);
      }
    }
  })();
  return tearingDown;
}

const onSignal = (signal: NodeJS.Signals) => {
  if (interrupted) {
    return;
  }
  interrupted = signal;
  console.error(`\n${signal}: tearing down`);
  void teardown().finally(() => process.exit(130));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

main().then(
  async () => {
    await teardown();
    if (!interrupted) {
      say(`\ndemo done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      process.exit(0);
    }
  },
  async (err: unknown) => {
    // After a signal, a step failing because its processes were interrupted is expected: say nothing.
    if (!interrupted) {
      console.error(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    await teardown();
    process.exit(interrupted ? 130 : 1);
  },
);
