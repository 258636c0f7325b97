import type { NftRuleset } from './linux/nft-ruleset';
import type { Metric } from 'prom-client';
import type { TapChoice, TapClaim } from './taps';

/**
 * The agent's seam to the kernel. A Dataplane owns only what it created (VXLAN devices and
 * bridges of the overlay, forwarding entries on them, its own nftables tables) and
 * describes that state in these terms; `reconcile/` computes a plan from the difference between
 * desired and observed state, and the dataplane applies it.
 */
export interface SegmentState {
  vni: number;
  /** This host's tunnel end point. */
  localVtep: string;
  /** Remote VTEPs hosting the segment: head-end replication of broadcast and unknown frames. */
  floodVteps: string[];
}

/**
 * A remote VM's MAC on a segment, reached through a remote VTEP. One VTEP only: the VXLAN driver
 * keeps several destinations for the all-zero (flood) entry, not for a unicast MAC (`bridge fdb
 * append` of a second one succeeds and does nothing).
 */
export interface FdbEntry {
  vni: number;
  mac: string;
  vtep: string;
}

/** A VM port on this host: its tap attached to its segment's bridge. */
export interface LocalPortState {
  /** The tap's name (as resolved, see taps.ts); the key, since that is what the kernel shows. */
  tap: string;
  vni: number;
}

/** A mirror direction, the VM's (as in security group rules): `ingress` = what it receives, `egress` = what it sends. */
export type MirrorDirection = 'ingress' | 'egress';

/** Which frames a mirror filter copies: '' / 0 = any. The remote CIDR is the peer's (destination of what the VM sends, source of what it receives). */
export interface MirrorMatch {
  ethertype: '' | 'IPv4' | 'IPv6';
  protocol: number;
  remoteCidr: string;
}

/**
 * A mirror VXLAN device (`mx<vni>`, the session's mirror VNI), never in a bridge. Source side:
 * copies sent into it travel to `remote:dstport`. Sink side (`remote` ''): copies arriving
 * under the VNI are redirected to `redirect` (a local analyzer's tap, or an interface).
 */
export interface MirrorDeviceState {
  vni: number;
  localVtep: string;
  /** Source side: the sink host's VTEP or the collector; '' on the sink side. */
  remote: string;
  dstport: number;
  /** Sink side: the device the copies go to; '' on the source side. */
  redirect: string;
}

/**
 * An ERSPAN device (`ms<erspanId>`, type erspan, or ip6erspan over IPv6) to a remote collector,
 * never in a bridge nor gated: copies sent into it go to `remote` over GRE, under the ERSPAN
 * session ID `erspanId` (the GRE key). One per session ID on a host, shared by the session's taps.
 */
export interface ErspanDeviceState {
  erspanId: number;
  localVtep: string;
  remote: string;
  /** 1 (type II) or 2 (type III). */
  version: number;
  /** Version 2 only ('' for 1): the direction the frames say, as a switch port sees it (see plan.ts). */
  dir: '' | 'ingress' | 'egress';
}

/**
 * One direction of one mirror tap: frames of `dev` (the source port's tap) that match `match`
 * are copied to `target` (an analyzer's tap, an interface, or a mirror device). Keyed by
 * `cookie`, a digest of all of it (see `mirrorCookie`), so a changed filter is another filter.
 */
export interface MirrorFilterState {
  cookie: string;
  /** The mirror tap, `<sessionId>/<portId>`; '' when read back (the kernel keeps only the cookie). */
  tapId: string;
  direction: MirrorDirection;
  dev: string;
  target: string;
  match: MirrorMatch;
  /** Read back only: what the filter copied since it was put. */
  packets?: number;
  bytes?: number;
}

/** A local analyzer port: its tap up, in no bridge, dropping whatever its VM sends; it only receives copies. */
export interface AnalyzerTapState {
  tap: string;
}

export interface DataplaneState {
  segments: Map<number, SegmentState>;
  /** Keyed by `fdbKey(vni, mac)`. Read only: an observed state's is read in place from the kernel's listing (kernel-view.ts, RemoteFdb). */
  fdb: ReadonlyMap<string, FdbEntry>;
  /** Keyed by tap name. */
  ports: Map<string, LocalPortState>;
  /** Keyed by mirror VNI. */
  mirrorDevices: Map<number, MirrorDeviceState>;
  /** Keyed by ERSPAN session ID. */
  erspanDevices: Map<number, ErspanDeviceState>;
  /** Keyed by cookie. */
  mirrorFilters: Map<string, MirrorFilterState>;
  /** Keyed by tap name. */
  analyzers: Map<string, AnalyzerTapState>;
}

/**
 * A firewall as the agent renders it and a dataplane loads it: the ruleset text (nft, which adds,
 * deletes and redefines its own tables) and, for each tap with a policy, the digest of everything
 * in the text that decides what passes that tap. Two rulesets that give a tap the same digest
 * filter it the same way; a tap without a digest is closed (the ruleset drops its frames).
 */
export interface FirewallRuleset {
  readonly text: string;
  /** tap -> digest of its filtering. */
  readonly ports: ReadonlyMap<string, string>;
  /** The structure `text` was printed from (renderFirewall gives it), so a load need not parse the text back; never changed. */
  readonly ruleset?: NftRuleset;
}

/**
 * What the last observe saw of the host beyond what the dataplane owns, for the host observation
 * the agent reports (reconciler.ts `hostObservation`): every tap by name, and the MAC ageing of
 * each of its own bridges.
 */
export interface HostKernelState {
  /** Link name (every link that may be a tap) -> its promiscuity count (the kernel's: one per promiscuous user, a bridge included) and whether it is a bridge port. */
  taps: Map<string, { promiscuity: number; bridged: boolean }>;
  /** VNI -> the MAC ageing time of the dataplane's bridge br<vni>, in seconds (0 = hub mode: every frame flooded). */
  bridgeAgeing: Map<number, number>;
}

export const fdbKey = (vni: number, mac: string): string => `${vni} ${mac}`;

/** The VNI and MAC of a key fdbKey made; undefined for any other string. */
export function fdbKeyParts(key: string): { vni: number; mac: string } | undefined {
  const at = key.indexOf(' ');
  const vni = key.slice(0, Math.max(at, 0));
  return /^[0-9]+$/.test(vni) ? { vni: Number(vni), mac: key.slice(at + 1) } : undefined;
}

/** A state being made (the desired one, or a copy to change): its forwarding entries a Map. */
export type DataplaneStateDraft = DataplaneState & { fdb: Map<string, FdbEntry> };

export function emptyDataplaneState(): DataplaneStateDraft {
  return { segments: new Map(), fdb: new Map(), ports: new Map(), mirrorDevices: new Map(), erspanDevices: new Map(), mirrorFilters: new Map(), analyzers: new Map() };
}

export type { TrackedConnection } from '../../common/tracked-connection';
import type { TrackedConnection } from '../../common/tracked-connection';

/** What inserting tracked connections achieved. */
export interface InsertedConnections {
  /** Connections now tracked (inserted, or already there). */
  installed: number;
  /** Connections that could not be inserted (refused by the kernel, or not valid). */
  failed: number;
  /** Why some failed; '' when none did. */
  error: string;
}

/** One step of a plan. Removals come before additions in a plan (see `planChanges`). */
export type PlanStep =
  | { op: 'remove-port'; tap: string }
  | { op: 'remove-fdb'; vni: number; mac: string }
  | { op: 'remove-segment'; vni: number }
  | { op: 'put-segment'; segment: SegmentState }
  | { op: 'put-fdb'; entry: FdbEntry }
  | { op: 'put-port'; port: LocalPortState }
  | { op: 'remove-mirror-filter'; filter: MirrorFilterState }
  | { op: 'remove-mirror-device'; vni: number }
  | { op: 'remove-erspan-mirror-device'; erspanId: number }
  | { op: 'remove-analyzer'; tap: string }
  | { op: 'put-analyzer'; analyzer: AnalyzerTapState }
  | { op: 'put-mirror-device'; device: MirrorDeviceState }
  | { op: 'put-erspan-mirror-device'; device: ErspanDeviceState }
  | { op: 'put-mirror-filter'; filter: MirrorFilterState };

export type DataplanePlan = PlanStep[];

/** The steps of a plan that only move remote forwarding entries (see Dataplane.updateForwarding). */
export type ForwardingStep = Extract<PlanStep, { op: 'put-fdb' | 'remove-fdb' }>;

/** Programs one host. */
/** Taps a host waits for, as the links they will be: by name, or by MAC (lower case). */
export interface AwaitedTaps {
  names: ReadonlySet<string>;
  macs: ReadonlySet<string>;
}

export interface Dataplane {
  /** Reads back the state it owns. Never mutates. */
  observe(): Promise<DataplaneState>;
  /**
   * Applies a plan. Idempotent: applying the same plan twice changes nothing more. Throws on a
   * failure that is not one port's (see portFailures). `from`: the state this dataplane's
   * `observe` returned and the plan was computed from, in the same pass, nothing changed by the
   * dataplane since; the dataplane may then compute its commands from what that observe read
   * rather than read the kernel again (once: a second apply reads).
   */
  apply(plan: DataplanePlan, from?: DataplaneState): Promise<void>;
  /**
   * Puts and removes remote forwarding entries (`steps`: removals first) without reading the
   * kernel: a change pass's fast path (reconciler.ts), for entries the last pass put in place.
   * Throws when the kernel refuses any of it (an entry to remove is gone, a device is missing):
   * the caller then takes the full pass, which reads the kernel and repairs. Optional.
   */
  updateForwarding?(steps: ForwardingStep[]): Promise<void>;
  /**
   * Replaces the whole firewall with `ruleset` (from `renderFirewall`), atomically: all of it or
   * nothing. Throws on failure. Given the text in force again, checks that the kernel still holds
   * it and repairs drift. Loaded before a plan is applied, apart from it: a plan only changes links.
   */
  applyFirewall(ruleset: FirewallRuleset): Promise<void>;
  /**
   * The firewall in force as far as the dataplane knows: the last ruleset loaded (a failed load
   * leaves the one before), undefined when none is (never loaded, or found changed behind its
   * back and not loaded again). The agent attaches a tap only while this ruleset holds the tap's
   * current policy (its digest).
   */
  firewallInForce(): FirewallRuleset | undefined;
  /**
   * Watches ports prepared here for an incoming migration: calls `arrived(tap)` once when a
   * frame from the port's MAC shows up on its tap (the VM resumed here and announced itself).
   * Each call replaces the set watched; an empty map stops watching. Optional.
   */
  watchArrivals?(ports: ReadonlyMap<string, string>, arrived: (tap: string) => void): void;
  /**
   * Forgets the tracked connections of these addresses in a conntrack zone (a segment's). The
   * agent calls it when a VM leaves this host and when one is prepared to arrive: entries left
   * from an earlier stay would hold stale TCP windows and make the returning VM's packets
   * invalid. Optional; best effort.
   */
  forgetConnections?(zone: number, ips: string[]): Promise<void>;
  /**
   * The tracked TCP and UDP connections of these addresses (as source or destination) in a
   * conntrack zone, at most `limit`, closing ones and NAT-rewritten ones left out. The source of a
   * live migration hands them to the destination. Optional. Never mutates.
   */
  listConnections?(zone: number, ips: string[], limit: number): Promise<TrackedConnection[]>;
  /**
   * Inserts tracked connections into a zone (a migrating VM's, on its destination), so its flows
   * go on as established. `ips` are the VM's addresses (the connections are theirs). A connection
   * already tracked counts as installed; an invalid one, or one the kernel refuses, as failed.
   * Optional. Idempotent.
   */
  insertConnections?(zone: number, ips: string[], connections: TrackedConnection[]): Promise<InsertedConnections>;
  /**
   * Why mirror filters of the last apply could not be put (cookie -> reason), when the dataplane
   * knows; a filter missing from `observe` without a reason here is reported as not programmed.
   * Optional.
   */
  mirrorFailures?(): ReadonlyMap<string, string>;
  /**
   * Local ports the last `apply` could not put in place, by tap (tap -> why, one short line): the
   * tap does not exist, or the kernel refused its gate or its attachment. `apply` throws only for
   * what concerns no port in particular; such a tap is left closed (detached, never attached
   * without its gate), everything else of the plan is applied, and the next apply tries it again.
   * Optional: a dataplane without it puts every port or throws.
   */
  portFailures?(): ReadonlyMap<string, string>;
  /**
   * Which link is each local port's tap (see taps.ts), from what the last observe read of the
   * host's links. Optional: without it a port's tap is the name it gives, or its port-id name.
   */
  resolveTaps?(claims: readonly TapClaim[]): Promise<Map<string, TapChoice>>;
  /**
   * Watches for the taps of local ports that are not there yet (the hypervisor creates a tap
   * when it starts the VM, after the port was bound or prepared here): calls `appeared` when a
   * link by one of these names or MACs is created or changes, or at once when one did at or
   * after `since` (ms since the epoch, when the caller last read the links). Each call replaces
   * the set watched; an empty one stops calling. Optional: without it such a tap is picked up by
   * the retry of the ports not in place.
   */
  watchTaps?(awaited: AwaitedTaps, since: number, appeared: () => void): void;
  /** What the last observe saw of the host's taps and the dataplane's bridges; undefined before the first. Optional. */
  observeHost?(): HostKernelState | undefined;
  /** Its own Prometheus instruments (firewall load time, firewall drift repairs), registered by the agent's metrics. Optional. */
  metrics?(): Metric<string>[];
  /** Releases resources (not the kernel state: a stopped agent leaves forwarding in place). */
  close(): Promise<void>;
}
