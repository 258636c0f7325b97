import * as grpc from '@grpc/grpc-js';
import { HostObservationRepository } from '../../src/controller/distribution/host-observation.repository';
import { RedisStore } from '../../src/controller/store/redis-store';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostKernelState } from '../../src/agent/dataplane/dataplane';
import { MemoryDataplane } from '../../src/agent/dataplane/memory/memory.dataplane';
import { InventoryCollector } from '../../src/agent/inventory/collector';
import { makeAgent, recordingLogger, waitUntil } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { RawAgent } from '../support/raw-agent';

/**
 * What an agent observed of its host (SyncRequest.observed) from the stream to the hosts API: the
 * taps of its own ports and the bridges of its span's segments are kept (others ignored), shown
 * as promiscuous ports (with their role) and hub segments; a malformed report ends the stream and
 * records nothing; the host's deletion removes it. The host's inventory rides along
 * (`observed.inventory`: null when the agent sent none, unknown fields null) and the repository
 * hands it to the audit.
 */
/** An inventory as an agent sends it (proto3 optional fields left unset when unknown)... */
const INVENTORY = {
  links: [
    { name: 'bond0', kind: 'bond', up: true, team: { mode: 'active-backup', miimon: 100, arpInterval: 0, arpValidate: 'none', members: [{ name: 'eno1', up: true, active: true }, { name: 'ens2f0', up: true, active: false }] } },
    { name: 'bond0.100', kind: 'vlan', up: true, vlanId: 100, parent: 'bond0' },
    { name: 'eno1', kind: 'physical', up: true, master: 'bond0', nic: { driver: 'ixgbe', pciAddress: '0000:18:00.0', pciBus: '0000:18', numaNode: 0, ignoreRoutesWithLinkdown: false }, lldp: { chassisId: '00:1c:73:aa:bb:01', systemName: 'tor-a1', portId: 'Ethernet12', portDescription: 'hv1 eno1', vlans: [10, 100] } },
    { name: 'ens2f0', kind: 'physical', up: true, master: 'bond0', nic: { driver: 'i40e' }, lldp: { chassisId: '00:1c:73:aa:bb:02', vlans: [] } },
  ],
  vtepDevice: 'bond0.100',
  vtepRoutes: [{ destination: '192.0.2.92', devices: ['bond0.100'] }],
};
/** ...and as the controller stores and shows it (every unknown field null). */
const none = { master: null, team: null, nic: null, lldp: null, vlanId: null, parent: null };
const OBSERVED_INVENTORY = {
  links: [
    { ...none, name: 'bond0', kind: 'bond', up: true, team: INVENTORY.links[0].team },
    { ...none, name: 'bond0.100', kind: 'vlan', up: true, vlanId: 100, parent: 'bond0' },
    { ...none, name: 'eno1', kind: 'physical', up: true, master: 'bond0', nic: INVENTORY.links[2].nic, lldp: INVENTORY.links[2].lldp },
    { ...none, name: 'ens2f0', kind: 'physical', up: true, master: 'bond0', nic: { driver: 'i40e', pciAddress: null, pciBus: null, numaNode: null, ignoreRoutesWithLinkdown: null }, lldp: { chassisId: '00:1c:73:aa:bb:02', systemName: null, portId: null, portDescription: null, vlans: [] } },
  ],
  vtepDevice: 'bond0.100',
  vtepRoutes: [{ destination: '192.0.2.92', devices: ['bond0.100'] }],
};

describe('host observation: from the agent to GET /v1/hosts/{id}', () => {
  const prefix = uniquePrefix('host-observed');
  let ctl: Harness;
  let client: ReturnType<typeof api>;
  const ids: Record<string, string> = {};
  let vni = 0;

  beforeAll(async () => {
    ctl = await startController({ prefix });
    client = api(ctl.url);
    const tenantId = (await client.post('/v1/tenants', { name: 'acme' })).body.id;
    const segment = (await client.post('/v1/segments', { tenantId, name: 'web' })).body;
    ids.segment = segment.id;
    vni = segment.vni;
    for (const name of ['hv1', 'hv2']) {
      ids[name] = (await client.post('/v1/hosts', { name: `obs-${name}`, vtepIp: `192.0.2.${name === 'hv1' ? 91 : 92}` })).body.id;
    }
    ids.vm = (await client.post('/v1/ports', { segmentId: segment.id, hostId: ids.hv1 })).body.id;
    ids.quiet = (await client.post('/v1/ports', { segmentId: segment.id, hostId: ids.hv1 })).body.id;
    const analyzer = await client.post('/v1/ports', { segmentId: segment.id, hostId: ids.hv1, role: 'analyzer' });
    expect(analyzer.status).toBe(201);
    ids.an = analyzer.body.id;
    ids.other = (await client.post('/v1/ports', { segmentId: segment.id, hostId: ids.hv2 })).body.id;
  });

  afterAll(async () => {
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it('shows the promiscuous ports with their role and the hub segments; a foreign tap or bridge is ignored', async () => {
    expect((await client.get(`/v1/hosts/${ids.hv1}`)).body.observed).toBeNull();
    const raw = new RawAgent(ctl.grpcTarget, 'obs-hv1', 'raw-obs-hv1');
    try {
      await waitUntil(() => raw.delivered, 10_000, () => 'hv1 snapshot');
      const before = Date.now();
      raw.send({
        observed: {
          taps: [
            { portId: ids.vm, promiscuity: 2, bridged: true },
            { portId: ids.quiet, promiscuity: 1, bridged: true },
            { portId: ids.an, promiscuity: 1, bridged: false },
            { portId: ids.other, promiscuity: 5, bridged: false }, // hv2's port: ignored
          ],
          bridges: [
            { vni, ageingSeconds: 0 },
            { vni: vni + 1, ageingSeconds: 0 }, // no segment of hv1's span: ignored
          ],
        },
      });
      await waitUntil(async () => (await client.get(`/v1/hosts/${ids.hv1}`)).body.observed !== null, 10_000, () => 'observation stored');
      const host = (await client.get(`/v1/hosts/${ids.hv1}`)).body;
      expect(host.observed).toEqual({
        at: expect.any(String),
        promiscuousPorts: [
          { portId: ids.vm, role: 'vm', promiscuity: 2 },
          { portId: ids.an, role: 'analyzer', promiscuity: 1 },
        ],
        hubSegments: [{ segmentId: ids.segment, vni }],
        inventory: null,
      });
      expect(Date.parse(host.observed.at)).toBeGreaterThanOrEqual(before - 1);
      const listed = (await client.get('/v1/hosts')).body.items as { id: string; observed: unknown }[];
      expect(Object.fromEntries(listed.map((h) => [h.id, h.observed]))).toEqual({ [ids.hv1]: host.observed, [ids.hv2]: null });

      // The next report replaces it whole, with the host's inventory this time.
      raw.send({ observed: { taps: [{ portId: ids.vm, promiscuity: 1, bridged: true }], bridges: [{ vni, ageingSeconds: 300 }], inventory: INVENTORY } });
      await waitUntil(async () => (await client.get(`/v1/hosts/${ids.hv1}`)).body.observed.promiscuousPorts.length === 0, 10_000, () => 'observation replaced');
      expect((await client.get(`/v1/hosts/${ids.hv1}`)).body.observed).toEqual({ at: expect.any(String), promiscuousPorts: [], hubSegments: [], inventory: OBSERVED_INVENTORY });
      const listedAgain = (await client.get('/v1/hosts')).body.items as { id: string; observed: { inventory: unknown } | null }[];
      expect(listedAgain.find((h) => h.id === ids.hv1)!.observed!.inventory).toEqual(OBSERVED_INVENTORY);
      // What the audit reads: every host's stored inventory, null for none.
      const stored = await ctl.app.get(HostObservationRepository).read([ids.hv1, ids.hv2]);
      expect(stored.get(ids.hv1)!.inventory).toEqual(OBSERVED_INVENTORY);
      expect(stored.has(ids.hv2)).toBe(false);
      expect(raw.ended).toBeUndefined();

      raw.send({ observed: { taps: [{ portId: 'p'.repeat(65), promiscuity: 3, bridged: false }], bridges: [] } });
      await waitUntil(() => raw.ended !== undefined, 10_000, () => 'stream ended');
      expect(raw.ended).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/port_id is not a port id/) });
    } finally {
      raw.close();
    }
    for (const observed of [
      { taps: Array.from({ length: 4097 }, (_, i) => ({ portId: `p${i}`, promiscuity: 0 })) },
      { bridges: [{ vni: 0 }] },
      { taps: [{ portId: ids.vm }, { portId: ids.vm }] },
      { inventory: { links: [{ name: 'eno1', kind: 'physical' }, { name: 'eno1', kind: 'physical' }] } },
      { inventory: { links: [{ name: 'bond0.4095', kind: 'vlan', vlanId: 4095 }] } },
      { inventory: { links: Array.from({ length: 257 }, (_, i) => ({ name: `l${i}`, kind: 'dummy' })) } },
    ]) {
      const again = new RawAgent(ctl.grpcTarget, 'obs-hv1', 'raw-obs-hv1');
      try {
        await waitUntil(() => again.delivered, 10_000, () => 'hv1 snapshot');
        again.send({ observed });
        await waitUntil(() => again.ended !== undefined, 10_000, () => 'stream ended');
        expect(again.ended!.code).toBe(grpc.status.INVALID_ARGUMENT);
      } finally {
        again.close();
      }
    }
    // A refused report records nothing: the last one stands.
    expect((await client.get(`/v1/hosts/${ids.hv1}`)).body.observed).toMatchObject({ promiscuousPorts: [], hubSegments: [], inventory: OBSERVED_INVENTORY });
  });

  it('an agent collects its inventory (recorded ip, teamdctl and lldpcli output) and sends it with its observation', async () => {
    const fixtures = join(__dirname, '../../src/agent/inventory/__fixtures__');
    const recorded: Record<string, string> = {
      'ip -d -j link show': readFileSync(join(fixtures, 'ip-link-bonded.json'), 'utf8'),
      'teamdctl team0 state dump': readFileSync(join(fixtures, 'teamd-activebackup.json'), 'utf8'),
      'lldpcli -f json show neighbors details': readFileSync(join(fixtures, 'lldpcli-neighbors.json'), 'utf8'),
      'ip -j addr show': JSON.stringify([{ ifname: 'vtep0', addr_info: [{ local: '192.0.2.93' }] }]),
    };
    const commands: string[] = [];
    const runner = {
      run: (cmd: string, args: string[]) => {
        commands.push([cmd, ...args].join(' '));
        const out = recorded[[cmd, ...args].join(' ')];
        return out === undefined ? Promise.reject(new Error(`${cmd}: not installed`)) : Promise.resolve(out);
      },
    };
    /** A dataplane that observes a host with no taps or bridges (the memory one observes none, and so sends no observation). */
    class HostDataplane extends MemoryDataplane {
      observeHost(): HostKernelState {
        return { taps: new Map(), bridgeAgeing: new Map() };
      }
    }
    const hostId = (await client.post('/v1/hosts', { name: 'obs-hv3', vtepIp: '192.0.2.93' })).body.id as string;
    const log = recordingLogger();
    const a = makeAgent('obs-hv3', ctl.grpcTarget, { inventoryIntervalMs: 60_000 }, undefined, { logger: log, dataplane: new HostDataplane(), inventory: new InventoryCollector({ runner, sysRoot: '/nonexistent' }) });
    try {
      await a.agent.start();
      // Collected at start (before the snapshot names the host's VTEP), and again once it does.
      await waitUntil(async () => (await client.get(`/v1/hosts/${hostId}`)).body.observed?.inventory?.vtepDevice === 'vtep0', 10_000, () => `inventory stored ${JSON.stringify(log.lines)} ${commands.join()}`);
      const inventory = (await client.get(`/v1/hosts/${hostId}`)).body.observed.inventory;
      expect(inventory.vtepDevice).toBe('vtep0');
      expect(inventory.links.map((l: { name: string }) => l.name)).toEqual(['bond0', 'bond0.100', 'bond1', 'eno1', 'enp175s0f0', 'enp175s0f1', 'ens2f0', 'ens3f0', 'ens3f1', 'lo', 'team0', 'vtep0']);
      expect(inventory.links.find((l: { name: string }) => l.name === 'team0').team).toMatchObject({ mode: 'active-backup', arpValidate: 'active' });
      expect(inventory.links.find((l: { name: string }) => l.name === 'eno1')).toMatchObject({ master: 'bond0', nic: null, lldp: { systemName: 'tor-a1.dc1.example.net', vlans: [10, 100, 200] } });
      expect(commands).toContain('ip -d -j link show');
    } finally {
      await a.cleanup();
    }
    expect((await client.delete(`/v1/hosts/${hostId}`)).status).toBe(204);
  });

  it('keeps an inventory\'s text clean: control characters and bidirectional controls out, line breaks as spaces', async () => {
    // LLDP fields come from whatever is at the other end of the cable; they reach the API, the audit's evidence and terminals.
    const hostId = (await client.post('/v1/hosts', { name: 'obs-hv4', vtepIp: '192.0.2.94' })).body.id as string;
    const raw = new RawAgent(ctl.grpcTarget, 'obs-hv4', 'raw-obs-hv4');
    try {
      await waitUntil(() => raw.delivered, 10_000, () => 'hv4 snapshot');
      raw.send({
        observed: {
          inventory: {
            links: [
              { name: 'eno1', kind: 'physical', up: true, master: 'bond\u0000x', nic: { driver: 'ixgbe\u0007' }, lldp: { chassisId: '00:1c\u001b[2J', systemName: 'tor\u202ea1', portId: 'Eth\u202812', portDescription: 'hv4\teno1', vlans: [] } },
              { name: 'eth\u001b[31m9', kind: 'physical', up: true },
            ],
            vtepDevice: 'eno1\u0085',
            vtepRoutes: [{ destination: '192.0.2.94', devices: ['eno1\u0000'] }],
          },
        },
      });
      await waitUntil(async () => (await client.get(`/v1/hosts/${hostId}`)).body.observed !== null, 10_000, () => 'observation stored');
      expect((await client.get(`/v1/hosts/${hostId}`)).body.observed.inventory).toEqual({
        links: [
          {
            ...none,
            name: 'eno1',
            kind: 'physical',
            up: true,
            master: 'bondx',
            nic: { driver: 'ixgbe', pciAddress: null, pciBus: null, numaNode: null, ignoreRoutesWithLinkdown: null },
            lldp: { chassisId: '00:1c[2J', systemName: 'tora1', portId: 'Eth 12', portDescription: 'hv4 eno1', vlans: [] },
          },
          { ...none, name: 'eth[31m9', kind: 'physical', up: true },
        ],
        vtepDevice: 'eno1',
        vtepRoutes: [{ destination: '192.0.2.94', devices: ['eno1'] }],
      });
      expect(raw.ended).toBeUndefined();
    } finally {
      raw.close();
    }
    expect((await client.delete(`/v1/hosts/${hostId}`)).status).toBe(204);
  });

  it('is removed with its host', async () => {
    const raw = new RawAgent(ctl.grpcTarget, 'obs-hv2', 'raw-obs-hv2');
    const key = ctl.app.get(RedisStore).keys.hostObserved(ids.hv2);
    try {
      await waitUntil(() => raw.delivered, 10_000, () => 'hv2 snapshot');
      raw.send({ observed: { taps: [{ portId: ids.other, promiscuity: 2, bridged: true }], bridges: [] } });
      await waitUntil(async () => (await ctl.redis.exists(key)) === 1, 10_000, () => 'observation stored');
    } finally {
      raw.close();
    }
    expect((await client.delete(`/v1/ports/${ids.other}`)).status).toBe(204);
    expect((await client.delete(`/v1/hosts/${ids.hv2}`)).status).toBe(204);
    expect(await ctl.redis.exists(key)).toBe(0);
  });
});
