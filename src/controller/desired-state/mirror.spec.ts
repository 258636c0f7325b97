import { mirrorTap } from '../../common/span/mirror.kind';
import type { MirrorTap__Output } from '../../generated/overlay/v1/MirrorTap';
import type { Host } from '../model/host';
import type { MirrorSession } from '../model/mirror-session';
import type { Port } from '../model/port';
import type { Segment } from '../model/segment';
import type { Tenant } from '../model/tenant';
import type { ChangeOp, ChangeRecord } from '../store/change-log';
import { applyChange, emptyViewState } from '../store/view-state';
import { affectedSessions } from './mirror-index';
import { changesSince } from './span-diff';
import { sharedEncoding, SpanIndex } from './span-index';

const host = (id: string, vtepIp: string): Host => ({ id, name: id, vtepIp, inventory: { uplinks: [], trunkedVlans: [] }, createdAt: '', updatedAt: '' });
const port = (id: string, hostId: string | null, fields: Partial<Port> = {}): Port => ({
  id,
  segmentId: 'seg',
  tenantId: 't',
  vmId: null,
  mac: '02:00:00:00:00:01',
  ips: [],
  hostId,
  securityGroupIds: [],
  portSecurity: false,
  allowedAddressPairs: [],
  migration: null,
  createdAt: '',
  updatedAt: '',
  ...fields,
});
const session = (id: string, fields: Partial<MirrorSession>): MirrorSession => ({
  id,
  tenantId: 't',
  name: id,
  enabled: true,
  sources: [{ portId: 'vm1', direction: 'both' }],
  sink: { type: 'port', portId: 'an1' },
  filter: null,
  snapLength: null,
  vni: 9001,
  createdAt: '',
  updatedAt: '',
  ...fields,
});

/** What a tap on a host says, beyond session and port (which `mirrors` checks against the key): its directions, filter, and where copies go. */
const tap = (fields: Partial<MirrorTap__Output>): Partial<MirrorTap__Output> => {
  const whole: Partial<MirrorTap__Output> = mirrorTap({ ingress: true, egress: true, ...fields });
  delete whole.sessionId;
  delete whole.portId;
  return whole;
};

/**
 * Three hosts, a segment, VM ports vm1 (h1) and vm2 (h2), analyzer ports an1 (h1), an2 (h2)
 * and an3 (unbound), and a bystander port on h3. Every record goes through the live path, and
 * the same record through resume (changesSince) must give each host the same change.
 */
class Fixture {
  readonly state = emptyViewState();
  readonly index: SpanIndex;

  constructor() {
    const tenant: Tenant = { id: 't', name: 't', maxSegments: null, defaultSecurityGroupId: 'sg', createdAt: '' };
    const segment: Segment = { id: 'seg', tenantId: 't', name: 's', vni: 1000, vlanId: null, cidr: null, createdAt: '' };
    this.record([
      { k: 'tenant', id: 't', v: tenant, o: null },
      { k: 'host', id: 'h1', v: host('h1', '192.0.2.1'), o: null },
      { k: 'host', id: 'h2', v: host('h2', '192.0.2.2'), o: null },
      { k: 'host', id: 'h3', v: host('h3', '192.0.2.3'), o: null },
      { k: 'segment', id: 'seg', v: segment, o: null },
      ...[port('vm1', 'h1'), port('vm2', 'h2'), port('an1', 'h1', { role: 'analyzer' }), port('an2', 'h2', { role: 'analyzer' }), port('an3', null, { role: 'analyzer' }), port('by', 'h3')].map(
        (p): ChangeOp => ({ k: 'port', id: p.id, v: p, o: null }),
      ),
    ]);
    this.index = new SpanIndex(this.state);
  }

  private record(ops: ChangeOp[]): ChangeRecord {
    const record = { revision: this.state.revision + 1, entryId: `${this.state.revision + 1}-1`, at: 0, ops };
    applyChange(this.state, record);
    return record;
  }

  /** Applies ops (each `v` given; `o` is the current value); returns each host's mirror changes, checked against resume. */
  apply(...ops: { k: ChangeOp['k']; id: string; v: unknown }[]): Record<string, { upserts: string[]; removals: string[] }> {
    const tables = { port: this.state.ports, host: this.state.hosts, mirrorSession: this.state.mirrorSessions } as Record<string, Map<string, unknown>>;
    const record = this.record(ops.map((op) => ({ ...op, o: tables[op.k]?.get(op.id) ?? null })));
    const live = this.index.apply(record);
    const out: Record<string, { upserts: string[]; removals: string[] }> = {};
    const mirror = (keys: Iterable<string> | undefined) => [...(keys ?? [])].filter((k) => k.startsWith('mirror')).sort();
    for (const hostId of this.state.hosts.keys()) {
      const change = live.get(hostId);
      // (The live path resends a touched port's policy even when unchanged; resume does not: mirror keys only.)
      const resumed = changesSince(this.index, [record], hostId).get(hostId);
      expect({ hostId, upserts: mirror(resumed?.upserts), removals: mirror(resumed?.removals) }).toEqual({ hostId, upserts: mirror(change?.upserts), removals: mirror(change?.removals) });
      if (mirror(change?.upserts).length || mirror(change?.removals).length) {
        out[hostId] = { upserts: mirror(change?.upserts), removals: mirror(change?.removals) };
      }
    }
    return out;
  }

  /** The host's mirror resources: key -> value (without the ids the key carries). */
  mirrors(hostId: string): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const key of this.index.spanOf(hostId).filter((k) => k.startsWith('mirror'))) {
      const resource = this.index.resource(key, hostId)!;
      const value = resource.kind === 'mirror' ? resource.mirror : resource.kind === 'mirrorSink' ? resource.mirrorSink : undefined;
      const { sessionId, portId, ...rest } = value as unknown as Record<string, unknown>;
      out[key] = resource.kind === 'mirror' ? rest : { portId, ...rest };
      expect(resource.kind === 'mirror' ? `mirror/${sessionId as string}/${portId as string}` : `mirrorSink/${sessionId as string}`).toBe(key);
    }
    return out;
  }

  create(s: MirrorSession) {
    return this.apply({ k: 'mirrorSession', id: s.id, v: s });
  }

  port(id: string): Port {
    return this.state.ports.get(id)!;
  }
}

describe('mirror sessions in spans', () => {
  it('sends a local port sink’s source its tap naming the analyzer port, and the sink side to the same host', () => {
    const f = new Fixture();
    expect(f.create(session('s1', {}))).toEqual({ h1: { upserts: ['mirror/s1/vm1', 'mirrorSink/s1'], removals: [] } });
    expect(f.mirrors('h1')).toEqual({
      'mirror/s1/vm1': tap({ sinkPortId: 'an1' }),
      'mirrorSink/s1': { portId: 'an1', vni: 9001, interface: '' },
    });
    expect(f.mirrors('h2')).toEqual({});
    expect(f.mirrors('h3')).toEqual({});
  });

  it('tunnels a remote port sink’s copies to the sink host’s VTEP under the session VNI', () => {
    const f = new Fixture();
    expect(f.create(session('s1', { sources: [{ portId: 'vm2', direction: 'ingress' }] }))).toEqual({
      h1: { upserts: ['mirrorSink/s1'], removals: [] },
      h2: { upserts: ['mirror/s1/vm2'], removals: [] },
    });
    expect(f.mirrors('h2')).toEqual({ 'mirror/s1/vm2': tap({ egress: false, vni: 9001, remoteIp: '192.0.2.1', udpPort: 4789 }) });
    expect(f.mirrors('h1')).toEqual({ 'mirrorSink/s1': { portId: 'an1', vni: 9001, interface: '' } });
  });

  it('sends an uplink’s copies out the interface on its host, and tunnels them there from others', () => {
    const f = new Fixture();
    f.create(
      session('s1', {
        sources: [
          { portId: 'vm1', direction: 'egress' },
          { portId: 'vm2', direction: 'both' },
        ],
        sink: { type: 'uplink', hostId: 'h1', interface: 'eth2' },
      }),
    );
    expect(f.mirrors('h1')).toEqual({
      'mirror/s1/vm1': tap({ ingress: false, sinkInterface: 'eth2' }),
      'mirrorSink/s1': { portId: '', vni: 9001, interface: 'eth2' },
    });
    expect(f.mirrors('h2')).toEqual({ 'mirror/s1/vm2': tap({ vni: 9001, remoteIp: '192.0.2.1', udpPort: 4789 }) });
    // An uplink on a host with no source still gets the sink side.
    f.apply({ k: 'mirrorSession', id: 's1', v: { ...f.state.mirrorSessions.get('s1')!, sink: { type: 'uplink', hostId: 'h3', interface: 'eth9' } } });
    expect(f.mirrors('h3')).toEqual({ 'mirrorSink/s1': { portId: '', vni: 9001, interface: 'eth9' } });
    expect(f.mirrors('h1')).toEqual({ 'mirror/s1/vm1': tap({ ingress: false, vni: 9001, remoteIp: '192.0.2.3', udpPort: 4789 }) });
  });

  it('sends a VXLAN collector’s parameters to every source host, and no sink side anywhere', () => {
    const f = new Fixture();
    const changes = f.create(
      session('s1', {
        sources: [
          { portId: 'vm1', direction: 'both' },
          { portId: 'vm2', direction: 'both' },
        ],
        sink: { type: 'vxlan', remoteIp: '203.0.113.7', vni: 9001, udpPort: 4790 },
      }),
    );
    expect(changes).toEqual({ h1: { upserts: ['mirror/s1/vm1'], removals: [] }, h2: { upserts: ['mirror/s1/vm2'], removals: [] } });
    const collector = { vni: 9001, remoteIp: '203.0.113.7', udpPort: 4790 };
    expect(f.mirrors('h1')).toEqual({ 'mirror/s1/vm1': tap(collector) });
    expect(f.mirrors('h2')).toEqual({ 'mirror/s1/vm2': tap(collector) });
  });

  it('sends an ERSPAN collector’s address, session id and version to every source host (no VNI, no UDP port), and no sink side anywhere', () => {
    const f = new Fixture();
    const changes = f.create(
      session('s1', {
        sources: [
          { portId: 'vm1', direction: 'ingress' },
          { portId: 'vm2', direction: 'both' },
        ],
        sink: { type: 'erspan', remoteIp: '203.0.113.9', erspanId: 77, version: 1 },
      }),
    );
    expect(changes).toEqual({ h1: { upserts: ['mirror/s1/vm1'], removals: [] }, h2: { upserts: ['mirror/s1/vm2'], removals: [] } });
    const collector = { remoteIp: '203.0.113.9', erspanId: 77, erspanVersion: 1 };
    expect(f.mirrors('h1')).toEqual({ 'mirror/s1/vm1': tap({ egress: false, ...collector }) });
    expect(f.mirrors('h2')).toEqual({ 'mirror/s1/vm2': tap(collector) });
    // To an analyzer port instead: the taps change (local on h1, a VXLAN tunnel from h2) and h1 gets the sink side.
    expect(f.apply({ k: 'mirrorSession', id: 's1', v: { ...f.state.mirrorSessions.get('s1')!, sink: { type: 'port', portId: 'an1' } } })).toEqual({
      h1: { upserts: ['mirror/s1/vm1', 'mirrorSink/s1'], removals: [] },
      h2: { upserts: ['mirror/s1/vm2'], removals: [] },
    });
    expect(f.mirrors('h2')).toEqual({ 'mirror/s1/vm2': tap({ vni: 9001, remoteIp: '192.0.2.1', udpPort: 4789 }) });
    // A sink host's VTEP change touches no ERSPAN tap.
    f.apply({ k: 'mirrorSession', id: 's1', v: { ...f.state.mirrorSessions.get('s1')!, sink: { type: 'erspan', remoteIp: '203.0.113.9', erspanId: 77, version: 2 } } });
    expect(f.mirrors('h1')).toEqual({ 'mirror/s1/vm1': tap({ egress: false, ...collector, erspanVersion: 2 }) });
    expect(f.apply({ k: 'host', id: 'h1', v: { ...f.state.hosts.get('h1')!, vtepIp: '198.51.100.1' } })).toEqual({});
  });

  it('carries the filter and the snap length', () => {
    const f = new Fixture();
    f.create(session('s1', { filter: { ethertype: 'IPv6', protocol: 17, remoteCidr: 'fd00::/64' }, snapLength: 96 }));
    expect(f.mirrors('h1')['mirror/s1/vm1']).toEqual(tap({ filterEthertype: 'IPv6', filterProtocol: 17, filterRemoteCidr: 'fd00::/64', snapLength: 96, sinkPortId: 'an1' }));
    f.apply({ k: 'mirrorSession', id: 's1', v: { ...f.state.mirrorSessions.get('s1')!, filter: { ethertype: 'IPv4', protocol: null, remoteCidr: null } } });
    expect(f.mirrors('h1')['mirror/s1/vm1']).toEqual(tap({ filterEthertype: 'IPv4', snapLength: 96, sinkPortId: 'an1' }));
  });

  it('programs a disabled session nowhere, and withdraws everything when a session is disabled', () => {
    const f = new Fixture();
    expect(f.create(session('s1', { enabled: false, sources: [{ portId: 'vm2', direction: 'both' }] }))).toEqual({});
    expect([...f.state.hosts.keys()].map((h) => f.mirrors(h))).toEqual([{}, {}, {}]);
    const enable = f.apply({ k: 'mirrorSession', id: 's1', v: { ...f.state.mirrorSessions.get('s1')!, enabled: true } });
    expect(enable).toEqual({ h1: { upserts: ['mirrorSink/s1'], removals: [] }, h2: { upserts: ['mirror/s1/vm2'], removals: [] } });
    const disable = f.apply({ k: 'mirrorSession', id: 's1', v: { ...f.state.mirrorSessions.get('s1')!, enabled: false } });
    expect(disable).toEqual({ h1: { upserts: [], removals: ['mirrorSink/s1'] }, h2: { upserts: [], removals: ['mirror/s1/vm2'] } });
  });

  it('sends no tap while a port sink is unbound, and every tap once it is bound', () => {
    const f = new Fixture();
    expect(f.create(session('s1', { sink: { type: 'port', portId: 'an3' }, sources: [{ portId: 'vm1', direction: 'both' }, { portId: 'vm2', direction: 'both' }] }))).toEqual({});
    expect(f.apply({ k: 'port', id: 'an3', v: { ...f.port('an3'), hostId: 'h3' } })).toEqual({
      h1: { upserts: ['mirror/s1/vm1'], removals: [] },
      h2: { upserts: ['mirror/s1/vm2'], removals: [] },
      h3: { upserts: ['mirrorSink/s1'], removals: [] },
    });
    expect(f.mirrors('h1')).toEqual({ 'mirror/s1/vm1': tap({ vni: 9001, remoteIp: '192.0.2.3', udpPort: 4789 }) });
    // The analyzer moves to h1: its tap there goes local, h2's tunnel follows it, h3 loses the sink side.
    expect(f.apply({ k: 'port', id: 'an3', v: { ...f.port('an3'), hostId: 'h1' } })).toEqual({
      h1: { upserts: ['mirror/s1/vm1', 'mirrorSink/s1'], removals: [] },
      h2: { upserts: ['mirror/s1/vm2'], removals: [] },
      h3: { upserts: [], removals: ['mirrorSink/s1'] },
    });
    expect(f.mirrors('h1')['mirror/s1/vm1']).toEqual(tap({ sinkPortId: 'an3' }));
    expect(f.mirrors('h2')['mirror/s1/vm2']).toEqual(tap({ vni: 9001, remoteIp: '192.0.2.1', udpPort: 4789 }));
    // Unbound again: nowhere to send copies.
    expect(f.apply({ k: 'port', id: 'an3', v: { ...f.port('an3'), hostId: null } })).toEqual({
      h1: { upserts: [], removals: ['mirror/s1/vm1', 'mirrorSink/s1'] },
      h2: { upserts: [], removals: ['mirror/s1/vm2'] },
    });
  });

  it('puts the tap on a prepared migration’s destination (sink resolved from there), and takes it off the source at commit', () => {
    const f = new Fixture();
    f.create(session('s1', {}));
    const vm1 = f.port('vm1');
    const prepared = { ...vm1, migration: { id: 'm1', destinationHostId: 'h2' } };
    expect(f.apply({ k: 'port', id: 'vm1', v: prepared })).toEqual({ h2: { upserts: ['mirror/s1/vm1'], removals: [] } });
    expect(f.mirrors('h2')).toEqual({ 'mirror/s1/vm1': tap({ vni: 9001, remoteIp: '192.0.2.1', udpPort: 4789 }) });
    expect(f.mirrors('h1')['mirror/s1/vm1']).toEqual(tap({ sinkPortId: 'an1' }));
    expect(f.apply({ k: 'port', id: 'vm1', v: { ...vm1, hostId: 'h2', migration: null } })).toEqual({ h1: { upserts: [], removals: ['mirror/s1/vm1'] } });
    expect(f.mirrors('h1')).toEqual({ 'mirrorSink/s1': { portId: 'an1', vni: 9001, interface: '' } });
    // An aborted migration withdraws the destination's tap only.
    const again = { ...f.port('vm1'), migration: { id: 'm2', destinationHostId: 'h3' } };
    expect(f.apply({ k: 'port', id: 'vm1', v: again })).toEqual({ h3: { upserts: ['mirror/s1/vm1'], removals: [] } });
    expect(f.apply({ k: 'port', id: 'vm1', v: { ...again, migration: null } })).toEqual({ h3: { upserts: [], removals: ['mirror/s1/vm1'] } });
  });

  it('resends the taps tunnelling to a host whose VTEP changes, and nothing else', () => {
    const f = new Fixture();
    f.create(session('s1', { sources: [{ portId: 'vm1', direction: 'both' }, { portId: 'vm2', direction: 'both' }] }));
    expect(f.apply({ k: 'host', id: 'h1', v: { ...f.state.hosts.get('h1')!, vtepIp: '198.51.100.1' } })).toEqual({ h2: { upserts: ['mirror/s1/vm2'], removals: [] } });
    expect(f.mirrors('h2')['mirror/s1/vm2']).toEqual(tap({ vni: 9001, remoteIp: '198.51.100.1', udpPort: 4789 }));
    // A source host's VTEP is in no tap.
    expect(f.apply({ k: 'host', id: 'h2', v: { ...f.state.hosts.get('h2')!, vtepIp: '198.51.100.2' } })).toEqual({});
  });

  it('withdraws a deleted session everywhere, and a deleted source port’s tap', () => {
    const f = new Fixture();
    f.create(session('s1', { sources: [{ portId: 'vm1', direction: 'both' }, { portId: 'vm2', direction: 'both' }] }));
    f.create(session('s2', { sources: [{ portId: 'vm2', direction: 'egress' }], sink: { type: 'port', portId: 'an2' }, vni: 9002 }));
    // (The API refuses to delete a port a session names; spans stay right anyway.)
    expect(f.apply({ k: 'port', id: 'vm2', v: null })).toEqual({ h2: { upserts: [], removals: ['mirror/s1/vm2', 'mirror/s2/vm2'] } });
    expect(f.apply({ k: 'mirrorSession', id: 's1', v: null })).toEqual({ h1: { upserts: [], removals: ['mirror/s1/vm1', 'mirrorSink/s1'] } });
    expect(f.mirrors('h2')).toEqual({ 'mirrorSink/s2': { portId: 'an2', vni: 9002, interface: '' } });
  });

  it('costs nothing for records that touch no session, source, sink or sink host', () => {
    const f = new Fixture();
    f.create(session('s1', {}));
    const untouched = (ops: ChangeOp[]) => affectedSessions(f.index.mirrors, f.index, { sessions: ops.filter((o) => o.k === 'mirrorSession').map((o) => o.id), ports: ops.filter((o) => o.k === 'port').map((o) => o.id), hosts: ops.filter((o) => o.k === 'host').map((o) => o.id) });
    expect(untouched([{ k: 'port', id: 'by', v: null, o: null }, { k: 'host', id: 'h3', v: null, o: null }, { k: 'port', id: 'vm2', v: null, o: null }]).size).toBe(0);
    // A source's record: that tap only; the sink's record or host: all of the session.
    expect(untouched([{ k: 'port', id: 'vm1', v: null, o: null }])).toEqual(new Map([['s1', new Set(['vm1'])]]));
    expect(untouched([{ k: 'port', id: 'an1', v: null, o: null }])).toEqual(new Map([['s1', 'all']]));
    expect(untouched([{ k: 'host', id: 'h1', v: null, o: null }])).toEqual(new Map([['s1', 'all']]));
    // A change to a source that leaves its tap as it was sends nothing.
    expect(f.apply({ k: 'port', id: 'vm1', v: { ...f.port('vm1'), vmId: 'vm-x', ips: ['10.0.0.9'] } })).toEqual({});
  });

  it('marks an analyzer port in its Port resource', () => {
    const f = new Fixture();
    expect(f.index.resource('port/an1', 'h2')).toMatchObject({ port: { analyzer: true } });
    expect(f.index.resource('port/vm1', 'h2')).toMatchObject({ port: { analyzer: false } });
    expect(f.apply({ k: 'port', id: 'vm2', v: { ...f.port('vm2'), role: 'analyzer' } })).toEqual({});
    expect(f.index.resource('port/vm2', 'h1')).toMatchObject({ port: { analyzer: true } });
  });

  it('keeps no encoding of a tap (its sink differs from one host to another) nor of a policy (one host’s), one of every other kind', () => {
    expect(sharedEncoding('mirror')).toBe(false);
    expect(sharedEncoding('policy')).toBe(false);
    expect(sharedEncoding('mirrorSink')).toBe(true);
    expect(sharedEncoding('member')).toBe(true);
    expect(sharedEncoding('port')).toBe(true);
    expect(sharedEncoding('segment')).toBe(true);
  });
});
