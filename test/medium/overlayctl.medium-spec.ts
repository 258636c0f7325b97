import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { api, dropPrefix, startController, TEST_ADMIN_TOKEN, uniquePrefix, type Harness } from '../support/controller-harness';
import { CLI_MAIN, ensureCliBuilt, overlayctl, startOverlayctl, type CliRun } from '../support/overlayctl';

/*
 * overlayctl as a user runs it: the built dist/src/cli/main.js as a process of its own, against a
 * real controller with in-memory agents; its --json parsed, its exit codes checked per class of
 * failure, and the token never in what it prints.
 */

const NO_SUCH_ID = '01900000-0000-7000-8000-000000000000';

describe('overlayctl against a real controller', () => {
  const prefix = uniquePrefix('overlayctl');
  let ctl: Harness;
  let env: Record<string, string>;
  const agents = new Map<string, TestAgent>();
  const hostIds = new Map<string, string>();
  const runs: CliRun[] = [];
  let tenantId: string;
  let segmentId: string;

  /** overlayctl with the controller's URL and the admin token, and `extra` over them. */
  async function run(args: string[], extra: Record<string, string | undefined> = {}): Promise<CliRun> {
    const result = await overlayctl(args, { ...env, ...extra });
    runs.push(result);
    return result;
  }

  async function ok(args: string[]): Promise<any> {
    const result = await run([...args, '--json']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    return result.json();
  }

  beforeAll(async () => {
    ensureCliBuilt();
    ctl = await startController({ prefix });
    env = { OVERLAY_URL: ctl.url, OVERLAY_TOKEN: TEST_ADMIN_TOKEN };
    tenantId = (await ok(['tenants', 'create', '--name', 'acme'])).id;
    segmentId = (await ok(['segments', 'create', '--tenant', tenantId, '--name', 'web', '--cidr', '10.7.0.0/24'])).id;
    for (const [i, name] of ['hv1', 'hv2', 'hv3'].entries()) {
      hostIds.set(name, (await ok(['hosts', 'create', '--name', name, '--vtep-ip', `192.0.2.${71 + i}`])).id);
    }
    for (const name of ['hv1', 'hv2']) {
      const a = makeAgent(name, ctl.grpcTarget);
      agents.set(name, a);
      await a.agent.start();
    }
    const client = api(ctl.url);
    await waitUntil(async () => (await client.get('/v1/hosts')).body.items.filter((h: any) => h.connected).length === 2, 10_000, () => 'agents hv1 and hv2 connected');
  }, 120_000);

  afterAll(async () => {
    for (const a of agents.values()) {
      await a.cleanup();
    }
    await ctl?.close();
    await dropPrefix(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix);
  });

  afterEach(() => {
    // Whatever overlayctl printed, out or err, never holds the token.
    for (const r of runs.splice(0)) {
      expect(r.stdout + r.stderr).not.toContain(TEST_ADMIN_TOKEN);
    }
  });

  it('lists and shows what it created, as JSON and as a table', async () => {
    expect((await ok(['tenants', 'list'])).map((t: any) => t.id)).toContain(tenantId);
    expect(await ok(['segments', 'show', segmentId])).toMatchObject({ id: segmentId, tenantId, name: 'web', cidr: '10.7.0.0/24' });
    const table = await run(['segments', '--tenant', tenantId]);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+TENANT\s+VNI\s+VLAN\s+CIDR$/);
    expect(table.stdout).toContain(segmentId);
  });

  it('exits 2 for what does not exist, 3 for a conflict, 1 for refused input, naming code, message and field on stderr', async () => {
    const missing = await run(['tenants', 'show', NO_SUCH_ID]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^overlayctl: TENANT_NOT_FOUND: /);
    expect(missing.stdout).toBe('');

    const taken = await run(['tenants', 'create', '--name', 'acme']);
    expect(taken.code).toBe(3);
    expect(taken.stderr).toContain('TENANT_NAME_TAKEN');

    const outside = await run(['ports', 'create', '--segment', segmentId, '--ip', '10.8.0.5']);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toContain('IP_OUTSIDE_CIDR');
    expect(outside.stderr).toContain('field: ips[0] (--ip)');

    const usage = await run(['ports', 'create', '--segment', segmentId, '--timeout', '5']);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toContain('--timeout applies only with --wait');
    const unknown = await run(['ports', 'frobnicate']);
    expect(unknown.code).toBe(1);
  });

  it('exits 4 for a bad token or none, 5 when the controller does not answer', async () => {
    const bad = await run(['tenants', 'list'], { OVERLAY_TOKEN: `ovl_${'x'.repeat(43)}` });
    expect(bad.code).toBe(4);
    expect(bad.stderr).toContain('UNAUTHENTICATED');
    expect(bad.stderr).toContain('the token from OVERLAY_TOKEN was refused');
    expect(bad.stderr).not.toContain('x'.repeat(43));

    const none = await run(['tenants', 'list'], { OVERLAY_TOKEN: undefined });
    expect(none.code).toBe(4);
    expect(none.stderr).toContain('no token');

    // A port nothing listens on: bound, then closed.
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise((r) => server.close(r));
    const down = await run(['hosts'], { OVERLAY_URL: `http://127.0.0.1:${port}` });
    expect(down.code).toBe(5);
    expect(down.stderr).toContain(`cannot reach overlayd at http://127.0.0.1:${port}`);
  });

  it('reads URL and token from a config file readable by its owner alone, and refuses one others can read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'overlayctl-config-'));
    const path = join(dir, 'config.json');
    writeFileSync(path, JSON.stringify({ url: ctl.url, token: TEST_ADMIN_TOKEN }));
    chmodSync(path, 0o644);
    const open = await run(['tenants', 'list'], { OVERLAY_URL: undefined, OVERLAY_TOKEN: undefined, OVERLAY_CONFIG: path });
    expect(open.code).toBe(1);
    expect(open.stderr).toContain(`config file ${path} is accessible by others (mode 0644)`);
    expect(open.stderr).toContain(`chmod 600 ${path}`);
    expect(open.stdout).toBe('');

    chmodSync(path, 0o600);
    const listed = await run(['tenants', 'list', '--json', '--config', path], { OVERLAY_URL: undefined, OVERLAY_TOKEN: undefined });
    expect(listed.code).toBe(0);
    expect(listed.json().map((t: any) => t.id)).toContain(tenantId);

    const absent = await run(['tenants', 'list', '--config', join(dir, 'absent.json')], { OVERLAY_TOKEN: undefined });
    expect(absent.code).toBe(1);
    expect(absent.stderr).toContain('cannot read config file');
  });

  it('ports create --wait shows hosts acked out of hosts affected and answers once the agents applied it', async () => {
    // A port on hv2 first, so that the next one, on hv1, affects both hosts.
    const first = await run(['ports', 'create', '--segment', segmentId, '--host', hostIds.get('hv2')!, '--vm', 'vm-2', '--ip', '10.7.0.12', '--wait', '--json']);
    expect(first.code).toBe(0);
    const created = await run(['ports', 'create', '--segment', segmentId, '--host', hostIds.get('hv1')!, '--vm', 'vm-1', '--ip', '10.7.0.11', '--wait', '--timeout', '10000', '--json']);
    expect(created.code).toBe(0);
    const port = created.json();
    expect(port).toMatchObject({ segmentId, hostId: hostIds.get('hv1'), vmId: 'vm-1', ips: ['10.7.0.11'], realized: true });
    // Progress goes to stderr, each state once; it ends with every affected host acked.
    const progress = created.stderr.trim().split('\n');
    expect(progress[progress.length - 1]).toBe('hosts acked: 2/2');
    expect(progress.every((l) => /^hosts acked: [0-2]\/2(; waiting for .+)?$/.test(l))).toBe(true);
    expect(agents.get('hv1')!.agent.state.ports.has(port.id)).toBe(true);
    expect(agents.get('hv2')!.agent.state.ports.has(port.id)).toBe(true);

    // The hosts table: connected, lag, last error.
    const hosts = await run(['hosts']);
    expect(hosts.code).toBe(0);
    const [header, ...rows] = hosts.stdout.trim().split('\n');
    expect(header).toMatch(/^ID\s+NAME\s+VTEP\s+CONNECTED\s+APPLIED\s+LAG\s+LAST ERROR$/);
    expect(rows.find((r) => r.includes(' hv1 '))).toMatch(/ yes\s+\d+\s+0\s+-$/);
    expect(rows.find((r) => r.includes(' hv3 '))).toMatch(/ no\s+0\s+\d+\s+-$/);
  });

  it('ports create --wait onto a host whose agent is down exits 6, naming the host that did not ack', async () => {
    const result = await run(['ports', 'create', '--segment', segmentId, '--host', hostIds.get('hv3')!, '--ip', '10.7.0.13', '--wait', '--timeout', '1000', '--json']);
    expect(result.code).toBe(6);
    expect(result.json()).toMatchObject({ hostId: hostIds.get('hv3'), realized: false });
    expect(result.stderr).toMatch(/hosts acked: 2\/3\n/);
    expect(result.stderr).toMatch(/not acked: hv3 \(disconnected, lag \d+\)/);
    // Written all the same: it is there, and deleting it without waiting is fine.
    const deleted = await run(['ports', 'delete', result.json().id, '--json']);
    expect(deleted.code).toBe(0);
    expect(deleted.json()).toEqual({ id: result.json().id, deleted: true });
    expect((await run(['ports', 'show', result.json().id])).code).toBe(2);
  });

  it('migrations watch draws the timeline as it happens, each event once, and exits 0 when it completes', async () => {
    const migration = await ok(['migrations', 'create', '--vm', 'vm-1', '--source', hostIds.get('hv1')!, '--destination', hostIds.get('hv2')!]);
    expect(migration.state).toBe('prepared');
    const watcher = startOverlayctl(['migrations', 'watch', migration.id, '--interval', '100', '--json'], env);
    await waitUntil(() => watcher.stdout().includes('"destination-acked"'), 10_000, () => `watch printed: ${watcher.stdout()}`);
    expect(watcher.stdout()).not.toContain('"committed"');
    const committed = await run(['migrations', 'commit', migration.id, '--json']);
    expect(committed.code).toBe(0);
    const watched = await watcher.done;
    runs.push(watched);
    expect(watched.code).toBe(0);
    const events = watched.stdout.trim().split('\n').map((l) => JSON.parse(l).event as string);
    expect(new Set(events).size).toBe(events.length);
    const steps = events.filter((e) => !e.startsWith('connections-'));
    expect(steps.slice(0, 3)).toEqual(['prepared', 'destination-acked', 'committed']);
    expect(new Set(steps.slice(3))).toEqual(new Set(['peers-acked', 'source-cleaned']));
    const shown = await ok(['migrations', 'show', migration.id]);
    expect(new Set(shown.timeline.map((e: any) => e.event))).toEqual(new Set(events));
  });

  it('migrations watch exits 7 for an aborted migration', async () => {
    const migration = await ok(['migrations', 'create', '--vm', 'vm-2', '--source', hostIds.get('hv2')!, '--destination', hostIds.get('hv1')!]);
    expect((await run(['migrations', 'abort', migration.id])).code).toBe(0);
    const watched = await run(['migrations', 'watch', migration.id]);
    expect(watched.code).toBe(7);
    expect(watched.stdout).toContain(`migration ${migration.id}: VM vm-2 (1 port)`);
    expect(watched.stdout.trim().split('\n').pop()).toBe('aborted');
    expect(watched.stderr).toContain('aborted');
    // Listed with its filters: newest first, the aborted one by state and VM.
    const aborted = await ok(['migrations', 'list', '--state', 'aborted', '--vm', 'vm-2']);
    expect(aborted.map((m: any) => m.id)).toEqual([migration.id]);
    const all = await ok(['migrations', 'list', '--host', hostIds.get('hv1')!]);
    expect(all[0].id).toBe(migration.id);
    expect(all.length).toBeGreaterThanOrEqual(2);
    const table = await run(['migrations']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+STATE\s+VM/);
    expect(table.stdout).toContain('aborted');
  });

  it('audit prints the 13 recommendations with status and findings; audit findings the history', async () => {
    const report = await ok(['audit']);
    expect(report.recommendations).toHaveLength(13);
    for (const r of report.recommendations) {
      expect(['pass', 'fail', 'not-applicable', 'unknown']).toContain(r.status);
    }
    const table = await run(['audit']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^VM-FW-R2\s+(pass|fail|unknown|not-applicable)\s+\d+\s+/m);
    // hv3 never connected: some recommendation says so about it.
    expect(table.stdout).toContain(`host=${hostIds.get('hv3')}`);

    const history = await ok(['audit', 'findings', '--since', '1h', '--state', 'open']);
    expect(history.items.length).toBeGreaterThan(0);
    expect(history.items.every((f: any) => f.closedAt === null)).toBe(true);
    const badSince = await run(['audit', 'findings', '--since', 'yesterday']);
    expect(badSince.code).toBe(1);
  });

  it('completion bash offers the subcommands and options of the words typed so far', () => {
    const script = execFileSync(process.execPath, [CLI_MAIN, 'completion', 'bash'], { encoding: 'utf8' });
    const complete = (...words: string[]): string[] =>
      execFileSync('bash', ['-c', `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _overlayctl_complete; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8' })
        .trim()
        .split(' ');
    expect(complete('overlayctl', 'mi')).toEqual(['migrations', 'mirror-sessions']);
    expect(complete('overlayctl', '--json', 'migrations', 'w')).toEqual(['watch']);
    expect(complete('overlayctl', 'ports', 'create', '--segment', 'x', '--w')).toEqual(['--wait']);
  });
});
