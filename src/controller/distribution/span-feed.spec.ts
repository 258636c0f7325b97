import { portRecord } from '../../../test/support/records';
import { encodeSpanResource } from '../desired-state/resources/span-resource';
import { SpanIndex } from '../desired-state/span-index';
import type { Port } from '../model/port';
import type { ChangeRecord } from '../store/change-log';
import type { MaterializedView } from '../store/materialized-view';
import { applyChange, copyViewState, emptyViewState, type ViewState } from '../store/view-state';
import { SpanFeed } from './span-feed';

/** The view's part the feed uses: a state, its changes and resets, applied by hand. */
class FakeView {
  private readonly changes = new Set<(record: ChangeRecord, state: ViewState) => void>();
  private readonly resets = new Set<(state: ViewState) => void>();
  constructor(public current: ViewState) {}
  get revision(): number {
    return this.current.revision;
  }
  onChange(listener: (record: ChangeRecord, state: ViewState) => void): () => void {
    this.changes.add(listener);
    return () => this.changes.delete(listener);
  }
  onReset(listener: (state: ViewState) => void): () => void {
    this.resets.add(listener);
    return () => this.resets.delete(listener);
  }
  apply(record: ChangeRecord): void {
    applyChange(this.current, record);
    this.changes.forEach((listener) => listener(record, this.current));
  }
  reset(state: ViewState): void {
    this.current = state;
    this.resets.forEach((listener) => listener(state));
  }
}

const PORTS = 300;

function world(): ViewState {
  const state = emptyViewState();
  state.revision = 10;
  state.tenants.set('tenant-1', { id: 'tenant-1', name: 't', maxSegments: null, defaultSecurityGroupId: 'sg-default', createdAt: '' });
  state.securityGroups.set('sg-default', { id: 'sg-default', tenantId: 'tenant-1', name: 'default', description: null, isDefault: true, rules: [], createdAt: '', updatedAt: '' });
  state.segments.set('segment-1', { id: 'segment-1', tenantId: 'tenant-1', name: 's', vni: 1001, vlanId: null, cidr: null, createdAt: '' });
  for (const id of ['h1', 'h2']) {
    state.hosts.set(id, { id, name: id, vtepIp: id === 'h1' ? '192.0.2.1' : '192.0.2.2', inventory: { uplinks: [], trunkedVlans: [] }, createdAt: '', updatedAt: '' });
  }
  for (let i = 0; i < PORTS; i++) {
    const id = `port-${i}`;
    state.ports.set(id, portRecord({ id, hostId: i % 2 ? 'h1' : 'h2', mac: `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`, ips: [`10.0.${i >> 8}.${i & 0xff}`] }));
  }
  return state;
}

/** A record that gives `portId` a new MAC at the state's next revision. */
function newMac(state: ViewState, portId: string, mac: string): ChangeRecord {
  const old = state.ports.get(portId)!;
  const next: Port = { ...old, mac };
  return { revision: state.revision + 1, ops: [{ k: 'port', id: portId, v: next, o: old }] } as ChangeRecord;
}

describe('SpanFeed encodings', () => {
  let view: FakeView;
  let feed: SpanFeed;

  beforeEach(() => {
    view = new FakeView(world());
    feed = new SpanFeed(view as unknown as MaterializedView);
  });

  afterEach(() => feed.onModuleDestroy());

  /** Every resource of h1's span: the feed's bytes against an encoding made now from the view's state. */
  function mismatches(): string[] {
    const fresh = new SpanIndex(copyViewState(view.current));
    const wrong: string[] = [];
    for (const { kind, ids } of fresh.spanRuns('h1')) {
      for (const id of ids) {
        const expected = Buffer.from(encodeSpanResource(fresh.resourceOf(kind, id, 'h1')!));
        if (!Buffer.from(feed.encode(kind, id, 'h1')!).equals(expected)) {
          wrong.push(`${kind}/${id}`);
        }
      }
    }
    return wrong;
  }

  it('gives the current bytes of every resource, kept while snapshots are under way and made again when the revision moves', () => {
    feed.snapshotBegun();
    feed.snapshotBegun();
    expect(mismatches()).toEqual([]);
    expect(feed.encodedBytes).toBeGreaterThan(0);
    expect(mismatches()).toEqual([]); // from what was kept
    view.apply(newMac(view.current, 'port-7', '02:aa:00:00:00:07'));
    expect(mismatches()).toEqual([]);
    view.apply(newMac(view.current, 'port-8', '02:aa:00:00:00:08'));
    view.apply(newMac(view.current, 'port-7', '02:bb:00:00:00:07'));
    expect(mismatches()).toEqual([]);
    feed.snapshotEnded();
    feed.snapshotEnded();
    expect(feed.encodedBytes).toBe(0);
    expect(mismatches()).toEqual([]);
  });

  it('keeps nothing for a single snapshot under way, and keeps encodings for the deltas of a revision', () => {
    feed.snapshotBegun();
    expect(mismatches()).toEqual([]);
    expect(feed.encodedBytes).toBe(0);
    feed.snapshotEnded();
    expect(mismatches()).toEqual([]);
    expect(feed.encodedBytes).toBeGreaterThan(0);
    view.apply(newMac(view.current, 'port-7', '02:aa:00:00:00:07'));
    expect(mismatches()).toEqual([]);
  });

  it('does not give bytes kept before a reset, even for a state at the same revision', () => {
    feed.snapshotBegun();
    feed.snapshotBegun();
    expect(mismatches()).toEqual([]);
    const reloaded = copyViewState(view.current);
    const port = reloaded.ports.get('port-9')!;
    reloaded.ports.set('port-9', { ...port, mac: '02:cc:00:00:00:09' });
    expect(reloaded.revision).toBe(view.revision);
    view.reset(reloaded);
    expect(mismatches()).toEqual([]);
    expect(Buffer.from(feed.encode('port', 'port-9', 'h1')!).includes('02:cc:00:00:00:09')).toBe(true);
  });

  it('forgets what it kept once the last of several snapshots ends', () => {
    feed.snapshotBegun();
    feed.snapshotBegun();
    expect(mismatches()).toEqual([]);
    feed.snapshotEnded();
    expect(feed.encodedBytes).toBeGreaterThan(0);
    feed.snapshotEnded();
    expect(feed.encodedBytes).toBe(0);
  });
});
