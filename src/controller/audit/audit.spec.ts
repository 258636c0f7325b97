import { join } from 'node:path';
import { expectGoldenFile } from '../../../test/support/golden';
import { bond, device, inventory, nic, OBSERVED_AT, WorldBuilder } from '../../../test/support/audit-worlds';
import { identified, RECOMMENDATIONS, runAudit, runAuditInTurns, type AuditReport } from './audit';
import { finding, findingId, finish, SLICE, sortInSlices, statusOf, type AuditStatus, type CheckFinding, type CheckRun, type Severity } from './audit.types';

/**
 * The audit's checks on hand-built worlds. A compliant world passes all 13 recommendations; each
 * case below breaks it in one way and states the statuses that change; the whole report of every
 * case is a golden file under __golden__/ (the findings' wording and values, reviewed). After an
 * intended change, regenerate with `OVERLAY_UPDATE_GOLDEN=1 npx jest src/controller/audit/audit.spec.ts`
 * and review the diff.
 */
const GOLDEN_DIR = join(__dirname, '__golden__');
const GENERATED_AT = '2026-01-01T00:10:00.000Z';
const IDS = RECOMMENDATIONS.map((r) => r.id);

/** Two hosts, each with an active-backup bond of two NICs apart in driver, bus and switch, the VTEP over it; a VLAN segment used on both; a mirror session to an analyzer. */
function compliant(): WorldBuilder {
  const b = new WorldBuilder().tenant('t1').segment('s-web', 't1', 5001, 101).segment('s-app', 't1', 5002);
  for (const [i, hv] of ['hv1', 'hv2'].entries()) {
    b.host(
      hv,
      [
        { name: 'eth0', driver: 'ixgbe', pciAddress: '0000:3b:00.0', switch: 'tor-a', switchPort: `Ethernet${i + 1}`, team: 'bond0', mode: 'active', failureDetection: 'link-state' },
        { name: 'eth1', driver: 'i40e', pciAddress: '0000:5e:00.0', switch: 'tor-b', switchPort: `Ethernet${i + 1}`, team: 'bond0', mode: 'standby', failureDetection: 'link-state' },
      ],
      [101],
    ).agent(hv);
  }
  b.port('p1', 's-web', 'hv1').port('p2', 's-web', 'hv2').port('an1', 's-app', 'hv2', { role: 'analyzer' });
  b.session('m1', 't1', [{ portId: 'p1', direction: 'both' }], { type: 'port', portId: 'an1' }, 6001);
  for (const hv of ['hv1', 'hv2']) {
    b.observe(hv, {
      taps: hv === 'hv1' ? [{ portId: 'p1', promiscuity: 1, bridged: true }] : [{ portId: 'p2', promiscuity: 1, bridged: true }, { portId: 'an1', promiscuity: 1, bridged: false }],
      bridges: [{ vni: 5001, segmentId: 's-web', ageingSeconds: 300 }],
      inventory: bondedInventory(),
    });
  }
  return b;
}

function bondedInventory(fields: { eth1?: Parameters<typeof nic>[1]; eth0Vlans?: number[]; team?: Parameters<typeof bond>[1]; vtepDevice?: string; routes?: string[] } = {}) {
  return inventory(
    [
      nic('eth0', { driver: 'ixgbe', pci: '0000:3b:00.0', switch: 'tor-a', vlans: fields.eth0Vlans ?? [101], master: 'bond0' }),
      nic('eth1', { driver: 'i40e', pci: '0000:5e:00.0', switch: 'tor-b', vlans: [101], master: 'bond0', ...fields.eth1 }),
      nic('eth2', { driver: 'e1000e', pci: '0000:00:19.0' }),
      bond('bond0', { members: [{ name: 'eth0', up: true, active: true }, { name: 'eth1', up: true, active: false }], ...fields.team }),
    ],
    fields.vtepDevice ?? 'bond0',
    [{ destination: '192.0.2.99', devices: fields.routes ?? [fields.vtepDevice ?? 'bond0'] }],
  );
}

function statuses(report: AuditReport): Record<string, AuditStatus> {
  return Object.fromEntries(report.recommendations.map((r) => [r.id, r.status]));
}

const allPass = (): Record<string, AuditStatus> => Object.fromEntries(IDS.map((id) => [id, 'pass']));

/** A host with teams and nothing bound: only VM-VN-R3 (its agent) and VM-MP-R1..R3 apply. */
const NOTHING_BOUND: Record<string, AuditStatus> = Object.fromEntries(IDS.filter((id) => id !== 'VM-VN-R3' && !id.startsWith('VM-MP-')).map((id) => [id, 'not-applicable']));

interface Case {
  name: string;
  world: () => WorldBuilder;
  /** The statuses that differ from all-pass. */
  changed: Record<string, AuditStatus>;
}

const CASES: Case[] = [
  { name: 'compliant', world: compliant, changed: {} },
  { name: 'empty', world: () => new WorldBuilder(), changed: Object.fromEntries(IDS.map((id) => [id, 'not-applicable'])) },
  {
    name: 'no-vlans-no-teams-no-sessions',
    world: () => new WorldBuilder().tenant('t1').segment('s1', 't1', 5001).host('hv1').agent('hv1').port('p1', 's1', 'hv1').observe('hv1', { taps: [{ portId: 'p1', promiscuity: 1, bridged: true }] }),
    changed: { 'VM-VN-R1': 'not-applicable', 'VM-MP-R1': 'not-applicable', 'VM-MP-R2': 'not-applicable', 'VM-MP-R3': 'not-applicable', 'VM-TM-R1': 'not-applicable', 'VM-TM-R3': 'not-applicable' },
  },
  {
    name: 'vn-r1-missing-trunk-and-sprawl',
    world: () => {
      const b = compliant().segment('s-old', 't1', 5003, 102);
      b.observe('hv1', { ...b.evidence.get('hv1')!, inventory: bondedInventory({ eth1: { vlans: [102, 999] } }) });
      return b;
    },
    changed: { 'VM-VN-R1': 'fail' },
  },
  {
    name: 'vn-r1-declared-trunk-when-not-observed',
    world: () => {
      const b = compliant();
      b.view.hosts.set('hv2', { ...b.view.hosts.get('hv2')!, inventory: { ...b.view.hosts.get('hv2')!.inventory, trunkedVlans: [7] } });
      b.observe('hv2', { ...b.evidence.get('hv2')!, inventory: null });
      return b;
    },
    // hv2 sent no inventory: its declared trunk (VLAN 7 only) is what R1 reads; MP reads its declaration, unknown.
    changed: { 'VM-VN-R1': 'fail', 'VM-MP-R1': 'unknown', 'VM-MP-R2': 'unknown', 'VM-MP-R3': 'unknown' },
  },
  {
    name: 'vn-r1-lldp-without-vlans-reads-the-declaration',
    world: () => {
      // hv1's switches send LLDP without VLAN TLVs: that says nothing of the trunk, so hv1's declaration ([101]) is read and passes;
      // hv2's too, and it declares nothing: unknown.
      const b = compliant();
      b.observe('hv1', { ...b.evidence.get('hv1')!, inventory: bondedInventory({ eth1: { vlans: [] }, eth0Vlans: [] }) });
      b.observe('hv2', { ...b.evidence.get('hv2')!, inventory: bondedInventory({ eth1: { vlans: [] }, eth0Vlans: [] }) });
      b.view.hosts.set('hv2', { ...b.view.hosts.get('hv2')!, inventory: { ...b.view.hosts.get('hv2')!.inventory, trunkedVlans: [] } });
      return b;
    },
    changed: { 'VM-VN-R1': 'unknown' },
  },
  {
    name: 'vn-r2-tenants-mixed',
    world: () => {
      const b = compliant().tenant('t2').segment('s-t2', 't2', 5001);
      b.port('px', 's-t2', null, { tenantId: 't1' });
      b.group({ id: 'g-t2', tenantId: 't2', rules: [{ id: 'x1', direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, icmpType: null, icmpCode: null, remoteCidr: null, remoteGroupId: 't1-default', description: null }] });
      return b;
    },
    changed: { 'VM-VN-R2': 'fail' },
  },
  {
    name: 'vn-r3-agents',
    world: () => compliant().agent('hv1', { connected: false }).agent('hv2', { lag: 3, lastError: 'nft: syntax error (revision 40)' }),
    changed: { 'VM-VN-R3': 'fail', 'VM-FW-R2': 'fail' },
  },
  {
    name: 'never-reported',
    world: () => {
      const b = compliant();
      b.evidence.delete('hv2');
      b.agents.delete('hv2');
      return b;
    },
    changed: { 'VM-VN-R3': 'unknown', 'VM-MP-R1': 'unknown', 'VM-MP-R2': 'unknown', 'VM-MP-R3': 'unknown', 'VM-FW-R2': 'unknown', 'VM-TM-R2': 'unknown' },
  },
  {
    name: 'mp-one-driver-one-bus-one-switch',
    world: () => {
      const b = compliant();
      b.observe('hv1', { ...b.evidence.get('hv1')!, inventory: bondedInventory({ eth1: { driver: 'ixgbe', pci: '0000:3b:00.1', switch: 'tor-a', vlans: [101] } }) });
      return b;
    },
    // The declaration (i40e, bus 5e, tor-b) is contradicted too: a finding in each of R1..R3.
    changed: { 'VM-MP-R1': 'fail', 'VM-MP-R2': 'fail', 'VM-MP-R3': 'fail' },
  },
  {
    name: 'mp-one-bus-host',
    world: () => {
      const b = new WorldBuilder().tenant('t1').host('hv1').agent('hv1');
      b.observe('hv1', {
        inventory: inventory(
          [
            nic('eth0', { driver: 'ixgbe', pci: '0000:3b:00.0', switch: 'tor-a', master: 'bond0' }),
            nic('eth1', { driver: 'i40e', pci: '0000:3b:00.1', switch: 'tor-b', master: 'bond0' }),
            bond('bond0', { members: [{ name: 'eth0', up: true, active: true }, { name: 'eth1', up: true, active: false }] }),
          ],
          'bond0',
        ),
      });
      return b;
    },
    // One bus on the whole host: info, a pass. Nothing bound: VN, FW and TM do not apply.
    changed: NOTHING_BOUND,
  },
  {
    name: 'mp-team-not-redundant',
    world: () => {
      const b = compliant();
      b.observe('hv1', { ...b.evidence.get('hv1')!, inventory: bondedInventory({ team: { miimon: 0, members: [{ name: 'eth0', up: true, active: true }, { name: 'eth1', up: false, active: true }] } }) });
      b.observe('hv2', { ...b.evidence.get('hv2')!, inventory: bondedInventory({ team: { miimon: 0, arpInterval: 200, arpValidate: 'none', members: [{ name: 'eth0', up: true, active: true }] } }) });
      return b;
    },
    changed: { 'VM-MP-R3': 'fail' },
  },
  {
    name: 'mp-vtep-not-over-team-and-uplink-absent',
    world: () => {
      const b = compliant();
      b.observe('hv1', { ...b.evidence.get('hv1')!, inventory: bondedInventory({ vtepDevice: 'eth2' }) });
      const hv2 = b.view.hosts.get('hv2')!;
      b.view.hosts.set('hv2', { ...hv2, inventory: { ...hv2.inventory, uplinks: [...hv2.inventory.uplinks, { ...hv2.inventory.uplinks[0], name: 'eth9', team: 'bond1' }] } });
      return b;
    },
    // eth9's declared team bond1 is not observed: the declared team is not checked (observed teams are), the absent uplink is a finding.
    changed: { 'VM-MP-R3': 'fail' },
  },
  {
    name: 'mp-routed-redundancy',
    world: () => routed(['eth0', 'eth1']),
    changed: NOTHING_BOUND,
  },
  {
    name: 'mp-routed-one-uplink',
    world: () => routed(['eth0']),
    changed: {
      'VM-MP-R3': 'fail',
      ...NOTHING_BOUND,
    },
  },
  {
    name: 'mp-routed-linkdown-routes-kept',
    world: () => routed(['eth0', 'eth1'], { eth1IgnoresLinkdown: false }),
    changed: {
      'VM-MP-R3': 'fail',
      ...NOTHING_BOUND,
    },
  },
  {
    name: 'fw-unfiltered-and-open',
    world: () => {
      const b = compliant();
      b.group({ id: 'g-open', tenantId: 't1', rules: [{ id: 'o1', direction: 'ingress', ethertype: 'IPv4', protocol: 'any', portRangeMin: null, portRangeMax: null, icmpType: null, icmpCode: null, remoteCidr: '0.0.0.0/0', remoteGroupId: null, description: null }, { id: 'o2', direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 80, portRangeMax: 80, icmpType: null, icmpCode: null, remoteCidr: null, remoteGroupId: 'g-gone', description: null }] });
      b.port('p3', 's-web', 'hv1', { portSecurity: false }).port('p4', 's-web', 'hv1', { securityGroupIds: ['g-open'] }).port('p5', 's-web', 'hv1', { securityGroupIds: ['g-missing'] });
      return b;
    },
    changed: { 'VM-FW-R1': 'fail', 'VM-FW-R3': 'fail', 'VM-FW-R4': 'fail' },
  },
  {
    name: 'tm-promiscuous-hub-one-direction-bad-sinks',
    world: () => {
      const b = compliant();
      b.observe('hv1', { ...b.evidence.get('hv1')!, taps: [{ portId: 'p1', promiscuity: 2, bridged: true }], bridges: [{ vni: 5001, segmentId: 's-web', ageingSeconds: 0 }] });
      b.session('m2', 't1', [{ portId: 'p1', direction: 'ingress' }], { type: 'port', portId: 'p2' }, 6002);
      b.session('m3', 't1', [{ portId: 'p2', direction: 'egress' }], { type: 'uplink', hostId: 'hv1', interface: 'bond0' }, 6003);
      b.session('m4', 't1', [{ portId: 'p2', direction: 'both' }], { type: 'uplink', hostId: 'hv2', interface: 'eth2' }, 6004);
      return b;
    },
    changed: { 'VM-TM-R2': 'fail', 'VM-TM-R3': 'fail' },
  },
];

function routed(routeDevices: string[], opts: { eth1IgnoresLinkdown?: boolean } = {}): WorldBuilder {
  const b = new WorldBuilder().tenant('t1').host('hv-r').agent('hv-r');
  b.observe('hv-r', {
    inventory: inventory(
      [device('lo', 'loopback'), nic('eth0', { driver: 'ixgbe', pci: '0000:3b:00.0', switch: 'spine-a' }), nic('eth1', { driver: 'mlx5_core', pci: '0000:af:00.0', switch: 'spine-b', ignoreLinkdown: opts.eth1IgnoresLinkdown })],
      'lo',
      [
        { destination: '192.0.2.98', devices: routeDevices },
        { destination: '192.0.2.99', devices: routeDevices },
      ],
    ),
  });
  return b;
}

describe('the audit on hand-built worlds', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (name, c) => {
    const report = runAudit(c.world().build(), GENERATED_AT);
    expect(report.recommendations.map((r) => r.id)).toEqual(IDS);
    expect(statuses(report)).toEqual({ ...allPass(), ...c.changed });
    // Every failing recommendation says why; a passing one has no high, medium or unknown finding.
    for (const r of report.recommendations) {
      if (r.status === 'fail' || r.status === 'unknown') {
        expect(r.findings.length).toBeGreaterThan(0);
      }
      if (r.status === 'pass') {
        expect(r.findings.filter((f) => ['high', 'medium', 'unknown'].includes(f.severity))).toEqual([]);
      }
      r.findings.forEach((f) => expect(f.since).toBeNull());
      // Each finding its own identity without numbering: a check that finds two things about one subject gives each a topic.
      expect(r.findings.map((f) => f.id).filter((id) => id.includes('-'))).toEqual([]);
    }
    expectGoldenFile(join(GOLDEN_DIR, `${name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  });

  it('gives the same report in turns as at once', async () => {
    for (const c of CASES) {
      const world = c.world().build();
      expect(await runAuditInTurns(world, GENERATED_AT)).toEqual(runAudit(world, GENERATED_AT));
    }
  });

  it('is pure: the same world gives the same report, and the world is not changed', () => {
    const world = compliant().build();
    const before = JSON.stringify([...world.view.ports.values(), ...world.evidence.values()]);
    expect(runAudit(world, GENERATED_AT)).toEqual(runAudit(world, GENERATED_AT));
    expect(JSON.stringify([...world.view.ports.values(), ...world.evidence.values()])).toBe(before);
    expect(OBSERVED_AT).toBeGreaterThan(0);
  });
});

describe('the audit in slices', () => {
  it('sorts in slices in the order of a stable sort', () => {
    // Keys with ties (a stable sort keeps their input order), across the sizes of the runs and merges.
    for (const size of [0, 1, 2, 4_095, 4_096, 4_097, 9_000, 20_000]) {
      const items = Array.from({ length: size }, (_, i) => ({ key: (i * 7_919) % 1_000, i }));
      const compare = (a: { key: number }, b: { key: number }): number => a.key - b.key;
      const run = sortInSlices(items, compare);
      let pauses = 0;
      let step = run.next();
      while (!step.done) {
        pauses++;
        step = run.next();
      }
      expect(step.value).toEqual([...items].sort(compare));
      expect(pauses).toBeGreaterThanOrEqual(Math.floor(size / 4_096));
      expect(items.map((x) => x.i)).toEqual(Array.from({ length: size }, (_, i) => i)); // the input is left as it was
    }
  });

  it('pauses in every check that walks the ports, and gives the same report in turns as at once', async () => {
    // 3 hosts, one with port security off on every tenth port, one group missing on every 97th.
    // Every 7th port in a group open to all (a finding that counts its ports and shows the first 5 by id).
    const b = compliant();
    b.group({ id: 'g-open', tenantId: 't1', rules: [{ id: 'o1', direction: 'ingress', ethertype: 'IPv4', protocol: 'any', portRangeMin: null, portRangeMax: null, icmpType: null, icmpCode: null, remoteCidr: '0.0.0.0/0', remoteGroupId: null, description: null }] });
    const ports = SLICE * 5;
    const inOpen: string[] = [];
    for (let i = 0; i < ports; i++) {
      const id = `p-${String(ports - i).padStart(6, '0')}`;
      const open = i % 7 === 3 && i % 10 !== 0 && i % 97 !== 0;
      if (open) {
        inOpen.push(id);
      }
      b.port(id, 's-app', ['hv1', 'hv2', null][i % 3], { portSecurity: i % 10 !== 0, ...(i % 97 === 0 ? { securityGroupIds: ['sg-gone'] } : open ? { securityGroupIds: ['g-open'] } : {}) });
    }
    const world = b.build();
    for (const r of RECOMMENDATIONS.filter((x) => ['VM-VN-R1', 'VM-VN-R2', 'VM-VN-R3', 'VM-FW-R1', 'VM-FW-R2', 'VM-FW-R3', 'VM-FW-R4', 'VM-TM-R2'].includes(x.id))) {
      const run = r.check(world) as CheckRun;
      let pauses = 0;
      while (!run.next().done) {
        pauses++;
      }
      expect([r.id, pauses >= 2]).toEqual([r.id, true]);
    }
    const once = runAudit(world, GENERATED_AT);
    expect(await runAuditInTurns(world, GENERATED_AT)).toEqual(once);
    const fw1 = once.recommendations.find((r) => r.id === 'VM-FW-R1')!;
    expect(fw1.findings.length).toBe(Array.from({ length: ports }, (_, i) => i).filter((i) => i % 10 === 0 && i % 3 !== 2).length);
    // In port id order, as the checks walked them before they paused.
    const ids = fw1.findings.map((f) => f.subject.portId as string);
    expect(ids).toEqual([...ids].sort());
    expect(finish(sortInSlices([3, 1, 2], (x, y) => x - y))).toEqual([1, 2, 3]);
    const open = once.recommendations.find((r) => r.id === 'VM-FW-R4')!.findings.find((f) => f.subject.securityGroupId === 'g-open')!;
    const first = [...inOpen].sort().slice(0, 5);
    expect(open.evidence).toContain(`used by ${inOpen.length} port(s): ${first.join(', ')}, and ${inOpen.length - 5} more`);
  });
});

describe('finding ids', () => {
  it('depend on the recommendation, the subject (not its field order) and the topic, not on the evidence or severity', () => {
    const id = findingId('VM-VN-R1', { subject: { hostId: 'h', segmentId: 's' } });
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(findingId('VM-VN-R1', { subject: { segmentId: 's', hostId: 'h' } })).toBe(id);
    expect(findingId('VM-VN-R1', { subject: { hostId: 'h', segmentId: 's' }, topic: undefined })).toBe(id);
    expect(findingId('VM-VN-R2', { subject: { hostId: 'h', segmentId: 's' } })).not.toBe(id);
    expect(findingId('VM-VN-R1', { subject: { hostId: 'h', segmentId: 's', link: 'eth0' } })).not.toBe(id);
    expect(findingId('VM-VN-R1', { subject: { hostId: 'h', segmentId: 's' }, topic: 'vlan 7' })).not.toBe(id);
  });

  it('stay distinct when a check gives two findings one identity', () => {
    const base = findingId('VM-X', { subject: { hostId: 'h' }, topic: 't' });
    const ids = identified('VM-X', [finding('low', { hostId: 'h' }, 'one', 't'), finding('low', { hostId: 'h' }, 'two', 't'), finding('low', { hostId: 'h' }, 'three', 'other')]).map((f) => f.id);
    expect(ids).toEqual([base, `${base}-2`, findingId('VM-X', { subject: { hostId: 'h' }, topic: 'other' })]);
  });
});

describe('the status rule', () => {
  const f = (severity: Severity): CheckFinding => ({ severity, subject: {}, evidence: '', topic: severity });
  it.each<[string, boolean, Severity[], AuditStatus]>([
    ['nothing to check', false, [], 'not-applicable'],
    ['not applicable wins over findings', false, ['high'], 'not-applicable'],
    ['no finding', true, [], 'pass'],
    ['low and info only', true, ['low', 'info'], 'pass'],
    ['a medium finding', true, ['low', 'medium'], 'fail'],
    ['a high finding', true, ['high'], 'fail'],
    ['missing evidence', true, ['unknown', 'low'], 'unknown'],
    ['a failure outweighs missing evidence', true, ['unknown', 'medium'], 'fail'],
  ])('%s', (_name, applicable, severities, expected) => {
    expect(statusOf({ applicable, findings: severities.map(f) })).toBe(expected);
  });
});
