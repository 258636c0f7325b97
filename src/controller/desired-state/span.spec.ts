import type { Host } from '../model/host';
import type { MirrorSession, MirrorSink } from '../model/mirror-session';
import { localHostsOf, type Port } from '../model/port';
import type { SecurityGroup, SecurityGroupRule } from '../model/security-group';
import type { Segment } from '../model/segment';
import type { Tenant } from '../model/tenant';
import type { ChangeOp, ChangeRecord } from '../store/change-log';
import { applyChange, copyViewState, emptyViewState, rewindChange, type ViewState } from '../store/view-state';
import { parseSpanKey } from '../../common/span/span-kind';
import { encodeSpanResource, type SpanResource } from './resources/span-resource';
import { changesSince } from './span-diff';
import { SpanIndex, SpanReplay } from './span-index';
import { prng } from '../../../test/support/prng';

/** Generates random but valid change records (what the Lua scripts would log). */
class World {
  readonly state: ViewState = emptyViewState();
  private n = 0;
  /** `mirrors`: mirror sessions among the records (the other specs' seeds keep their sequences without them). */
  constructor(
    private readonly random: () => number,
    private readonly mirrors = true,
  ) {}

  private pick<T>(xs: T[]): T | undefined {
    return xs.length ? xs[Math.floor(this.random() * xs.length)] : undefined;
  }

  private rules(tenantId: string, self: string): SecurityGroupRule[] {
    const peers = [self, ...[...this.state.securityGroups.values()].filter((g) => g.tenantId === tenantId).map((g) => g.id)];
    return Array.from({ length: Math.floor(this.random() * 4) }, (_, i) => {
      const byGroup = this.random() < 0.5;
      const ethertype = this.random() < 0.8 ? ('IPv4' as const) : ('IPv6' as const);
      const port = this.random() < 0.5 ? 22 : 80;
      return {
        id: `r${i}`,
        direction: this.random() < 0.6 ? ('ingress' as const) : ('egress' as const),
        ethertype,
        protocol: 'tcp' as const,
        portRangeMin: port,
        portRangeMax: port,
        icmpType: null,
        icmpCode: null,
        remoteCidr: byGroup ? null : ethertype === 'IPv4' ? '0.0.0.0/0' : '::/0',
        remoteGroupId: byGroup ? this.pick(peers)! : null,
        description: null,
      };
    });
  }

  private group(tenantId: string, isDefault: boolean, id: string): SecurityGroup {
    return { id, tenantId, name: isDefault ? 'default' : id, description: null, isDefault, rules: this.rules(tenantId, id), createdAt: '', updatedAt: '' };
  }

  /** A port's security fields: groups of its tenant (or none: the default), addresses from a small pool (shared). */
  private security(tenantId: string): Pick<Port, 'ips' | 'securityGroupIds' | 'portSecurity' | 'allowedAddressPairs'> {
    const ips = this.random() < 0.2 ? [] : [`10.0.0.${Math.floor(this.random() * 12)}`, ...(this.random() < 0.3 ? [`fd00::${Math.floor(this.random() * 4)}`] : [])];
    if (this.random() < 0.1) {
      return { ips, securityGroupIds: [], portSecurity: false, allowedAddressPairs: [] };
    }
    const groups = [...this.state.securityGroups.values()].filter((g) => g.tenantId === tenantId && !g.isDefault).map((g) => g.id);
    const securityGroupIds = this.random() < 0.4 ? [] : [...new Set(Array.from({ length: 1 + Math.floor(this.random() * 2) }, () => this.pick(groups)).filter((g): g is string => g !== undefined))];
    const allowedAddressPairs = this.random() < 0.15 ? [{ ip: '10.9.0.0/24', mac: null }] : [];
    return { ips, securityGroupIds, portSecurity: true, allowedAddressPairs };
  }

  /** A mirror session's sink: an analyzer port (made one in the same record), an uplink or a collector (VXLAN or ERSPAN). */
  private sink(ports: Port[], hosts: Host[]): { sink: MirrorSink; ops: ChangeOp[] } {
    const roll = this.random();
    const port = this.pick(ports);
    if (roll < 0.6 && port) {
      const ops: ChangeOp[] = port.role === 'analyzer' ? [] : [{ k: 'port', id: port.id, v: { ...port, role: 'analyzer' }, o: port }];
      return { sink: { type: 'port', portId: port.id }, ops };
    }
    if (roll < 0.85) {
      return { sink: { type: 'uplink', hostId: this.pick(hosts)!.id, interface: 'eth1' }, ops: [] };
    }
    if (roll < 0.93) {
      return { sink: { type: 'vxlan', remoteIp: '203.0.113.9', vni: 0, udpPort: 4790 }, ops: [] };
    }
    return { sink: { type: 'erspan', remoteIp: '203.0.113.10', erspanId: 5, version: 2 }, ops: [] };
  }

  /** Creates, changes or deletes a mirror session (the store's guards are not modelled: a session may name a deleted port). */
  private mirror(ports: Port[], hosts: Host[]): ChangeOp[] {
    const sessions = [...this.state.mirrorSessions.values()];
    const roll = this.random();
    const sources = () =>
      [...new Set(Array.from({ length: 1 + Math.floor(this.random() * 3) }, () => this.pick(ports)!.id))].map((portId) => ({ portId, direction: this.pick(['ingress', 'egress', 'both'] as const)! }));
    const filter = () => (this.random() < 0.5 ? null : { ethertype: 'IPv4' as const, protocol: this.random() < 0.5 ? 6 : null, remoteCidr: this.random() < 0.5 ? '10.0.0.0/8' : null });
    const old = this.pick(sessions);
    if (!old || roll < 0.35) {
      const id = `ms${++this.n}`;
      const { sink, ops } = this.sink(ports, hosts);
      const vni = 7000 + this.n;
      const session: MirrorSession = { id, tenantId: ports[0].tenantId, name: id, enabled: this.random() < 0.85, sources: sources(), sink: sink.type === 'vxlan' ? { ...sink, vni } : sink, filter: filter(), snapLength: this.random() < 0.3 ? 128 : null, vni, createdAt: '', updatedAt: '' };
      return [...ops, { k: 'mirrorSession', id, v: session, o: null }];
    }
    if (roll < 0.85) {
      const change = this.random();
      let ops: ChangeOp[] = [];
      let next: MirrorSession;
      if (change < 0.3) {
        next = { ...old, enabled: !old.enabled };
      } else if (change < 0.6) {
        next = { ...old, sources: sources() };
      } else if (change < 0.8) {
        const made = this.sink(ports, hosts);
        ops = made.ops;
        next = { ...old, sink: made.sink.type === 'vxlan' ? { ...made.sink, vni: old.vni } : made.sink };
      } else {
        next = { ...old, filter: filter(), snapLength: old.snapLength === null ? 64 : null };
      }
      return [...ops, { k: 'mirrorSession', id: old.id, v: next, o: old }];
    }
    return [{ k: 'mirrorSession', id: old.id, v: null, o: old }];
  }

  next(): ChangeRecord {
    const s = this.state;
    const hosts = [...s.hosts.values()];
    const segments = [...s.segments.values()];
    const ports = [...s.ports.values()];
    const tenants = [...s.tenants.values()];
    const groups = [...s.securityGroups.values()];
    const roll = this.random();
    const id = () => `id${++this.n}`;
    let ops: ChangeOp[];
    if (this.mirrors && ports.length > 2 && hosts.length > 2 && this.random() < 0.15) {
      ops = this.mirror(ports, hosts);
    } else if (tenants.length < 2) {
      const tenant: Tenant = { id: id(), name: `t${this.n}`, maxSegments: null, defaultSecurityGroupId: id(), createdAt: '' };
      ops = [
        { k: 'tenant', id: tenant.id, v: tenant, o: null },
        { k: 'securityGroup', id: tenant.defaultSecurityGroupId, v: this.group(tenant.id, true, tenant.defaultSecurityGroupId), o: null },
      ];
    } else if (roll < 0.08 || hosts.length < 2) {
      const host: Host = { id: id(), name: `h${this.n}`, vtepIp: `192.0.2.${this.n % 250}`, inventory: { uplinks: [], trunkedVlans: [] }, createdAt: '', updatedAt: '' };
      ops = [{ k: 'host', id: host.id, v: host, o: null }];
    } else if (roll < 0.15 || segments.length < 2) {
      const segment: Segment = { id: id(), tenantId: this.pick(tenants)!.id, name: 's', vni: 1000 + this.n, vlanId: null, cidr: null, createdAt: '' };
      ops = [{ k: 'segment', id: segment.id, v: segment, o: null }];
    } else if (roll < 0.45) {
      const batch = 1 + Math.floor(this.random() * 4);
      ops = Array.from({ length: batch }, () => {
        const segment = this.pick(segments)!;
        const port: Port = { id: id(), segmentId: segment.id, tenantId: segment.tenantId, vmId: null, mac: `02:00:00:00:00:${(this.n % 256).toString(16)}`, hostId: this.random() < 0.8 ? this.pick(hosts)!.id : null, ...this.security(segment.tenantId), createdAt: '', updatedAt: '' };
        return { k: 'port' as const, id: port.id, v: port, o: null };
      });
    } else if (roll < 0.65 && ports.length) {
      const port = this.pick(ports)!;
      const migration = port.migration ?? null;
      if (migration) {
        // An open migration: committed (the binding moves) or aborted/expired (withdrawn).
        const next = this.random() < 0.5 ? { ...port, hostId: migration.destinationHostId, migration: null } : { ...port, migration: null };
        ops = [{ k: 'port', id: port.id, v: next, o: port }];
      } else if (port.hostId !== null && this.random() < 0.35) {
        const destination = this.pick(hosts.filter((h) => h.id !== port.hostId));
        if (!destination) {
          return this.next();
        }
        ops = [{ k: 'port', id: port.id, v: { ...port, migration: { id: id(), destinationHostId: destination.id } }, o: port }];
      } else {
        const next = { ...port, hostId: this.random() < 0.85 ? this.pick(hosts)!.id : null, vmId: this.random() < 0.3 ? `vm${this.n++}` : port.vmId, ...(this.random() < 0.5 ? this.security(port.tenantId) : {}) };
        ops = [{ k: 'port', id: port.id, v: next, o: port }];
      }
    } else if (roll < 0.75 && ports.length) {
      const port = this.pick(ports)!;
      if (port.migration) {
        return this.next(); // refused by the store while a migration is open
      }
      ops = [{ k: 'port', id: port.id, v: null, o: port }];
    } else if (roll < 0.8) {
      const tenant = this.pick(tenants)!;
      const group = this.group(tenant.id, false, id());
      ops = [{ k: 'securityGroup', id: group.id, v: group, o: null }];
    } else if (roll < 0.88 && groups.length) {
      const group = this.pick(groups)!;
      ops = [{ k: 'securityGroup', id: group.id, v: { ...group, rules: this.rules(group.tenantId, group.id) }, o: group }];
    } else if (roll < 0.9) {
      const unused = groups.find((g) => !g.isDefault && !ports.some((p) => p.securityGroupIds.includes(g.id)) && !groups.some((o) => o.id !== g.id && o.rules.some((r) => r.remoteGroupId === g.id)));
      if (!unused) {
        return this.next();
      }
      ops = [{ k: 'securityGroup', id: unused.id, v: null, o: unused }];
    } else if (roll < 0.95) {
      const host = this.pick(hosts)!;
      ops = [{ k: 'host', id: host.id, v: { ...host, vtepIp: `198.51.100.${this.n++ % 250}` }, o: host }];
    } else {
      const empty = segments.find((seg) => !ports.some((p) => p.segmentId === seg.id));
      const idle = hosts.find((h) => !ports.some((p) => p.hostId === h.id || p.migration?.destinationHostId === h.id));
      if (empty) {
        ops = [{ k: 'segment', id: empty.id, v: null, o: empty }];
      } else if (idle) {
        ops = [{ k: 'host', id: idle.id, v: null, o: idle }];
      } else {
        return this.next();
      }
    }
    const record = { revision: s.revision + 1, entryId: `${s.revision + 1}-1`, at: 0, ops };
    applyChange(s, record);
    return record;
  }
}

type AgentState = Map<string, SpanResource>;

function fromScratch(state: ViewState, hostId: string): AgentState {
  const copy: ViewState = { revision: state.revision, tenants: new Map(state.tenants), segments: new Map(state.segments), hosts: new Map(state.hosts), ports: new Map(state.ports), securityGroups: new Map(state.securityGroups), mirrorSessions: new Map(state.mirrorSessions) };
  const index = new SpanIndex(copy);
  return new Map(index.spanOf(hostId).map((key) => [key, index.resource(key, hostId)!]));
}

function applyTo(agent: AgentState, index: SpanIndex, hostId: string, change: { upserts: Set<string>; removals: Set<string> }): void {
  for (const key of change.removals) {
    agent.delete(key);
  }
  for (const key of change.upserts) {
    agent.set(key, index.resource(key, hostId)!);
  }
}

describe('span computation', () => {
  it.each([1, 42, 2026])('keeps every host’s incrementally fed span equal to its span from scratch (seed %i)', (seed) => {
    const world = new World(prng(seed));
    const index = new SpanIndex(world.state);
    const agents = new Map<string, AgentState>();
    for (let i = 0; i < 600; i++) {
      const record = world.next();
      const changes = index.apply(record);
      for (const [hostId, change] of changes) {
        // Never a removal and an upsert of the same key, never an entry outside the span.
        const span = new Set(index.spanOf(hostId));
        for (const key of change.upserts) {
          expect(change.removals.has(key)).toBe(false);
          expect(span.has(key)).toBe(true);
        }
        if (!agents.has(hostId)) {
          agents.set(hostId, new Map());
        }
        applyTo(agents.get(hostId)!, index, hostId, change);
      }
      if (i % 50 === 49) {
        for (const hostId of world.state.hosts.keys()) {
          expect(agents.get(hostId) ?? new Map()).toEqual(fromScratch(world.state, hostId));
        }
      }
    }
  });

  it.each([7, 2027])('encodes every resource of every span as encoding the resource does, policies from their group set’s rules encoded once (seed %i)', (seed) => {
    const world = new World(prng(seed));
    const index = new SpanIndex(world.state);
    let policies = 0;
    for (let i = 0; i < 400; i++) {
      index.apply(world.next());
      if (i % 20 === 19) {
        // Rules change as records go (groups edited, created, deleted): the encoded rules must follow.
        for (const hostId of world.state.hosts.keys()) {
          for (const key of index.spanOf(hostId)) {
            const { kind, id } = parseSpanKey(key);
            policies += kind === 'policy' ? 1 : 0;
            expect(Buffer.from(index.encodedResource(kind, id, hostId)!)).toEqual(Buffer.from(encodeSpanResource(index.resource(key, hostId)!)));
          }
        }
      }
    }
    expect(policies).toBeGreaterThan(100);
  });

  it('resumes a host from any past revision with only the changes since, reaching the same span', () => {
    const world = new World(prng(7));
    const index = new SpanIndex(world.state);
    const records: ChangeRecord[] = [];
    const history: { revision: number; spans: Map<string, AgentState> }[] = [];
    for (let i = 0; i < 400; i++) {
      records.push(world.next());
      index.apply(records[records.length - 1]);
      if (i % 40 === 0) {
        history.push({ revision: world.state.revision, spans: new Map([...world.state.hosts.keys()].map((h) => [h, fromScratch(world.state, h)])) });
      }
    }
    for (const past of history) {
      for (const [hostId, held] of past.spans) {
        if (!world.state.hosts.has(hostId)) {
          continue;
        }
        const since = records.filter((r) => r.revision > past.revision);
        const change = changesSince(index, since, hostId).get(hostId) ?? { upserts: new Set<string>(), removals: new Set<string>() };
        const agent = new Map(held);
        applyTo(agent, index, hostId, change);
        expect(agent).toEqual(fromScratch(world.state, hostId));
      }
    }
  });

  it('computes the same spans whether changes come one by one or squashed into one step', () => {
    const world = new World(prng(99));
    const stepwise = new SpanIndex(world.state);
    const records: ChangeRecord[] = [];
    for (let i = 0; i < 300; i++) {
      records.push(world.next());
      stepwise.apply(records[records.length - 1]);
    }
    const squashed = new SpanIndex({ ...world.state });
    for (const hostId of world.state.hosts.keys()) {
      expect(new Set(stepwise.spanOf(hostId))).toEqual(new Set(squashed.spanOf(hostId)));
    }
  });

  it('sends nothing to a host whose span a change does not touch', () => {
    const world = new World(prng(5));
    const index = new SpanIndex(world.state);
    for (let i = 0; i < 150; i++) {
      const record = world.next();
      const before = new Map([...world.state.hosts.keys()].map((h) => [h, fromScratch(world.state, h)]));
      const changes = index.apply(record);
      for (const hostId of world.state.hosts.keys()) {
        if (!changes.has(hostId)) {
          expect(fromScratch(world.state, hostId)).toEqual(before.get(hostId));
        }
      }
    }
  });

  it('sends a membership change as member entries only: no policy to hosts that merely reference the group', () => {
    const world = new World(prng(11));
    const index = new SpanIndex(world.state);
    let memberDeltas = 0;
    let sawMembers = false;
    for (let i = 0; i < 500; i++) {
      const record = world.next();
      const changes = index.apply(record);
      if (!record.ops.every((op) => op.k === 'port')) {
        continue;
      }
      const hostsOfTouched = new Set(record.ops.flatMap((op) => [op.o, op.v].flatMap((p) => (p ? localHostsOf(p as Port) : []))));
      // At most one entry per address, per group, per side of the change.
      const sides = record.ops.flatMap((op) => [op.o, op.v] as (Port | null)[]);
      const bound = sides.reduce((sum, p) => sum + (p ? (p.ips.length + p.allowedAddressPairs.length) * Math.max(1, p.securityGroupIds.length) : 0), 0);
      for (const [hostId, change] of changes) {
        const keys = [...change.upserts, ...change.removals];
        sawMembers ||= keys.some((k) => k.startsWith('member/'));
        if (hostsOfTouched.has(hostId)) {
          continue;
        }
        expect(keys.filter((k) => k.startsWith('policy/'))).toEqual([]);
        const members = keys.filter((k) => k.startsWith('member/'));
        expect(members.length).toBeLessThanOrEqual(bound);
        memberDeltas += members.length;
      }
    }
    expect(sawMembers).toBe(true);
    expect(memberDeltas).toBeGreaterThan(0);
  });

  it('puts the policies of the host’s own ports, and the members of the groups they reference, in its span', () => {
    const world = new World(prng(3));
    const index = new SpanIndex(world.state);
    for (let i = 0; i < 300; i++) {
      index.apply(world.next());
    }
    let members = 0;
    for (const hostId of world.state.hosts.keys()) {
      const span = index.spanOf(hostId);
      const own = [...world.state.ports.values()].filter((p) => localHostsOf(p).includes(hostId)).map((p) => `policy/${p.id}`);
      expect(span.filter((k) => k.startsWith('policy/')).sort()).toEqual(own.sort());
      members += span.filter((k) => k.startsWith('member/')).length;
    }
    expect(members).toBeGreaterThan(0);
  });

  it('holds mirror taps and sinks in the spans the random records make (the properties above cover mirrors)', () => {
    for (const seed of [1, 42, 2026, 7]) {
      const world = new World(prng(seed));
      const index = new SpanIndex(world.state);
      const kinds = new Map<string, number>();
      for (let i = 0; i < 600; i++) {
        index.apply(world.next());
        if (i % 50 === 49) {
          for (const hostId of world.state.hosts.keys()) {
            for (const key of index.spanOf(hostId)) {
              const kind = key.slice(0, key.indexOf('/'));
              kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
            }
          }
        }
      }
      expect(kinds.get('mirror')).toBeGreaterThan(10);
      expect(kinds.get('mirrorSink')).toBeGreaterThan(2);
    }
  });

  it('names, for a past revision computed again from the log, the hosts the live path changed', () => {
    for (const seed of [8, 64, 512]) {
      const world = new World(prng(seed));
      const live = new SpanIndex(world.state);
      const records: ChangeRecord[] = [];
      const changedLive = new Map<number, string[]>();
      for (let i = 0; i < 300; i++) {
        const record = world.next();
        records.push(record);
        changedLive.set(record.revision, [...live.apply(record).keys()].sort());
      }
      // From the end, rewind to before each of a few past revisions, then replay to the end.
      for (const from of [1, 40, 150, 299]) {
        const state = copyViewState(world.state);
        for (let i = records.length - 1; i >= from - 1; i--) {
          rewindChange(state, records[i]);
        }
        expect(state.revision).toBe(records[from - 1].revision - 1);
        const replay = new SpanReplay(state);
        for (const record of records.slice(from - 1)) {
          expect({ revision: record.revision, hosts: replay.apply(record).sort() }).toEqual({ revision: record.revision, hosts: changedLive.get(record.revision) });
        }
        // Replayed to the end, the copy is the state again (and the original was never touched).
        expect(state).toEqual(world.state);
      }
      // Some revisions changed no host, some many: the comparison means something.
      expect([...changedLive.values()].some((h) => h.length === 0)).toBe(true);
      expect([...changedLive.values()].some((h) => h.length > 2)).toBe(true);
    }
  });

  it('refuses to replay a record that does not follow the state, and to rewind one the state is not at', () => {
    const world = new World(prng(4));
    const records = Array.from({ length: 20 }, () => world.next());
    const state = copyViewState(world.state);
    expect(() => rewindChange(state, records[10])).toThrow();
    rewindChange(state, records[19]);
    const replay = new SpanReplay(state);
    expect(() => replay.apply(records[18])).toThrow();
    expect(() => replay.apply(records[19])).not.toThrow();
  });

  it('places a prepared port on its destination without touching peers’ forwarding, and moves it at commit', () => {
    const state = emptyViewState();
    const tenant: Tenant = { id: 't', name: 't', maxSegments: null, defaultSecurityGroupId: 'sg', createdAt: '' };
    const group: SecurityGroup = { id: 'sg', tenantId: 't', name: 'default', description: '', isDefault: true, rules: [], createdAt: '', updatedAt: '' };
    const host = (id: string, vtepIp: string): Host => ({ id, name: id, vtepIp, inventory: { uplinks: [], trunkedVlans: [] }, createdAt: '', updatedAt: '' });
    const segment: Segment = { id: 'seg', tenantId: 't', name: 's', vni: 1000, vlanId: null, cidr: null, createdAt: '' };
    const port = (id: string, hostId: string, last: string): Port => ({ id, segmentId: 'seg', tenantId: 't', vmId: null, mac: `02:00:00:00:00:${last}`, ips: [`10.0.0.${Number.parseInt(last, 16)}`], hostId, securityGroupIds: [], portSecurity: true, allowedAddressPairs: [], createdAt: '', updatedAt: '' });
    let revision = 0;
    const apply = (index: SpanIndex | undefined, ops: ChangeOp[]) => {
      const record = { revision: ++revision, entryId: `${revision}-1`, at: 0, ops };
      applyChange(state, record);
      return index?.apply(record);
    };
    apply(undefined, [
      { k: 'tenant', id: 't', v: tenant, o: null },
      { k: 'securityGroup', id: 'sg', v: group, o: null },
      { k: 'host', id: 'src', v: host('src', '192.0.2.1'), o: null },
      { k: 'host', id: 'dst', v: host('dst', '192.0.2.2'), o: null },
      { k: 'host', id: 'peer', v: host('peer', '192.0.2.3'), o: null },
      { k: 'segment', id: 'seg', v: segment, o: null },
    ]);
    const vm = port('vm', 'src', '0a');
    const peerPort = port('pp', 'peer', '0b');
    apply(undefined, [
      { k: 'port', id: 'vm', v: vm, o: null },
      { k: 'port', id: 'pp', v: peerPort, o: null },
    ]);
    const index = new SpanIndex(state);
    const sorted = (keys: Iterable<string>) => [...keys].sort();

    const prepared = { ...vm, migration: { id: 'm1', destinationHostId: 'dst' } };
    const prepare = apply(index, [{ k: 'port', id: 'vm', v: prepared, o: vm }])!;
    // The destination gets the segment, its table, the port's policy and its group's members.
    expect(sorted(prepare.get('dst')!.upserts)).toEqual(sorted(index.spanOf('dst')));
    expect(index.spanOf('dst')).toEqual(expect.arrayContaining(['segment/seg', 'port/vm', 'port/pp', 'policy/vm']));
    expect(index.resource('port/vm', 'peer')).toMatchObject({ port: { hostId: 'src', vtepIp: '192.0.2.1', preparedHostId: 'dst', migrationId: 'm1', preparedVtepIp: '192.0.2.2' } });
    // The destination joins the flood list (peers flood a migrating VM's frames to both hosts); peers lose nothing.
    expect(index.resource('segment/seg', 'peer')).toMatchObject({ segment: { vteps: ['192.0.2.1', '192.0.2.2', '192.0.2.3'] } });
    expect(prepare.get('peer')!.upserts).toEqual(new Set(['segment/seg', 'port/vm']));
    expect([...prepare.get('peer')!.removals]).toEqual([]);

    const commit = apply(index, [{ k: 'port', id: 'vm', v: { ...vm, hostId: 'dst', migration: null }, o: prepared }])!;
    expect(index.resource('port/vm', 'peer')).toMatchObject({ port: { hostId: 'dst', vtepIp: '192.0.2.2', preparedHostId: '' } });
    expect(commit.get('peer')!.upserts).toEqual(new Set(['port/vm', 'segment/seg']));
    // The destination keeps the policy (no removal, no gap); the source withdraws everything.
    expect([...commit.get('dst')!.removals]).toEqual([]);
    expect(sorted(commit.get('src')!.removals)).toEqual(sorted(['segment/seg', 'port/vm', 'port/pp', 'policy/vm', ...[...commit.get('src')!.removals].filter((k) => k.startsWith('member/'))]));
    expect(index.spanOf('src')).toEqual([]);

    // A second migration, aborted: the destination withdraws and leaves the flood list again.
    const back = { ...index.port('vm')!, migration: { id: 'm2', destinationHostId: 'src' } };
    apply(index, [{ k: 'port', id: 'vm', v: back, o: index.port('vm')! }]);
    const abort = apply(index, [{ k: 'port', id: 'vm', v: { ...back, migration: null }, o: back }])!;
    expect(sorted(abort.get('src')!.removals)).toEqual(sorted(['segment/seg', 'port/vm', 'port/pp', 'policy/vm', ...[...abort.get('src')!.removals].filter((k) => k.startsWith('member/'))]));
    expect(abort.get('peer')!.upserts).toEqual(new Set(['port/vm', 'segment/seg']));
    expect(index.spanOf('src')).toEqual([]);
  });
});
