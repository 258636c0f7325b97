import type { Host } from '../hosts/host.model';
import type { Port } from '../ports/port.model';
import type { SecurityGroup } from '../security-groups/security-group.model';
import type { Segment } from '../segments/segment.model';
import type { Tenant } from '../tenants/tenant.model';
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
}

export function emptyViewState(): ViewState {
  return { revision: 0, tenants: new Map(), segments: new Map(), hosts: new Map(), ports: new Map(), securityGroups: new Map() };
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
  }
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
      table.set(op.id, op.v);
    }
  }
  state.revision = record.revision;
  return true;
}
