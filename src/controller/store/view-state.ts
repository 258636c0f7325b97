import type { Host } from '../model/host';
import type { Port } from '../model/port';
import type { MirrorSession } from '../model/mirror-session';
import type { SecurityGroup } from '../model/security-group';
import type { Segment } from '../model/segment';
import type { Tenant } from '../model/tenant';
import type { ChangeRecord, ResourceKind } from './change-log';

/**
 * The desired state at one revision, in memory. Pure data plus one pure function that applies
 * a change record; `MaterializedView` keeps one of these current, and tests build one from
 * scratch to compare.
 */
export interface ViewState {
  revision: number;
  tenants: Map<string, Tenant>;
  segments: Map<string, Segment>;
  hosts: Map<string, Host>;
  ports: Map<string, Port>;
  securityGroups: Map<string, SecurityGroup>;
  mirrorSessions: Map<string, MirrorSession>;
}

export function emptyViewState(): ViewState {
  return { revision: 0, tenants: new Map(), segments: new Map(), hosts: new Map(), ports: new Map(), securityGroups: new Map(), mirrorSessions: new Map() };
}

function tableOf(state: ViewState, kind: ResourceKind): Map<string, unknown> {
  switch (kind) {
    case 'tenant':
      return state.tenants;
    case 'segment':
      return state.segments;
    case 'host':
      return state.hosts;
    case 'port':
      return state.ports;
    case 'securityGroup':
      return state.securityGroups;
    case 'mirrorSession':
      return state.mirrorSessions;
  }
}

const interned = new Map<string, string>();
const intern = (value: string): string => {
  let shared = interned.get(value);
  if (shared === undefined) {
    interned.set(value, value);
    shared = value;
  }
  return shared;
};
const NO_ITEMS: never[] = Object.freeze([]) as unknown as never[];
const internedLists = new Map<string, string[]>();
/**
 * How many lists are shared before the table starts over: it keeps lists no port holds any more
 * (groups deleted), and where most ports have a list of their own sharing saves nothing while the
 * table costs a key per port. Starting over only ends sharing with the lists made before.
 */
const MAX_INTERNED_LISTS = 10_000;
/** One frozen array for every port with the same list of ids (ports of a group share its list). */
const internList = (ids: string[]): string[] => {
  const key = ids.join(',');
  let shared = internedLists.get(key);
  if (shared === undefined) {
    shared = Object.freeze(ids.map(intern)) as string[];
    if (internedLists.size >= MAX_INTERNED_LISTS) {
      internedLists.clear();
    }
    internedLists.set(key, shared);
  }
  return shared;
};

/**
 * A port as the view keeps it: ids it shares with thousands of other ports interned (one string
 * for all), its list of groups and empty lists shared, no timestamps (the API reads records from Redis, never from the
 * view). At 100,000 ports this halves the view. Every way into a view goes through here, so views
 * built any way compare equal.
 */
export function compactPort(port: Port): Port {
  return {
    ...port,
    segmentId: intern(port.segmentId),
    tenantId: intern(port.tenantId),
    hostId: port.hostId === null ? null : intern(port.hostId),
    securityGroupIds: port.securityGroupIds?.length ? internList(port.securityGroupIds) : NO_ITEMS,
    allowedAddressPairs: port.allowedAddressPairs?.length ? port.allowedAddressPairs : NO_ITEMS,
    ips: port.ips.length ? port.ips : NO_ITEMS,
    migration: port.migration ? { id: port.migration.id, destinationHostId: intern(port.migration.destinationHostId) } : null,
    createdAt: '',
    updatedAt: '',
  };
}

/**
 * A port is keyed by its own id string, not the record's copy of it (the indexes key by the
 * port's): 100,000 ports held each id twice, 5.6 MB.
 */
function setValue(table: Map<string, unknown>, kind: ResourceKind, id: string, value: unknown): unknown {
  if (kind === 'port') {
    const port = compactPort(value as Port);
    table.set(port.id, port);
    return port;
  }
  table.set(id, value);
  return value;
}

/** Applies one record. Records at or below the state's revision are ignored (replays are harmless). */
export function applyChange(state: ViewState, record: ChangeRecord): boolean {
  if (record.revision <= state.revision) {
    return false;
  }
  for (const op of record.ops) {
    const table = tableOf(state, op.k);
    if (op.v === null) {
      table.delete(op.id);
    } else {
      // The record's value becomes the state's own (a port's compact copy: the same resource as
      // the state holds it). What its readers go on to do with the record (the span index, for a
      // batch's 1,000 ports) then holds no second object per port: the parsed one is garbage
      // before that work starts, not copied through the collections it makes (docs/benchmarks.md).
      op.v = setValue(table, op.k, op.id, op.v);
    }
  }
  state.revision = record.revision;
  return true;
}

/**
 * Undoes one record: every resource it touched takes its old value again (`o`; absent when it
 * was created). The state must be at the record's revision; it is then at the one before. With
 * `applyChange`, a state can be moved back and forth along the change log.
 */
export function rewindChange(state: ViewState, record: ChangeRecord): void {
  if (record.revision !== state.revision) {
    throw new Error(`cannot rewind record ${record.revision} from a state at revision ${state.revision}`);
  }
  // Last op first: a record that touches one resource twice gets the value it had before both.
  for (let i = record.ops.length - 1; i >= 0; i--) {
    const op = record.ops[i];
    const table = tableOf(state, op.k);
    if (op.o === null || op.o === undefined) {
      table.delete(op.id);
    } else {
      setValue(table, op.k, op.id, op.o);
    }
  }
  state.revision = record.revision - 1;
}

/** A copy that can be changed without changing `state` (the tables are copied, not the resources, which are never mutated). */
export function copyViewState(state: ViewState): ViewState {
  return {
    revision: state.revision,
    tenants: new Map(state.tenants),
    segments: new Map(state.segments),
    hosts: new Map(state.hosts),
    ports: new Map(state.ports),
    securityGroups: new Map(state.securityGroups),
    mirrorSessions: new Map(state.mirrorSessions),
  };
}
