import { loggerOf, silentLog } from '../../src/common/logger';
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentMetrics } from '../../src/agent/metrics/agent-metrics';
import { serveMetrics } from '../../src/agent/metrics/metrics-server';
import { LinuxDataplane } from '../../src/agent/dataplane/linux/linux.dataplane';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { AGENT_BUNDLE, ensureAgentBuilt } from '../support/agent-bundle';
import { ROOT } from '../support/build-when-stale';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { created } from '../support/factories';
import { parseSamples, promtoolCheck, promtoolCheckRules, samplesOf, valueOf, withPromtool, type PromSample } from '../support/prometheus';
import { RawAgent } from '../support/raw-agent';

/*
 * GET /metrics of overlayd (behind a token of role metrics) and of the agents, after a workload
 * whose every count is known: three hosts (two with agents, one never connected, a fourth for a
 * spawned agent at the end), two segments kept and one deleted (its VNI quarantined), three ports
 * (one on a host whose kernel then refuses everything: a NACK that stays), a migration completed,
 * one aborted, one left prepared, refused calls and agent streams. The expositions must pass
 * `promtool check metrics`, and hold exactly those values; a second replica started afterwards
 * must report the deployment-wide metrics alike and its own per-replica ones.
 */

const checkIt = withPromtool();

/** A TCP port free right now (for the spawned agent's OVERLAY_METRICS_PORT). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('metrics: overlayd and the agents after a known workload', () => {
  const prefix = uniquePrefix('metrics');
  let ctl: Harness;
  let second: Harness | undefined;
  let admin: ReturnType<typeof api>;
  let scraper: ReturnType<typeof api>;
  const agents: TestAgent[] = [];
  const servers: Server[] = [];
  const hosts: Record<'hv1' | 'hv2' | 'hv3' | 'hv4', string> = { hv1: '', hv2: '', hv3: '', hv4: '' };
  let text: string;
  let samples: PromSample[];
  /** When hv2's kernel started refusing (seconds, as the NACK timestamps). */
  let brokenSince = 0;
  /** GET /v1/hosts/{id} of each host, read right after the scrape. */
  const api_ = new Map<string, any>();

  let scraperToken: string;
  const metricsOf = async (h: Harness): Promise<string> => {
    const res = await api(h.url, scraperToken).raw('GET', '/metrics');
    expect(res.status).toBe(200);
    return res.body as string;
  };

  beforeAll(async () => {
    ctl = await startController({ prefix, env: { OVERLAY_VNI_RANGES: '5000-5009' } });
    admin = api(ctl.url);
    scraperToken = (await created(admin.post('/v1/tokens', { name: 'prometheus', role: 'metrics' }))).token;
    scraper = api(ctl.url, scraperToken);

    const tenant = await created(admin.post('/v1/tenants', { name: 'acme' }));
    const s1 = await created(admin.post('/v1/segments', { tenantId: tenant.id, name: 'web', cidr: '10.1.0.0/24' }));
    await created(admin.post('/v1/segments', { tenantId: tenant.id, name: 'db' }));
    const s3 = await created(admin.post('/v1/segments', { tenantId: tenant.id, name: 'gone' }));
    expect((await admin.delete(`/v1/segments/${s3.id}`)).status).toBe(204);
    for (const [i, name] of (['hv1', 'hv2', 'hv3', 'hv4'] as const).entries()) {
      hosts[name] = (await created(admin.post('/v1/hosts', { name, vtepIp: `192.0.2.${i + 1}` }))).id;
    }
    for (const name of ['hv1', 'hv2']) {
      const a = makeAgent(name, ctl.grpcTarget);
      agents.push(a);
      await a.agent.start();
    }
    await waitUntil(() => agents.every((a) => a.agent.synced), 10_000, () => 'agents synced');

    // Ports on hv1 and hv2, realized.
    for (const [i, host] of (['hv1', 'hv2'] as const).entries()) {
      const res = await admin.post('/v1/ports?wait=realized&timeout=10000', { segmentId: s1.id, hostId: hosts[host], vmId: `vm-${i + 1}`, ips: [`10.1.0.${i + 10}`] });
      expect({ status: res.status, realized: res.body.realized }).toEqual({ status: 201, realized: true });
    }
    // vm-1 migrates to hv2 (completed); vm-2's first migration to hv1 is aborted, its second left prepared.
    const m1 = await created(admin.post('/v1/migrations', { vmId: 'vm-1', sourceHostId: hosts.hv1, destinationHostId: hosts.hv2 }));
    expect(m1.state).toBe('prepared');
    const committed = await admin.post(`/v1/migrations/${m1.id}/commit?wait=realized&timeout=10000`);
    expect({ status: committed.status, state: committed.body.state }).toEqual({ status: 200, state: 'completed' });
    const m2 = await created(admin.post('/v1/migrations', { vmId: 'vm-2', sourceHostId: hosts.hv2, destinationHostId: hosts.hv1 }));
    expect((await admin.post(`/v1/migrations/${m2.id}/abort`)).body.state).toBe('aborted');
    expect((await created(admin.post('/v1/migrations', { vmId: 'vm-2', sourceHostId: hosts.hv2, destinationHostId: hosts.hv1 }))).state).toBe('prepared');

    // hv2's kernel refuses everything from now on: the next change to its span is NACKed, and stays so.
    brokenSince = Date.now() / 1000;
    agents[1].dataplane.applyBroken = 'the kernel refused the links';
    await created(admin.post('/v1/ports', { segmentId: s1.id, hostId: hosts.hv2, ips: ['10.1.0.30'] }));
    await waitUntil(async () => (await admin.get(`/v1/hosts/${hosts.hv2}`)).body.lastError !== null, 10_000, () => 'hv2 NACKed');
    await waitUntil(async () => (await admin.get(`/v1/hosts/${hosts.hv1}`)).body.lag === 0, 10_000, () => 'hv1 caught up');

    // Refusals: a bad token, a scraper on the API, a request to no route, no token on /metrics.
    expect((await api(ctl.url, `ovl_${'x'.repeat(43)}`).get('/v1/tenants')).status).toBe(401);
    expect((await scraper.get('/v1/tenants')).status).toBe(403);
    expect((await admin.get('/v1/nothing-here/123')).status).toBe(404);
    expect((await api(ctl.url, null).raw('GET', '/metrics')).status).toBe(401);
    // Agent streams refused: a Hello for no registered host; a stream of hv3 acknowledging a revision it was never sent.
    const stranger = new RawAgent(ctl.grpcTarget, 'no-such-host');
    await waitUntil(() => stranger.ended !== undefined, 5_000, () => 'stranger refused');
    expect(stranger.ended?.code).toBe(grpc.status.NOT_FOUND);
    stranger.close();
    const liar = new RawAgent(ctl.grpcTarget, 'hv3');
    await waitUntil(() => liar.delivered, 5_000, () => 'hv3 got its snapshot');
    liar.send({ ack: { revision: 1_000_000 } });
    await waitUntil(() => liar.ended !== undefined, 5_000, () => 'liar ended');
    expect(liar.ended?.code).toBe(grpc.status.INVALID_ARGUMENT);
    liar.close();
    await waitUntil(async () => (await admin.get(`/v1/hosts/${hosts.hv3}`)).body.connected === false, 20_000, () => 'hv3 released');

    text = await metricsOf(ctl);
    samples = parseSamples(text);
    for (const [name, id] of Object.entries(hosts)) {
      api_.set(name, (await admin.get(`/v1/hosts/${id}`)).body);
    }
  }, 60_000);

  afterAll(async () => {
    servers.forEach((s) => s.close());
    await Promise.all(agents.map((a) => a.cleanup()));
    await second?.close();
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it("serves Prometheus' text format to a token of role metrics, which gets nothing else", () => {
    expect(text).toMatch(/^# HELP /);
    expect(valueOf(samples, 'overlay_auth_refused_total', { code: 'FORBIDDEN' })).toBe(1);
  });

  checkIt("passes promtool check metrics (overlayd's exposition)", () => {
    expect(promtoolCheck(text)).toEqual({ status: 0, output: '' });
  });

  it('reports each host: connected, acknowledged revision, lag and last NACK, as the host API does', () => {
    for (const name of ['hv1', 'hv2', 'hv3', 'hv4']) {
      const host = api_.get(name);
      // hv2's agent NACKs again on every retry, so the host API (read after the scrape) may show
      // a later NACK than the scrape did: the scraped one lies between the breakage and it.
      const nack = valueOf(samples, 'overlay_host_last_nack_timestamp_seconds', { host: name }) ?? NaN;
      const apiNack = host.lastError ? Date.parse(host.lastError.at) / 1000 : 0;
      expect({
        name,
        connected: valueOf(samples, 'overlay_host_connected', { host: name }),
        applied: valueOf(samples, 'overlay_host_applied_revision', { host: name }),
        lag: valueOf(samples, 'overlay_host_lag_revisions', { host: name }),
        nack: apiNack === 0 ? nack : nack >= brokenSince - 1 && nack <= apiNack ? 'between the breakage and the API' : nack,
      }).toEqual({ name, connected: host.connected ? 1 : 0, applied: host.appliedRevision, lag: host.lag, nack: apiNack === 0 ? 0 : 'between the breakage and the API' });
    }
    expect(api_.get('hv1')).toMatchObject({ connected: true, lag: 0, lastError: null });
    expect(api_.get('hv2').lag).toBeGreaterThan(0);
    expect(api_.get('hv2').lastError).not.toBeNull();
    expect(api_.get('hv3')).toMatchObject({ connected: false, lastError: null });
  });

  it('counts migrations by state, those finished and how long their steps took', () => {
    expect(samplesOf(samples, 'overlay_migrations').map((s) => [s.labels.state, s.value])).toEqual([
      ['preparing', 0],
      ['prepared', 1],
      ['committed', 0],
    ]);
    expect(valueOf(samples, 'overlay_migrations_finished_total', { state: 'completed' })).toBe(1);
    expect(valueOf(samples, 'overlay_migrations_finished_total', { state: 'aborted' })).toBe(1);
    const steps = (step: string) => valueOf(samples, 'overlay_migration_step_seconds_count', { step });
    expect({ completed: steps('completed'), aborted: steps('aborted'), destinationAcked: steps('destination-acked'), peersAcked: steps('peers-acked') }).toEqual({ completed: 1, aborted: 1, destinationAcked: 2, peersAcked: 1 });
  });

  it('counts the VNI pool: two held, one quarantined, the rest of 5000-5009 free', () => {
    expect(samplesOf(samples, 'overlay_vni_pool').map((s) => [s.labels.state, s.value])).toEqual([
      ['used', 2],
      ['quarantined', 1],
      ['free', 7],
    ]);
  });

  it('counts API requests by route pattern and status, never by raw URL', () => {
    const count = (method: string, route: string, status: string) => valueOf(samples, 'overlay_http_request_duration_seconds_count', { method, route, status });
    expect(count('POST', '/v1/ports', '201')).toBe(3);
    expect(count('POST', '/v1/migrations/:id/commit', '200')).toBe(1);
    expect(count('GET', '/v1/tenants', '401')).toBe(1);
    expect(count('GET', '/v1/tenants', '403')).toBe(1);
    expect(count('GET', 'unmatched', '404')).toBe(1);
    expect(count('GET', '/metrics', '401')).toBe(1);
    expect(text).not.toContain('nothing-here');
    expect(valueOf(samples, 'overlay_auth_refused_total', { code: 'UNAUTHENTICATED' })).toBe(2);
  });

  it("reports this replica's streams: what it wrote, its queues, realization latency, refused streams", () => {
    expect(valueOf(samples, 'overlay_sync_streams')).toBe(2);
    // hv1, hv2 and the lying hv3 each got a snapshot.
    expect(valueOf(samples, 'overlay_sync_snapshots_sent_total')).toBe(3);
    expect(valueOf(samples, 'overlay_sync_messages_sent_total', { type: 'snapshot_end' })).toBe(3);
    const deltas = valueOf(samples, 'overlay_sync_messages_sent_total', { type: 'delta' })!;
    expect(deltas).toBeGreaterThan(0);
    expect(valueOf(samples, 'overlay_sync_sent_bytes_total', { type: 'delta' })).toBeGreaterThan(deltas);
    expect(samplesOf(samples, 'overlay_sync_queue_depth').map((s) => s.labels.host).sort()).toEqual(['hv1', 'hv2']);
    const realized = valueOf(samples, 'overlay_realization_seconds_count')!;
    expect(realized).toBeGreaterThan(0);
    expect(realized).toBeLessThanOrEqual(deltas);
    expect(valueOf(samples, 'overlay_realization_seconds_sum')).toBeGreaterThan(0);
    expect(valueOf(samples, 'overlay_sync_hellos_refused_total', { code: 'NOT_FOUND' })).toBe(1);
    expect(valueOf(samples, 'overlay_sync_protocol_violations_total')).toBe(1);
  });

  it('times Redis commands, scripts by name, and counts none failed', () => {
    expect(valueOf(samples, 'overlay_redis_command_duration_seconds_count', { command: 'overlayPortCreateBatch' })).toBe(3);
    // Three prepares; MigrationService runs one again when a port changed between its read and
    // the script (the script answers -1), which a run of this spec saw once.
    expect(valueOf(samples, 'overlay_redis_command_duration_seconds_count', { command: 'overlayMigrationPrepare' })).toBeGreaterThanOrEqual(3);
    expect(valueOf(samples, 'overlay_redis_command_duration_seconds_count', { command: 'hmget' })).toBeGreaterThan(0);
    expect(samplesOf(samples, 'overlay_redis_command_duration_seconds_count').filter((s) => s.labels.command === 'evalsha')).toEqual([]);
    expect(samplesOf(samples, 'overlay_redis_command_errors_total')).toEqual([]);
  });

  it("reports the process: resident memory, heap, event-loop lag (prom-client's names)", () => {
    expect(valueOf(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(valueOf(samples, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(valueOf(samples, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
  });

  it('answers alike on a second replica for the deployment-wide metrics, with its own per-replica ones', async () => {
    second = await startController({ prefix, env: { OVERLAY_VNI_RANGES: '5000-5009' } });
    const other = parseSamples(await metricsOf(second));
    const fresh = parseSamples(await metricsOf(ctl));
    // Read from Redis: the same from every replica (the NACK's time aside: hv2 keeps retrying, and each NACK is recorded anew).
    const fromRedis = (s: PromSample[]) =>
      s
        .filter((x) => ['overlay_host_connected', 'overlay_host_applied_revision', 'overlay_migrations', 'overlay_vni_pool'].includes(x.name))
        .map((x) => `${x.name}${JSON.stringify(x.labels)} ${x.value}`)
        .sort();
    expect(fromRedis(other)).toEqual(fromRedis(fresh));
    expect(fromRedis(other)).toHaveLength(4 * 2 + 3 + 3);
    for (const host of ['hv1', 'hv2', 'hv3', 'hv4']) {
      const nacked = (s: PromSample[]) => valueOf(s, 'overlay_host_last_nack_timestamp_seconds', { host })! > 0;
      expect({ host, other: nacked(other), fresh: nacked(fresh) }).toEqual({ host, other: host === 'hv2', fresh: host === 'hv2' });
      // A replica knows when a host's span last changed only since its view loaded: one started
      // later counts the hosts idle since as behind (never less than a replica that knows).
      const lag = (s: PromSample[]) => valueOf(s, 'overlay_host_lag_revisions', { host })!;
      expect(lag(other)).toBeGreaterThanOrEqual(lag(fresh));
    }
    expect(valueOf(other, 'overlay_sync_streams')).toBe(0);
    expect(samplesOf(other, 'overlay_migrations_finished_total')).toEqual([]);
  });

  describe("an agent's /metrics", () => {
    const serve = async (a: TestAgent) => {
      const server = await serveMetrics(agentMetrics(a.agent), '127.0.0.1', 0);
      servers.push(server);
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const res = await fetch(`${base}/metrics`);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return { base, text: await res.text() };
    };

    checkIt('passes promtool check metrics', async () => {
      for (const a of agents) {
        expect(promtoolCheck((await serve(a)).text)).toEqual({ status: 0, output: '' });
      }
    });

    it('reports a healthy agent: connected, in sync, the revision it acknowledged, its passes and messages', async () => {
      const [a1] = agents;
      const s = parseSamples((await serve(a1)).text);
      expect({
        info: valueOf(s, 'overlay_agent_info', { host: 'hv1' }),
        connected: valueOf(s, 'overlay_agent_connected'),
        inSync: valueOf(s, 'overlay_agent_in_sync'),
        applied: valueOf(s, 'overlay_agent_applied_revision'),
        failing: valueOf(s, 'overlay_agent_apply_failing'),
        snapshots: valueOf(s, 'overlay_agent_messages_received_total', { type: 'snapshot' }),
        acks: valueOf(s, 'overlay_agent_reports_total', { report: 'ack' }),
        nacks: valueOf(s, 'overlay_agent_reports_total', { report: 'nack' }),
        connects: valueOf(s, 'overlay_agent_connects_total'),
      }).toEqual({ info: 1, connected: 1, inSync: 1, applied: api_.get('hv1').appliedRevision, failing: 0, snapshots: 1, acks: a1.agent.stats.acks, nacks: 0, connects: 1 });
      expect(a1.agent.stats.acks).toBeGreaterThan(0);
      expect(valueOf(s, 'overlay_agent_messages_received_total', { type: 'delta' })).toBeGreaterThan(0);
      expect(valueOf(s, 'overlay_agent_apply_seconds_count', { pass: 'change', result: 'ok' })).toBeGreaterThan(0);
      expect(samplesOf(s, 'overlay_agent_apply_seconds_count', { result: 'failed' })).toEqual([]);
      expect(valueOf(s, 'overlay_agent_link_drift_repairs_total')).toBe(0);
      expect(valueOf(s, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    });

    it('reports a failing agent: its NACKs, failed passes, and the revision it could not apply', async () => {
      const s = parseSamples((await serve(agents[1])).text);
      expect(valueOf(s, 'overlay_agent_apply_failing')).toBe(1);
      expect(valueOf(s, 'overlay_agent_reports_total', { report: 'nack' })).toBeGreaterThan(0);
      expect(samplesOf(s, 'overlay_agent_apply_seconds_count', { result: 'failed' }).reduce((n, x) => n + x.value, 0)).toBeGreaterThan(0);
      expect(valueOf(s, 'overlay_agent_applied_revision')).toBeLessThan(valueOf(s, 'overlay_agent_desired_revision')!);
    });

    it('serves GET and HEAD /metrics only', async () => {
      const { base } = await serve(agents[0]);
      expect((await fetch(`${base}/other`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`, { method: 'POST', body: 'x' })).status).toBe(405);
      const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
      expect({ status: head.status, body: await head.text() }).toEqual({ status: 200, body: '' });
    });
  });

  describe('deploy/: the Grafana dashboard and the alert rules', () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'overlay-controller.json'), 'utf8'));
    const alerts = readFileSync(join(ROOT, 'deploy', 'prometheus', 'overlay-alerts.yml'), 'utf8');
    const expressions = (JSON.stringify(dashboard).match(/"expr":"((?:[^"\\]|\\.)*)"/g) ?? []).map((m) => (JSON.parse(`{${m}}`) as { expr: string }).expr.replace(/\$controller_job/g, 'overlayd').replace(/\$agent_job/g, 'overlay-agent'));

    it('name only metrics that overlayd or the agent expose', async () => {
      // Families as the expositions declare them (# TYPE), histograms' series by their suffixes too.
      const families = new Set<string>();
      const linux = new LinuxDataplane({ run: async () => '' }, loggerOf(silentLog())).metrics().map((m) => (m as unknown as { name: string }).name);
      for (const exposition of [text, await agentMetrics(agents[0].agent).metrics()]) {
        for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
          families.add(name);
          if (type === 'histogram') {
            ['_bucket', '_sum', '_count'].forEach((suffix) => families.add(name + suffix));
          }
        }
      }
      linux.forEach((name) => ['', '_bucket', '_sum', '_count'].forEach((suffix) => families.add(name + suffix)));
      const named = [...`${expressions.join('\n')}\n${alerts}`.matchAll(/\b((?:overlay|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]);
      expect(expressions.length).toBeGreaterThan(30);
      expect([...new Set(named)].filter((name) => !families.has(name))).toEqual([]);
    });

    checkIt('parse as PromQL, and the alert rules as rules (promtool check rules)', () => {
      const dir = mkdtempSync(join(tmpdir(), 'overlay-dashboard-'));
      try {
        // JSON is YAML: the dashboard's expressions as recording rules.
        const rules = join(dir, 'dashboard.yml');
        writeFileSync(rules, JSON.stringify({ groups: [{ name: 'dashboard', rules: expressions.map((expr, i) => ({ record: `dashboard:expr_${i}`, expr })) }] }));
        expect(promtoolCheckRules(rules)).toMatchObject({ status: 0 });
        expect(promtoolCheckRules(join(ROOT, 'deploy', 'prometheus', 'overlay-alerts.yml'))).toMatchObject({ status: 0 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('a spawned overlay-agent with OVERLAY_METRICS_PORT', () => {
    let child: ChildProcess | undefined;
    let stateDir: string | undefined;
    afterAll(() => {
      child?.kill('SIGKILL');
      if (stateDir) {
        rmSync(stateDir, { recursive: true, force: true });
      }
    });

    it('serves its metrics on 127.0.0.1 only, by default', async () => {
      ensureAgentBuilt();
      const port = await freePort();
      stateDir = mkdtempSync(join(tmpdir(), 'overlay-agent-metrics-'));
      const output: string[] = [];
      child = spawn(process.execPath, [AGENT_BUNDLE], {
        env: { ...process.env, OVERLAY_CONTROLLER: ctl.grpcTarget, OVERLAY_HOST: 'hv4', OVERLAY_DATAPLANE: 'memory', OVERLAY_STATE_DIR: stateDir, OVERLAY_GRPC_INSECURE: 'true', OVERLAY_METRICS_PORT: String(port) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout?.on('data', (b: Buffer) => output.push(b.toString()));
      child.stderr?.on('data', (b: Buffer) => output.push(b.toString()));
      let s: PromSample[] = [];
      await waitUntil(
        async () => {
          const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
          s = parseSamples(text);
          return valueOf(s, 'overlay_agent_in_sync') === 1 && valueOf(s, 'overlay_agent_applied_revision')! > 0;
        },
        20_000,
        () => `the spawned agent in sync; it said ${output.join('')}`,
      );
      expect(valueOf(s, 'overlay_agent_info', { host: 'hv4' })).toBe(1);
      // Its log is buffered (up to 250 ms): the line is waited for, not expected at once.
      await waitUntil(
        async () => output.join('').includes(`metrics at http://127.0.0.1:${port}/metrics`),
        5_000,
        () => `the agent saying where its metrics are; it said ${output.join('')}`,
      );
      // Not on the machine's other addresses.
      const elsewhere = Object.values(networkInterfaces())
        .flat()
        .find((i) => i && i.family === 'IPv4' && !i.internal);
      if (elsewhere) {
        await expect(fetch(`http://${elsewhere.address}:${port}/metrics`)).rejects.toThrow();
      }
    }, 60_000);
  });
});
