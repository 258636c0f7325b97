import { HostObservationRepository, type StoredHostObservation } from '../../src/controller/distribution/host-observation.repository';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { factories } from '../support/factories';
import { inventory, nic } from '../support/audit-worlds';
import { prng } from '../support/prng';

/**
 * GET /v1/audit over a seeded random world (segments with VLANs, hosts with declared trunks,
 * some with an observed inventory whose LLDP names other VLANs, ports with and without port
 * security, promiscuous taps) against an oracle written here from what the test built: the
 * missing trunks and the sprawl of VM-VN-R1, the unfiltered ports of VM-FW-R1 and the
 * promiscuous VM ports of VM-TM-R2. Replay a failure with OVERLAY_AUDIT_SEED.
 */
const SEED = Number(process.env.OVERLAY_AUDIT_SEED ?? 20261205);
const VLANS = [401, 402, 403];
const FOREIGN_VLAN = 999;

describe(`GET /v1/audit against an oracle (seed ${SEED})`, () => {
  const prefix = uniquePrefix('audit-oracle');
  let ctl: Harness;

  afterAll(async () => {
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it('finds exactly the missing trunks, the sprawl, the unfiltered ports and the promiscuous VM ports the oracle computes', async () => {
    const random = prng(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
    const subset = (items: readonly number[]): number[] => {
      const out = items.filter(() => random() < 0.5);
      return out.length ? out : [pick(items)];
    };
    ctl = await startController({ prefix });
    const client = api(ctl.url);
    const f = factories(client);
    const tenant = await f.tenant();
    const segments = [...(await Promise.all(VLANS.map((vlanId) => f.segment(tenant.id, { vlanId })))), await f.segment(tenant.id)];
    const vlanOf = new Map<string, number | null>(segments.map((s) => [s.id, s.vlanId ?? null]));
    const segmentOfVlan = new Map<number, string>(segments.filter((s) => s.vlanId).map((s) => [s.vlanId, s.id]));

    // Hosts 0 and 1 report LLDP on two NICs; host 2 reports taps only (its declared trunk counts); host 3 never reports.
    const hosts: { id: string; name: string; declared: number[]; lldp: Map<string, number[]> | null; reports: boolean }[] = [];
    for (let i = 0; i < 4; i++) {
      const declared = subset([...VLANS, FOREIGN_VLAN]);
      const name = `oracle-hv${i}`;
      const id = (await f.host({ name, vtepIp: `192.0.2.${70 + i}`, inventory: { trunkedVlans: declared } })).id;
      const lldp = i < 2 ? new Map([['eth0', subset([...VLANS, FOREIGN_VLAN])], ['eth1', subset([...VLANS, FOREIGN_VLAN])]]) : null;
      hosts.push({ id, name, declared, lldp, reports: i < 3 });
    }

    const ports: { id: string; hostId: string | null; segmentId: string; role: 'vm' | 'analyzer'; portSecurity: boolean; promiscuity: number }[] = [];
    for (let i = 0; i < 18; i++) {
      const segment = pick(segments);
      const host = random() < 0.85 ? pick(hosts) : null;
      const role = random() < 0.15 ? 'analyzer' : 'vm';
      const portSecurity = role === 'vm' && random() < 0.75;
      const body: Record<string, unknown> = { ...(host ? { hostId: host.id } : {}), ...(role === 'analyzer' ? { role } : {}), ...(portSecurity ? {} : { portSecurity: false }) };
      const port = await f.port(segment.id, body);
      ports.push({ id: port.id, hostId: host?.id ?? null, segmentId: segment.id, role, portSecurity, promiscuity: random() < 0.3 ? 2 : 1 });
    }

    const repo = ctl.app.get(HostObservationRepository);
    for (const host of hosts.filter((h) => h.reports)) {
      const local = ports.filter((p) => p.hostId === host.id);
      const observation = {
        at: Date.parse('2026-01-01T00:00:00.000Z'),
        // A VM's tap is bridged (its bridge is one promiscuous user); an analyzer's is not.
        taps: local.map((p) => ({ portId: p.id, promiscuity: p.promiscuity, bridged: p.role === 'vm' })),
        bridges: [],
        inventory: host.lldp ? inventory([...host.lldp].map(([name, vlans]) => nic(name, { driver: 'ixgbe', switch: `tor-${name}`, vlans })), null) : null,
      } as StoredHostObservation;
      await repo.write(host.id, observation);
    }

    // The oracle.
    const missing: string[] = [];
    const sprawl: string[] = [];
    const foreign: string[] = [];
    for (const host of hosts) {
      const needed = new Set(ports.filter((p) => p.hostId === host.id && vlanOf.get(p.segmentId) !== null).map((p) => vlanOf.get(p.segmentId)!));
      const trunks: [string, number[]][] = host.lldp ? [...host.lldp] : [['', host.declared]];
      for (const vlan of needed) {
        for (const [link, vlans] of trunks) {
          if (!vlans.includes(vlan)) {
            missing.push(`${host.id}/${segmentOfVlan.get(vlan)}/${link}`);
          }
        }
      }
      for (const vlan of new Set(trunks.flatMap(([, vlans]) => vlans))) {
        if (!needed.has(vlan)) {
          if (vlan === FOREIGN_VLAN) {
            foreign.push(host.id);
          } else {
            sprawl.push(`${host.id}/${segmentOfVlan.get(vlan)}`);
          }
        }
      }
    }
    const unfiltered = ports.filter((p) => p.hostId !== null && p.role === 'vm' && !p.portSecurity).map((p) => p.id);
    const promiscuous = ports.filter((p) => p.hostId !== null && p.role === 'vm' && p.promiscuity > 1 && hosts.find((h) => h.id === p.hostId)!.reports).map((p) => p.id);

    const res = await client.get('/v1/audit');
    expect(res.status).toBe(200);
    const r = Object.fromEntries(res.body.recommendations.map((x: any) => [x.id, x]));
    const of = (id: string, severity: string) => r[id].findings.filter((x: any) => x.severity === severity);
    const sorted = (xs: string[]) => [...xs].sort();

    expect(sorted(of('VM-VN-R1', 'high').map((x: any) => `${x.subject.hostId}/${x.subject.segmentId}/${x.subject.link ?? ''}`))).toEqual(sorted(missing));
    expect(sorted(of('VM-VN-R1', 'medium').map((x: any) => `${x.subject.hostId}/${x.subject.segmentId}`))).toEqual(sorted(sprawl));
    expect(sorted(of('VM-VN-R1', 'low').map((x: any) => x.subject.hostId))).toEqual(sorted(foreign));
    expect(r['VM-VN-R1'].status).toBe(missing.length + sprawl.length ? 'fail' : 'pass');
    expect(sorted(r['VM-FW-R1'].findings.map((x: any) => x.subject.portId))).toEqual(sorted(unfiltered));
    expect(sorted(of('VM-TM-R2', 'high').map((x: any) => x.subject.portId))).toEqual(sorted(promiscuous));
    // The host that never reports is unknown for VM-TM-R2 when it holds ports.
    const silent = hosts[3];
    expect(of('VM-TM-R2', 'unknown').map((x: any) => x.subject.hostId)).toEqual(ports.some((p) => p.hostId === silent.id) ? [silent.id] : []);
    // The default draw exercises every part of the oracle: something missing, sprawling, promiscuous and unfiltered (another seed may not).
    expect(SEED !== 20261205 || [missing.length, sprawl.length + foreign.length, promiscuous.length, unfiltered.length].every((n) => n > 0)).toBe(true);
  });
});
