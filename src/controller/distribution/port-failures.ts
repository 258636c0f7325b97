import type { PortFailure__Output } from '../../generated/overlay/v1/PortFailure';
import { cleanAgentText } from '../../common/agent-text';

/** Entries one Ack's failed_ports may carry (sync.proto). */
export const MAX_FAILED_PORTS = 4096;
/** Longest port id accepted (sync.proto: 1-64 characters). */
const MAX_PORT_ID = 64;
/** Longest reason accepted as sent (sync.proto); longer breaks the protocol. */
const MAX_REASON_SENT = 1024;
/** Longest reason kept (cleaned: agent text is hostile input). */
export const MAX_PORT_REASON = 256;

/** Why a port the host holds is not realized there: its agent said it could not program it. */
export interface RealizationError {
  hostId: string;
  /** The agent's reason, cleaned and cut to MAX_PORT_REASON (see cleanAgentText). */
  reason: string;
  /** ISO 8601: when the controller first heard of this port failing on this host (it has failed at every ack since). */
  since: string;
}

/** The ports a host's agent said, at its last acknowledgement, it could not program: port id -> reason and since when. */
export interface HostPortFailures {
  /** The revision of the ack that said so. */
  revision: number;
  ports: Record<string, { reason: string; since: string }>;
}

const NO_FAILED_PORTS: { ports: ReadonlyMap<string, string> } = { ports: new Map() };

/**
 * Reads an Ack's failed_ports: the ports to keep (those the host holds in the controller's view,
 * `isLocalPort`; others are ignored: the port may have been deleted or moved since the agent's
 * revision), with their cleaned reasons, or why the list breaks the protocol (more than
 * MAX_FAILED_PORTS entries, a port id empty, longer than 64 characters or named twice, a reason
 * longer than 1024 characters). Pure.
 */
export function readFailedPorts(list: readonly PortFailure__Output[] | undefined, isLocalPort: (portId: string) => boolean): { ports: ReadonlyMap<string, string> } | { violation: string } {
  const entries = list ?? [];
  if (entries.length === 0) {
    return NO_FAILED_PORTS; // nearly every ack: nothing to allocate
  }
  if (entries.length > MAX_FAILED_PORTS) {
    return { violation: `Ack with ${entries.length} failed ports (at most ${MAX_FAILED_PORTS})` };
  }
  const seen = new Set<string>();
  const ports = new Map<string, string>();
  for (const [i, entry] of entries.entries()) {
    const id = entry.portId;
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_PORT_ID) {
      return { violation: `Ack failed_ports[${i}]: port_id is not a port id (1-${MAX_PORT_ID} characters)` };
    }
    if (seen.has(id)) {
      return { violation: `Ack failed_ports[${i}]: port ${cleanAgentText(id)} named twice` };
    }
    seen.add(id);
    const reason = entry.reason ?? '';
    if (typeof reason !== 'string' || reason.length > MAX_REASON_SENT) {
      return { violation: `Ack failed_ports[${i}]: reason longer than ${MAX_REASON_SENT} characters` };
    }
    if (isLocalPort(id)) {
      ports.set(id, cleanAgentText(reason, MAX_PORT_REASON) || 'no reason given');
    }
  }
  return { ports };
}

/**
 * Pure: the host's failures after an ack that names `ports` (port id -> reason) at `revision`:
 * a port that was already failing keeps its `since`; a new one starts at `at`.
 */
export function nextPortFailures(previous: HostPortFailures | undefined, revision: number, ports: ReadonlyMap<string, string>, at: string): HostPortFailures {
  const next: HostPortFailures = { revision, ports: {} };
  for (const [id, reason] of [...ports].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    next.ports[id] = { reason, since: previous?.ports[id]?.since ?? at };
  }
  return next;
}

/** Whether two failure lists name the same ports with the same reasons (revisions aside). */
export function samePortFailures(a: HostPortFailures | undefined, b: HostPortFailures): boolean {
  const keys = Object.keys(b.ports);
  return a !== undefined && Object.keys(a.ports).length === keys.length && keys.every((id) => a.ports[id]?.reason === b.ports[id].reason);
}

/** A stored record (agents:port-failures), or undefined when it is not one. */
export function parsePortFailures(raw: string | null | undefined): HostPortFailures | undefined {
  if (!raw) {
    return undefined;
  }
  try {
    const value = JSON.parse(raw) as Partial<HostPortFailures>;
    return typeof value.revision === 'number' && value.ports && typeof value.ports === 'object' ? { revision: value.revision, ports: value.ports } : undefined;
  } catch {
    return undefined;
  }
}
