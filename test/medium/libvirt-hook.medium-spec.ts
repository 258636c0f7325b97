import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { buildWhenStale, ROOT } from '../support/build-when-stale';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { created, factories } from '../support/factories';

/*
 * The libvirt qemu hook (deploy/libvirt/qemu) run as libvirt runs it: one process per call, the
 * call's arguments, the domain XML on stdin, an empty environment but for the config file's
 * path. Each sequence is the one libvirt makes (docs/hooks.rst, src/qemu/qemu_migration.c) on
 * the destination and the source, against a real controller whose in-memory agents acknowledge.
 */

const HOOK = join(ROOT, 'deploy', 'libvirt', 'qemu');
const HOOK_JS = join(ROOT, 'dist', 'src', 'hook', 'main.js');

interface HookRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** One libvirt call of the hook: `qemu <guest> <op> <sub-op> <extra>`, `xml` on stdin (null: stdin never closed). */
function callHook(config: string, args: string[], xml: string | null): Promise<HookRun> {
  const child = spawn(HOOK, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', OVERLAY_HOOK_CONFIG: config, OVERLAY_HOOK_JS: HOOK_JS }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  child.stdin.on('error', () => undefined);
  if (xml !== null) {
    child.stdin.end(xml);
  }
  return new Promise((resolve, reject) => {
    // A test's own deadline, far above any bound the hooks are given here.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hook ${args.join(' ')} still running after 30 s\nstderr: ${stderr}`));
    }, 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A domain XML as libvirt passes it: `interfaces` in order, each with its MAC and maybe a port alias. */
function domainXml(uuid: string, name: string, interfaces: { mac: string; portId?: string }[]): string {
  const nics = interfaces
    .map((i) => `    <interface type='ethernet'>\n      <mac address='${i.mac}'/>\n      <model type='virtio'/>\n${i.portId ? `      <alias name='ua-overlay-${i.portId}'/>\n` : ''}    </interface>`)
    .join('\n');
  return `<domain type='kvm'>\n  <name>${name}</name>\n  <uuid>${uuid}</uuid>\n  <memory unit='KiB'>1048576</memory>\n  <os><type arch='x86_64' machine='pc-q35-8.2'>hvm</type></os>\n  <devices>\n${nics}\n  </devices>\n</domain>\n`;
}

/** A host's hook: its config file (mode 0600), log file and state directory. */
interface HostHook {
  config: string;
  log: string;
  stateDir: string;
  lines(): string[];
}

describe('the libvirt qemu hook: recorded libvirt call sequences against a real controller', () => {
  const prefix = uniquePrefix('libvirt-hook');
  const dir = mkdtempSync(join(tmpdir(), 'libvirt-hook-'));
  let ctl: Harness;
  let admin: ReturnType<typeof api>;
  let make: ReturnType<typeof factories>;
  const agents: TestAgent[] = [];
  const hostIds: Record<'src' | 'dst' | 'other', string> = { src: '', dst: '', other: '' };
  let segmentId: string;
  let src: HostHook;
  let dst: HostHook;
  let vms = 0;

  function hostHook(name: string, settings: Record<string, string>): HostHook {
    const log = join(dir, `${name}.log`);
    const stateDir = join(dir, `${name}-state`);
    const config = join(dir, `${name}.env`);
    const all = { OVERLAY_HOOK_LOG: log, OVERLAY_HOOK_STATE_DIR: stateDir, ...settings };
    writeFileSync(config, Object.entries(all).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });
    return { config, log, stateDir, lines: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []) };
  }

  async function hookToken(name: string, hosts: string[]): Promise<string> {
    return (await created(admin.post('/v1/tokens', { name, role: 'migration-hook', hostIds: hosts }))).token;
  }

  /** A VM on the source: a port found by its MAC, a port named by an alias, and a NIC the overlay does not know. */
  async function newVm() {
    const n = (++vms).toString(16).padStart(2, '0');
    const byMac = await make.port(segmentId, { hostId: hostIds.src, mac: `52:54:00:00:${n}:01` });
    const byAlias = await make.port(segmentId, { hostId: hostIds.src });
    const uuid = `4dea22b3-1d52-d8f3-2516-7800000000${n}`;
    const name = `vm-${vms}`;
    // The first interface's MAC in upper case (libvirt's is lower, the lookup takes either); the
    // alias wins over the MAC (the second interface's is not its port's); the third is not the overlay's.
    const xml = domainXml(uuid, name, [{ mac: `52:54:00:00:${n}:01`.toUpperCase() }, { mac: `52:54:00:ff:${n}:02`, portId: byAlias.id }, { mac: `52:54:00:aa:${n}:03` }]);
    return { uuid, name, xml, portIds: [byMac.id, byAlias.id].sort() };
  }

  /** Calls the hook as libvirt does, expecting it to let libvirt go on and to print nothing on stdout (the XML stays as it is). */
  async function call(host: HostHook, args: string[], xml: string): Promise<HookRun> {
    const run = await callHook(host.config, args, xml);
    expect({ args, code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({ args, code: 0, stdout: '', stderr: '' });
    return run;
  }

  const migrationOf = async (portId: string) => (await admin.get(`/v1/ports/${portId}`)).body.migration;
  const migrationsOf = async (portIds: string[]) => (await admin.get('/v1/migrations?limit=1000')).body.items.filter((m: any) => m.portIds.some((p: string) => portIds.includes(p)));

  beforeAll(async () => {
    expect(existsSync(HOOK)).toBe(true);
    buildWhenStale(HOOK_JS, ['src/hook', 'src/common'], { tsconfig: 'test/support/tsconfig.hook.json' });
    ctl = await startController({ prefix });
    admin = api(ctl.url);
    make = factories(admin);
    for (const name of ['src', 'dst', 'other'] as const) {
      hostIds[name] = (await make.host({ name: `lv-${name}` })).id;
    }
    const tenant = await make.tenant();
    segmentId = (await make.segment(tenant.id)).id;
    // The hook commits: the destination agent does not (OVERLAY_MIGRATION_AUTO_COMMIT=0).
    for (const name of ['src', 'dst'] as const) {
      const agent = makeAgent(`lv-${name}`, ctl.grpcTarget, { migrationAutoCommit: false });
      agents.push(agent);
      await agent.agent.start();
    }
    await waitUntil(() => agents.every((a) => a.agent.synced), 10_000, () => 'agents synced');
    // Each hypervisor's token is scoped to its own host.
    src = hostHook('src', { OVERLAY_URL: ctl.url, OVERLAY_TOKEN: await hookToken('hook-src', [hostIds.src]), OVERLAY_HOOK_HOST_ID: hostIds.src });
    dst = hostHook('dst', { OVERLAY_URL: ctl.url, OVERLAY_TOKEN: await hookToken('hook-dst', [hostIds.dst]), OVERLAY_HOOK_HOST_ID: hostIds.dst });
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds ports by MAC, in any case, for the hook (GET /v1/ports?mac=)', async () => {
    const port = await make.port(segmentId, { mac: '52:54:00:0a:0b:0c' });
    expect((await admin.get('/v1/ports?mac=52:54:00:0A:0B:0C')).body.items.map((p: any) => p.id)).toEqual([port.id]);
    expect((await admin.get('/v1/ports?mac=52:54:00:0a:0b:0d')).body.items).toEqual([]);
    expect(await admin.get('/v1/ports?mac=01:00:5e:00:00:01')).toMatchObject({ status: 400, body: { code: 'INVALID_MAC', field: 'mac' } });
    expect(await admin.get('/v1/ports?mac=52:54:00:0a:0b:0c&mac=52:54:00:0a:0b:0c')).toMatchObject({ status: 400, body: { code: 'INVALID_MAC', field: 'mac' } });
    expect(await admin.get('/v1/ports?mac=52-54-00-0a-0b-0c%0A')).toMatchObject({ status: 400, body: { field: 'mac' } });
  });

  it('success: prepared at the destination`s migrate begin, still open at started, committed at the source`s release end migrated', async () => {
    const vm = await newVm();
    // Destination.
    await call(dst, [vm.name, 'migrate', 'begin', '-'], vm.xml);
    const prepared = await migrationOf(vm.portIds[0]);
    expect(prepared).toEqual({ id: expect.any(String), destinationHostId: hostIds.dst });
    expect((await admin.get(`/v1/migrations/${prepared.id}`)).body).toMatchObject({ state: 'prepared', sourceHostId: hostIds.src, destinationHostId: hostIds.dst, portIds: expect.arrayContaining(vm.portIds) });
    expect((await admin.get(`/v1/migrations/${prepared.id}`)).body.portIds).toHaveLength(2);
    for (const op of ['prepare', 'start', 'started']) {
      await call(dst, [vm.name, op, 'begin', '-'], vm.xml);
    }
    // `started` comes before the memory is copied: the VM still runs on the source.
    expect((await admin.get(`/v1/migrations/${prepared.id}`)).body.state).toBe('prepared');
    // Source, once the VM resumed on the destination.
    await call(src, [vm.name, 'stopped', 'end', '-'], vm.xml);
    expect((await admin.get(`/v1/migrations/${prepared.id}`)).body.state).toBe('prepared');
    await call(src, [vm.name, 'release', 'end', 'migrated'], vm.xml);
    const after = (await admin.get(`/v1/migrations/${prepared.id}`)).body;
    expect(['committed', 'completed']).toContain(after.state);
    expect(after.timeline.find((e: any) => e.event === 'committed').by).toMatchObject({ name: 'hook-src', role: 'migration-hook' });
    for (const id of vm.portIds) {
      expect((await admin.get(`/v1/ports/${id}`)).body).toMatchObject({ hostId: hostIds.dst, migration: null });
    }
    // One line per thing done or ignored, each naming the domain and the call.
    expect(dst.lines().filter((l) => l.includes(`${vm.name} migrate begin:`))).toEqual([
      expect.stringMatching(/info vm-\d+ migrate begin: interface 3 \(mac 52:54:00:aa:[0-9a-f]{2}:03\): no port of the overlay bound to another host: ignored$/),
      expect.stringContaining(`prepared migration ${prepared.id} (prepared): 2 port(s)`),
    ]);
    expect(src.lines().filter((l) => l.includes(`${vm.name} release end:`))).toEqual([expect.stringContaining(`migration ${prepared.id} committed: its ports are bound to host ${hostIds.dst} (the domain migrated away)`)]);
    // Later, the VM stops on the destination: its migration was committed, nothing is aborted.
    await call(dst, [vm.name, 'stopped', 'end', '-'], vm.xml);
    expect(['committed', 'completed']).toContain((await admin.get(`/v1/migrations/${prepared.id}`)).body.state);
    expect(dst.lines().pop()).toContain(`migration ${prepared.id} was committed (the domain ran here): nothing to abort`);
  });

  it('failure on the destination: the incoming domain stops (release end failed) before the migration finished: aborted, the ports stay on the source', async () => {
    const vm = await newVm();
    for (const op of ['migrate', 'prepare', 'start', 'started']) {
      await call(dst, [vm.name, op, 'begin', '-'], vm.xml);
    }
    const { id } = await migrationOf(vm.portIds[0]);
    expect((await admin.get(`/v1/migrations/${id}`)).body.state).toBe('prepared');
    await call(dst, [vm.name, 'stopped', 'end', '-'], vm.xml);
    expect((await admin.get(`/v1/migrations/${id}`)).body).toMatchObject({ state: 'aborted' });
    await call(dst, [vm.name, 'release', 'end', 'failed'], vm.xml);
    for (const portId of vm.portIds) {
      expect((await admin.get(`/v1/ports/${portId}`)).body).toMatchObject({ hostId: hostIds.src, migration: null });
    }
    expect(dst.lines().filter((l) => l.includes(`${vm.name} stopped end:`))).toEqual([expect.stringContaining(`migration ${id} aborted: the incoming domain stopped before the migration finished`)]);
    // The source resumes the VM and calls nothing; one migration was made, and it is aborted.
    expect((await migrationsOf(vm.portIds)).map((m: any) => m.state)).toEqual(['aborted']);
  });

  it('cancel (virsh migrate --abort), libvirt < 10.5.0: the destination`s stopped end fails to reach the controller, its release end - aborts; nothing commits', async () => {
    const vm = await newVm();
    for (const op of ['migrate', 'prepare', 'start', 'started']) {
      await call(dst, [vm.name, op, 'begin', '-'], vm.xml);
    }
    const { id } = await migrationOf(vm.portIds[0]);
    // The first call after the cancel cannot reach the controller (a config pointing nowhere): the state stays for the next.
    const cut = hostHook('dst-cut', { OVERLAY_URL: 'http://127.0.0.1:9', OVERLAY_TOKEN: 'ovl_x', OVERLAY_HOOK_HOST_ID: hostIds.dst, OVERLAY_HOOK_STATE_DIR: dst.stateDir });
    await call(cut, [vm.name, 'stopped', 'end', '-'], vm.xml);
    expect(cut.lines()).toEqual([expect.stringContaining(`could not abort migration ${id} (POST /v1/migrations/${id}/abort:`)]);
    expect((await admin.get(`/v1/migrations/${id}`)).body.state).toBe('prepared');
    // No shutoff reason (libvirt < 10.5.0): taken as "migrated" for the source's side, but this host is the destination: it aborts, never commits.
    await call(dst, [vm.name, 'release', 'end', '-'], vm.xml);
    expect((await admin.get(`/v1/migrations/${id}`)).body.state).toBe('aborted');
    for (const portId of vm.portIds) {
      expect((await admin.get(`/v1/ports/${portId}`)).body).toMatchObject({ hostId: hostIds.src, migration: null });
    }
  });

  it('the VM destroyed on the source while migrating (release end destroyed): the source aborts', async () => {
    const vm = await newVm();
    await call(dst, [vm.name, 'migrate', 'begin', '-'], vm.xml);
    const { id } = await migrationOf(vm.portIds[0]);
    await call(src, [vm.name, 'stopped', 'end', '-'], vm.xml);
    await call(src, [vm.name, 'release', 'end', 'destroyed'], vm.xml);
    expect((await admin.get(`/v1/migrations/${id}`)).body.state).toBe('aborted');
    expect(src.lines().pop()).toContain(`migration ${id} aborted (the domain stopped here (destroyed), not by migration)`);
  });

  it('a MAC that ports of two segments share is ignored, saying how to name the port; the alias settles it', async () => {
    const tenant = await make.tenant();
    const other = await make.segment(tenant.id);
    const mac = '52:54:00:5a:5a:01';
    const mine = await make.port(segmentId, { hostId: hostIds.src, mac });
    const theirs = await make.port(other.id, { hostId: hostIds.other, mac });
    const uuid = '4dea22b3-1d52-d8f3-2516-7800000005a5';
    await call(dst, ['vm-twin', 'migrate', 'begin', '-'], domainXml(uuid, 'vm-twin', [{ mac }]));
    expect(dst.lines().slice(-2)).toEqual([
      expect.stringContaining(`vm-twin migrate begin: interface 1 (mac ${mac}): 2 ports have this MAC (${[mine.id, theirs.id].join(', ')}): ignored; name its port with <alias name="ua-overlay-<port id>"/>`),
      expect.stringContaining(`no interface of domain ${uuid} maps to a port: nothing to prepare`),
    ]);
    expect(await migrationsOf([mine.id, theirs.id])).toEqual([]);
    await call(dst, ['vm-twin', 'migrate', 'begin', '-'], domainXml(uuid, 'vm-twin', [{ mac, portId: mine.id }]));
    expect(await migrationOf(mine.id)).toEqual({ id: expect.any(String), destinationHostId: hostIds.dst });
    await call(dst, ['vm-twin', 'stopped', 'end', '-'], domainXml(uuid, 'vm-twin', [{ mac, portId: mine.id }]));
    expect(await migrationOf(mine.id)).toBeNull();
  });

  it('a state directory it cannot write: the prepare stands (with the TTL the settings give), logged as one that will expire rather than be aborted', async () => {
    const vm = await newVm();
    const token = await hookToken('hook-dst-ro', [hostIds.dst]);
    const settings = { OVERLAY_URL: ctl.url, OVERLAY_TOKEN: token, OVERLAY_HOOK_HOST_ID: hostIds.dst, OVERLAY_HOOK_STATE_DIR: join(dst.config, 'state'), OVERLAY_HOOK_MIGRATION_TTL_MS: '654321' };
    const readOnly = hostHook('dst-ro', settings);
    await call(readOnly, [vm.name, 'migrate', 'begin', '-'], vm.xml);
    const { id } = await migrationOf(vm.portIds[0]);
    const prepared = (await admin.get(`/v1/migrations/${id}`)).body;
    expect(Date.parse(prepared.expiresAt) - Date.parse(prepared.createdAt)).toBe(654321);
    expect(readOnly.lines().pop()).toMatch(new RegExp(`warning vm-\\d+ migrate begin: could not keep migration ${id} in .*: if the migration fails here, it is not aborted but expires at its TTL$`));
    expect((await admin.post(`/v1/migrations/${id}/abort`)).body.state).toBe('aborted');
  });

  it('an ordinary start and stop of a domain outside any migration calls nothing that changes the controller', async () => {
    const vm = await newVm();
    const before = await ctl.dump();
    for (const args of [
      ['prepare', 'begin', '-'],
      ['start', 'begin', '-'],
      ['started', 'begin', '-'],
      ['stopped', 'end', '-'],
      ['release', 'end', 'shutdown'],
    ]) {
      await call(src, [vm.name, ...args], vm.xml);
    }
    expect(await ctl.dump()).toEqual(before);
  });

  it('a refused prepare (a token scoped to other hosts: 403) fails the incoming migration, saying why on stderr; with OVERLAY_HOOK_REFUSED_PREPARE=proceed it only logs', async () => {
    const vm = await newVm();
    const token = await hookToken('hook-other', [hostIds.other]);
    const strict = hostHook('dst-strict', { OVERLAY_URL: ctl.url, OVERLAY_TOKEN: token, OVERLAY_HOOK_HOST_ID: hostIds.dst });
    const refused = await callHook(strict.config, [vm.name, 'migrate', 'begin', '-'], vm.xml);
    expect(refused).toEqual({ code: 1, stdout: '', stderr: expect.stringMatching(/^overlay: the controller refused the prepare: 403 FORBIDDEN \(sourceHostId\): .*\n$/) });
    expect(strict.lines().pop()).toMatch(/error vm-\d+ migrate begin: the controller refused the prepare: 403 FORBIDDEN .*; the incoming migration is refused \(OVERLAY_HOOK_REFUSED_PREPARE=fail\)$/);
    const lenient = hostHook('dst-lenient', { OVERLAY_URL: ctl.url, OVERLAY_TOKEN: token, OVERLAY_HOOK_HOST_ID: hostIds.dst, OVERLAY_HOOK_REFUSED_PREPARE: 'proceed' });
    await call(lenient, [vm.name, 'migrate', 'begin', '-'], vm.xml);
    expect(lenient.lines().pop()).toContain('the migration proceeds (OVERLAY_HOOK_REFUSED_PREPARE=proceed)');
    expect(await migrationsOf(vm.portIds)).toEqual([]);
  });

  describe('a controller that does not answer', () => {
    let blackHole: Server;
    const held: Socket[] = [];
    let url: string;

    beforeAll(async () => {
      // Accepts connections and never answers: only the hook's own bounds end its calls.
      blackHole = createServer((socket) => held.push(socket));
      await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(blackHole.address() as { port: number }).port}`;
    });

    afterAll(async () => {
      held.forEach((s) => s.destroy());
      await new Promise((resolve) => blackHole.close(resolve));
    });

    it('each call is bounded: migrate begin gives up, logs, exits 0 and prints nothing, so libvirt proceeds', async () => {
      const vm = await newVm();
      const hung = hostHook('dst-hung', { OVERLAY_URL: url, OVERLAY_TOKEN: 'ovl_x', OVERLAY_HOOK_HOST_ID: hostIds.dst, OVERLAY_HOOK_CALL_TIMEOUT_MS: '300', OVERLAY_HOOK_TIMEOUT_MS: '5000' });
      await call(hung, [vm.name, 'migrate', 'begin', '-'], vm.xml);
      expect(hung.lines()).toEqual([expect.stringMatching(/warning vm-\d+ migrate begin: port lookup failed \(GET \/v1\/ports\?mac=.*: no answer within 300 ms\): nothing prepared; the migration proceeds/)]);
      expect(held.length).toBeGreaterThan(0);
    });

    it('the whole run is bounded: past OVERLAY_HOOK_TIMEOUT_MS the hook exits 0 whatever it waits for (here stdin, never closed)', async () => {
      const hung = hostHook('dst-stalled', { OVERLAY_URL: url, OVERLAY_TOKEN: 'ovl_x', OVERLAY_HOOK_HOST_ID: hostIds.dst, OVERLAY_HOOK_TIMEOUT_MS: '1000', OVERLAY_HOOK_CALL_TIMEOUT_MS: '300' });
      const run = await callHook(hung.config, ['vm-stalled', 'migrate', 'begin', '-'], null);
      expect(run).toEqual({ code: 0, stdout: '', stderr: '' });
      expect(hung.lines()).toEqual([expect.stringContaining('vm-stalled migrate begin: gave up after 1000 ms (OVERLAY_HOOK_TIMEOUT_MS); libvirt proceeds')]);
    });
  });

  it.each([
    ['a billion laughs', `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><domain><uuid>&lol2;</uuid></domain>`, /DOCTYPE/],
    ['an external entity', `<domain><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid><devices><interface><mac address='&xxe;'/></interface></devices></domain>`, /entity &xxe;/],
    ['a truncated document', domainXml('4dea22b3-1d52-d8f3-2516-782e98ab3fa0', 'x', [{ mac: '52:54:00:00:00:01' }]).slice(0, 150), /not closed|malformed/],
    ['a uuid that is a path', `<domain><uuid>../../../etc/overlay/hook</uuid></domain>`, /no valid <uuid>/],
  ])('hostile XML on stdin (%s): logged, nothing done, libvirt proceeds', async (_what, xml, why) => {
    const before = await ctl.dump();
    await call(dst, ['vm-hostile', 'migrate', 'begin', '-'], xml);
    const line = dst.lines().pop()!;
    expect(line).toMatch(/error vm-hostile migrate begin: the domain XML on stdin was not used \(.*\): nothing done$/);
    expect(line).toMatch(why);
    expect(await ctl.dump()).toEqual(before);
  });

  it('a config file others can read is not used: logged, nothing done, libvirt proceeds', async () => {
    const vm = await newVm();
    const open = hostHook('dst-open', { OVERLAY_URL: ctl.url, OVERLAY_TOKEN: 'ovl_x', OVERLAY_HOOK_HOST_ID: hostIds.dst });
    chmodSync(open.config, 0o644);
    const run = await callHook(open.config, [vm.name, 'migrate', 'begin', '-'], vm.xml);
    // Not configured: the line goes to syslog, or to stderr where logger(1) is missing.
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('');
    expect(await migrationsOf(vm.portIds)).toEqual([]);
  });
});
