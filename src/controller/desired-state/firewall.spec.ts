import { join } from 'node:path';
import type { Port } from '../model/port';
import { defaultSecurityGroup, type SecurityGroup, type SecurityGroupRule } from '../model/security-group';
import { normalizeRules } from '../security-groups/security-group.rules';
import { ruleSchema } from '../security-groups/security-group.schemas';
import { compareRules, compile, effectiveGroupIds, groupCatalog, ipSetMembers, referencedSets, type CompiledPolicy } from './firewall';
import { prng } from '../../../test/support/prng';
import { expectGoldenFile } from '../../../test/support/golden';

/**
 * Golden files under __golden__/: the compiled policies and sets of representative groups, as
 * reviewed JSON. After an intended change of the output, regenerate them with
 * `OVERLAY_UPDATE_GOLDEN=1 npx jest src/controller/desired-state/firewall.spec.ts` and review the diff.
 */
const GOLDEN_DIR = join(__dirname, '__golden__');

function expectGolden(name: string, value: unknown): void {
  expectGoldenFile(join(GOLDEN_DIR, `${name}.json`), `${JSON.stringify(value, null, 2)}\n`);
}

const T0 = '2026-01-01T00:00:00.000Z';
const TENANT = 'tenant-a';

/** Rule ids from a counter, so that goldens do not depend on the clock. */
function idCounter(prefix: string): () => string {
  let n = 0;
  return () => `${prefix}-r${++n}`;
}

/** Rules exactly as the API would store them, from the JSON a client sends. */
function rules(prefix: string, ...raw: Record<string, unknown>[]): SecurityGroupRule[] {
  return normalizeRules(
    raw.map((r, i) => ruleSchema.parse(r, `rules[${i}]`)),
    undefined,
    idCounter(prefix),
  );
}

function group(id: string, rulesOf: SecurityGroupRule[], extra: Partial<SecurityGroup> = {}): SecurityGroup {
  return { id, tenantId: TENANT, name: id, description: null, isDefault: false, rules: rulesOf, createdAt: T0, updatedAt: T0, ...extra };
}

function port(id: string, fields: Partial<Port>): Port {
  return {
    id,
    segmentId: 'segment-1',
    tenantId: TENANT,
    vmId: null,
    mac: '02:00:00:00:00:01',
    ips: [],
    hostId: 'host-1',
    securityGroupIds: [],
    portSecurity: true,
    allowedAddressPairs: [],
    createdAt: T0,
    updatedAt: T0,
    ...fields,
  };
}

const egressAll = [
  { direction: 'egress', ethertype: 'IPv4', protocol: 'any', remoteCidr: '0.0.0.0/0' },
  { direction: 'egress', ethertype: 'IPv6', protocol: 'any', remoteCidr: '::/0' },
];

/** Ids in rules are parsed as the API does (UUIDv7); the other fixtures' ids are plain words, for readable goldens. */
const BASTION_ID = '01900000-0000-7000-8000-00000000b001';

const defaultGroup = defaultSecurityGroup('sg-default', TENANT, T0, idCounter('sg-default'));
const bastion = group(BASTION_ID, rules('sg-bastion', { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, remoteCidr: '203.0.113.0/24' }, ...egressAll), { name: 'bastion' });
const webGroup = group(
  'sg-web',
  rules(
    'sg-web',
    { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 443, portRangeMax: 443, remoteCidr: '0.0.0.0/0' },
    { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 80, remoteCidr: '0.0.0.0/0' },
    { direction: 'ingress', ethertype: 'IPv6', protocol: 6, portRangeMin: 80, portRangeMax: 80 },
    { direction: 'ingress', ethertype: 'IPv6', protocol: 'tcp', portRangeMin: 443, remoteCidr: '::/0' },
    { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, remoteGroupId: BASTION_ID },
    { direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp', icmpType: 8, icmpCode: 0 },
    { direction: 'ingress', ethertype: 'IPv6', protocol: 'icmpv6', remoteCidr: 'fd00::/8' },
    { direction: 'egress', ethertype: 'IPv4', protocol: 'udp', portRangeMin: 53, remoteCidr: '10.0.0.2/32' },
    { direction: 'egress', ethertype: 'IPv4', protocol: 132, portRangeMin: 3868, portRangeMax: 3870 },
    { direction: 'egress', ethertype: 'IPv4', protocol: 47 },
  ),
);

const groups = new Map<string, SecurityGroup>([
  [defaultGroup.id, defaultGroup],
  [webGroup.id, webGroup],
  [bastion.id, bastion],
]);

const ports = {
  db: port('port-db', { mac: '02:00:00:00:0d:01', ips: ['10.0.0.21', 'fd00::21'] }),
  web1: port('port-web1', { mac: '02:00:00:00:0e:01', ips: ['fd00::11', '10.0.0.11'], securityGroupIds: ['sg-web'] }),
  web2: port('port-web2', { mac: '02:00:00:00:0e:02', ips: ['10.0.0.12'], securityGroupIds: ['sg-web', 'sg-default'], hostId: null }),
  jump: port('port-jump', { mac: '02:00:00:00:0b:01', ips: ['10.0.0.5', 'fd00::5'], securityGroupIds: [BASTION_ID] }),
  router: port('port-router', { mac: '02:00:00:00:0f:01', ips: ['10.0.0.1'], portSecurity: false }),
  lb: port('port-lb', {
    mac: '02:00:00:00:0a:01',
    ips: ['10.0.0.31'],
    securityGroupIds: ['sg-default'],
    allowedAddressPairs: [
      { ip: '10.0.0.100', mac: null },
      { ip: '10.0.0.0/28', mac: '02:00:00:00:0a:99' },
      { ip: 'fd00::100', mac: '02:00:00:00:0a:01' },
    ],
  }),
};
const allPorts = Object.values(ports);

function sets(groupIds: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const id of groupIds) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      out[`${id} ${family}`] = ipSetMembers(id, family, allPorts, groups);
    }
  }
  return out;
}

describe('firewall compiler: golden outputs', () => {
  it('compiles the default group: members reach each other, anything goes out', () => {
    const policy = compile(ports.db, groups);
    expect(effectiveGroupIds(ports.db, groups)).toEqual(['sg-default']);
    expect(policy.remoteGroups).toEqual(['sg-default']);
    expectGolden('default-group', { policy, sets: sets(policy.remoteGroups) });
  });

  it('compiles a web tier: tcp/80,443 from anywhere, tcp/22 from the bastion group, icmp echo, IPv6, sctp and gre out', () => {
    const policy = compile(ports.web1, groups);
    expect(policy.remoteGroups).toEqual([BASTION_ID]);
    expect(referencedSets(policy)).toEqual([{ group: BASTION_ID, ethertype: 'IPv4' }]);
    expectGolden('web-tier', { policy, sets: sets(policy.remoteGroups) });
  });

  it('merges several groups into one deduplicated policy', () => {
    const policy = compile(ports.web2, groups);
    // The default group's egress rules and the web group's say the same for IPv4/IPv6 any: once each.
    expect(policy.egress.filter((r) => r.protocol === 'any')).toHaveLength(2);
    expectGolden('web-and-default', { policy, sets: sets(policy.remoteGroups) });
  });

  it('compiles the bastion group and lists its members', () => {
    const policy = compile(ports.jump, groups);
    expectGolden('bastion', { policy, sets: sets([BASTION_ID]) });
  });

  it('compiles a port without port security to no rules, no pairs and no sets: allow all', () => {
    const policy = compile(ports.router, groups);
    expect(policy).toMatchObject({ portSecurity: false, ingress: [], egress: [], remoteGroups: [], allowedAddressPairs: [] });
    expect(effectiveGroupIds(ports.router, groups)).toEqual([]);
    expectGolden('port-security-off', { policy });
  });

  it('carries allowed address pairs into the policy and into the sets of the port groups, without overlaps', () => {
    const policy = compile(ports.lb, groups);
    const members = sets(['sg-default']);
    // web2 (10.0.0.12, listing sg-default) is inside 10.0.0.0/28, the lb pair: the prefix covers it.
    expect(members['sg-default IPv4']).toEqual(['10.0.0.0/28', '10.0.0.21', '10.0.0.31', '10.0.0.100']);
    expectGolden('address-pairs', { policy, sets: members });
  });
});

describe('firewall compiler: rules of the store', () => {
  it('treats equivalent spellings as one rule: 6 = tcp, no remote = 0.0.0.0/0, ports 1-65535 = no range', () => {
    const a = group('sg-a', rules('a', { direction: 'ingress', ethertype: 'IPv4', protocol: 6, portRangeMin: 1, portRangeMax: 65535 }));
    const b = group('sg-b', rules('b', { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', remoteCidr: '0.0.0.0/0' }));
    const policy = compile(port('p', { securityGroupIds: ['sg-a', 'sg-b'] }), new Map([a, b].map((g) => [g.id, g])));
    expect(policy.ingress).toEqual([{ ethertype: 'IPv4', protocol: 6, remote: { cidr: '0.0.0.0/0' } }]);
  });

  it('fails closed on a group it does not know: its rules are simply absent', () => {
    const policy = compile(port('p', { securityGroupIds: ['sg-gone'] }), groups);
    expect(policy).toMatchObject({ portSecurity: true, ingress: [], egress: [] });
  });

  it('reads the default group from the tenants when given them', () => {
    const catalog = groupCatalog(groups, new Map([[TENANT, { defaultSecurityGroupId: 'sg-web' }]]));
    expect(effectiveGroupIds(ports.db, catalog)).toEqual(['sg-web']);
  });

  it('reads port records written before security fields existed as the defaults', () => {
    const legacy = { ...ports.db } as Partial<Port>;
    delete legacy.securityGroupIds;
    delete legacy.portSecurity;
    delete legacy.allowedAddressPairs;
    expect(compile(legacy as Port, groups)).toEqual(compile(ports.db, groups));
  });
});

// --- order independence -------------------------------------------------------------------

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const GROUP_IDS = ['01900000-0000-7000-8000-0000000000a1', '01900000-0000-7000-8000-0000000000a2', '01900000-0000-7000-8000-0000000000a3', '01900000-0000-7000-8000-0000000000a4'];

/** Rules that overlap a lot, so that groups often share some: the compiler must merge them. */
function ruleTemplates(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const direction of ['ingress', 'egress']) {
    out.push({ direction, ethertype: 'IPv4', protocol: 'any', remoteCidr: '0.0.0.0/0' });
    out.push({ direction, ethertype: 'IPv6', protocol: 'any' });
    out.push({ direction, ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22 });
    out.push({ direction, ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 80, portRangeMax: 90, remoteCidr: '10.0.0.0/8' });
    out.push({ direction, ethertype: 'IPv4', protocol: 'udp', portRangeMin: 53, remoteCidr: '10.0.0.2/32' });
    out.push({ direction, ethertype: 'IPv4', protocol: 'icmp', icmpType: 8 });
    out.push({ direction, ethertype: 'IPv4', protocol: 'icmp' });
    out.push({ direction, ethertype: 'IPv6', protocol: 'icmpv6', icmpType: 128, icmpCode: 0 });
    out.push({ direction, ethertype: 'IPv6', protocol: 'tcp', portRangeMin: 443, remoteCidr: 'fd00::/8' });
    out.push({ direction, ethertype: 'IPv4', protocol: 132, portRangeMin: 1000, portRangeMax: 2000 });
    out.push({ direction, ethertype: 'IPv4', protocol: 47 });
    for (const g of GROUP_IDS) {
      out.push({ direction, ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 5432, remoteGroupId: g });
      out.push({ direction, ethertype: 'IPv6', protocol: 'any', remoteGroupId: g });
    }
  }
  return out;
}

/** The same rule written another way: what the API accepts as the same thing. */
function respell(raw: Record<string, unknown>, random: () => number): Record<string, unknown> {
  const out = { ...raw };
  const numbers: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 };
  if (typeof out.protocol === 'string' && out.protocol in numbers && random() < 0.5) {
    out.protocol = numbers[out.protocol];
  }
  if (out.remoteCidr === '0.0.0.0/0' && random() < 0.5) {
    delete out.remoteCidr;
  }
  if (out.remoteCidr === undefined && out.remoteGroupId === undefined && random() < 0.5) {
    out.remoteCidr = out.ethertype === 'IPv4' ? '0.0.0.0/0' : '::/0';
  }
  if (out.portRangeMin !== undefined && out.portRangeMax === undefined && random() < 0.5) {
    out.portRangeMax = out.portRangeMin;
  }
  return out;
}

interface World {
  groups: Map<string, SecurityGroup>;
  ports: Port[];
}

function randomWorld(random: () => number): World {
  const templates = ruleTemplates();
  const groups = new Map<string, SecurityGroup>();
  const dflt = defaultSecurityGroup(GROUP_IDS[0], TENANT, T0, idCounter('d'));
  groups.set(dflt.id, dflt);
  for (const id of GROUP_IDS.slice(1)) {
    const picked = shuffle(templates, random).slice(0, 1 + Math.floor(random() * 8));
    groups.set(id, group(id, rules(id, ...picked)));
  }
  const ports: Port[] = [];
  for (let i = 0; i < 8; i++) {
    const portSecurity = random() > 0.15;
    ports.push(
      port(`port-${i}`, {
        mac: `02:00:00:00:00:${(i + 16).toString(16)}`,
        ips: [`10.0.${i % 3}.${10 + i}`, ...(random() < 0.5 ? [`fd00::${10 + i}`] : [])],
        portSecurity,
        securityGroupIds: portSecurity ? shuffle(GROUP_IDS, random).slice(0, Math.floor(random() * 3)) : [],
        allowedAddressPairs: portSecurity && random() < 0.4 ? [{ ip: random() < 0.5 ? `10.0.${i % 3}.0/28` : `10.9.9.${i}`, mac: null }, { ip: `fd00:9::${i}`, mac: '02:00:00:00:99:99' }] : [],
      }),
    );
  }
  return { groups, ports };
}

/** The same world, written in another order: groups inserted, rules listed, ids given, addresses and members listed. */
function reordered(world: World, random: () => number): World {
  const groups = new Map<string, SecurityGroup>();
  for (const g of shuffle([...world.groups.values()], random)) {
    const raw = g.rules.map((r) => respell(Object.fromEntries(Object.entries(r).filter(([k, v]) => k !== 'id' && v !== null)), random));
    groups.set(g.id, { ...g, rules: rules(`${g.id}-again`, ...shuffle(raw, random)) });
  }
  const ports = shuffle(world.ports, random).map((p) => ({
    ...p,
    ips: shuffle(p.ips, random),
    securityGroupIds: shuffle(p.securityGroupIds, random),
    allowedAddressPairs: shuffle(p.allowedAddressPairs, random),
  }));
  return { groups, ports };
}

function outputs(world: World): { policies: Record<string, CompiledPolicy>; sets: Record<string, string[]> } {
  const policies: Record<string, CompiledPolicy> = {};
  for (const p of [...world.ports].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    policies[p.id] = compile(p, world.groups);
  }
  const sets: Record<string, string[]> = {};
  for (const id of GROUP_IDS) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      sets[`${id} ${family}`] = ipSetMembers(id, family, world.ports, world.groups);
    }
  }
  return { policies, sets };
}

describe('firewall compiler: order independence', () => {
  const seed = Number(process.env.OVERLAY_TEST_SEED ?? 20261127);

  it(`gives the same policies and sets whatever the order of rules, groups, ids and members (seed ${seed})`, () => {
    const random = prng(seed);
    for (let round = 0; round < 200; round++) {
      const world = randomWorld(random);
      const expected = JSON.stringify(outputs(world));
      for (let k = 0; k < 3; k++) {
        expect(JSON.stringify(outputs(reordered(world, random)))).toBe(expected);
      }
    }
  });

  it('lists every compiled rule once, in strictly increasing canonical order', () => {
    const random = prng(seed + 1);
    for (let round = 0; round < 100; round++) {
      const world = randomWorld(random);
      for (const p of world.ports) {
        const policy = compile(p, world.groups);
        for (const list of [policy.ingress, policy.egress]) {
          for (let i = 1; i < list.length; i++) {
            expect(compareRules(list[i - 1], list[i])).toBeLessThan(0);
          }
        }
      }
    }
  });
});
