import { APPLY_SECONDS_BUCKETS } from '../../common/metrics';
import { performance } from 'node:perf_hooks';
import { Counter, Histogram } from 'prom-client';
import type { HostInventory } from '../../generated/overlay/v1/HostInventory';
import type { HostObservation } from '../../generated/overlay/v1/HostObservation';
import type { MirrorTapCounters } from '../../generated/overlay/v1/MirrorTapCounters';
import type { PortFailure } from '../../generated/overlay/v1/PortFailure';
import type { AgentConfig } from '../config';
import type { Dataplane, DataplaneState, FirewallRuleset, HostKernelState, MirrorFilterState } from '../dataplane/dataplane';
import { renderFirewall } from '../dataplane/linux/nftables';
import { tapName } from '../dataplane/names';
import { hostSideMac, resolveTaps, type TapChoice, type TapClaim } from '../dataplane/taps';
import type { Logger } from '../../common/logger';
import { Backoff } from '../sync/backoff';
import type { DesiredSource, StateChange } from '../sync/desired-state-store';
import type { DesiredState } from '../sync/state-cache';
import { PassReport } from './pass-report';
import { closedPorts, desiredDataplane, forwardingDelta, isLocal, planChanges, type SpanView, type TapOf } from './plan';

/** Periodic passes resend the host observation every this many, changed or not (each: a minute at the default 60 s interval). */
export const HOST_OBSERVATION_EVERY = 1;

export interface ReconcileHooks {
  /** Acks `revision` (but for `failedPorts`, sorted by port id), or nacks it with `error`; whether it was sent. */
  report(revision: number, error?: string, failedPorts?: PortFailure[]): boolean;
  /** Runs after each pass that programmed the links (closed ports aside). */
  linked(): Promise<void>;
  /** Sends the mirror taps' counters (one entry per mirror tap of the span); whether it was sent. */
  mirrorCounters?(entries: MirrorTapCounters[]): boolean;
  /** Sends what the dataplane observed of the host's taps and bridges; whether it was sent. */
  hostObserved?(observation: HostObservation): boolean;
  /** The host's inventory as last collected (inventory/), joined to each host observation; undefined: none yet, or collection off. */
  inventory?(): HostInventory | undefined;
  /** Runs after each pass of the work queue (a change's, a periodic one, a retry), failed or not: the agent releases the memory the pass used (see memory.ts). */
  passDone?(): void;
  /**
   * Runs between the stages of a full pass (after the kernel's read, after the desired links are
   * built, after the firewall's load or drift check): the agent releases what the stage left
   * (memory.ts), so that a stage's garbage is not still there under the next one's.
   */
  stageDone?(): void;
}

/**
 * Pure: what the host observation says (SyncRequest.observed), sorted: the taps of the span's
 * local ports (analyzers included, each by its tap as `tapOf` resolves it) and the bridges of its
 * segments, as the kernel showed them; those the kernel did not show are left out; and the host's
 * inventory as last collected, when there is one.
 */
export function hostObservation(span: SpanView, kernel: HostKernelState, inventory?: HostInventory, tapOf: TapOf = tapName): HostObservation {
  const taps = [...span.ports.values()]
    .filter((port) => isLocal(port, span.hostId))
    .flatMap((port) => {
      const name = tapOf(port.id);
      const tap = name === undefined ? undefined : kernel.taps.get(name);
      return tap ? [{ portId: port.id, promiscuity: tap.promiscuity, bridged: tap.bridged }] : [];
    })
    .sort((a, b) => (a.portId < b.portId ? -1 : a.portId > b.portId ? 1 : 0));
  const bridges = [...span.segments.values()]
    .flatMap((segment) => {
      const ageing = kernel.bridgeAgeing.get(segment.vni);
      return ageing === undefined ? [] : [{ vni: segment.vni, ageingSeconds: ageing }];
    })
    .sort((a, b) => a.vni - b.vni);
  return inventory ? { taps, bridges, inventory } : { taps, bridges };
}

/**
 * Pure: one entry per mirror tap of the span: packets and bytes its filters copied (both
 * directions summed) and, when one of them is not in place, why: the span's own problem
 * (`errors`, see desiredDataplane), the dataplane's (`failures`, by cookie), or its absence.
 */
export function mirrorCounters(ids: Iterable<string>, desired: DataplaneState, observed: DataplaneState, errors: ReadonlyMap<string, string>, failures: ReadonlyMap<string, string> = new Map()): MirrorTapCounters[] {
  const filters = new Map<string, MirrorFilterState[]>();
  for (const f of desired.mirrorFilters.values()) {
    filters.set(f.tapId, [...(filters.get(f.tapId) ?? []), f]);
  }
  return [...ids].sort().map((id) => {
    let packets = 0;
    let bytes = 0;
    let error = errors.get(id) ?? '';
    for (const f of filters.get(id) ?? []) {
      const have = observed.mirrorFilters.get(f.cookie);
      packets += have?.packets ?? 0;
      bytes += have?.bytes ?? 0;
      if (!error && (!have || have.dev !== f.dev || have.target !== f.target)) {
        error = failures.get(f.cookie) ?? `not programmed: the ${f.direction} filter on ${f.dev} is missing`;
      }
      const device = Number(/^mx(\d+)$/.exec(f.target)?.[1] ?? 0);
      const want = desired.mirrorDevices.get(device);
      const got = observed.mirrorDevices.get(device);
      if (!error && want && (!got || got.localVtep !== want.localVtep || got.remote !== want.remote || got.dstport !== want.dstport)) {
        error = `not programmed: mirror device ${f.target} is not in place`;
      }
      const erspanId = Number(/^ms(\d+)$/.exec(f.target)?.[1] ?? 0);
      const wantErspan = desired.erspanDevices.get(erspanId);
      const gotErspan = observed.erspanDevices.get(erspanId);
      if (!error && wantErspan && (!gotErspan || gotErspan.localVtep !== wantErspan.localVtep || gotErspan.remote !== wantErspan.remote || gotErspan.version !== wantErspan.version)) {
        error = failures.get(f.cookie) ?? `not programmed: ERSPAN device ${f.target} is not in place`;
      }
    }
    return { id, packets, bytes, error };
  });
}

/** The key of a mirror counters report of no taps. */
const NO_MIRROR_TAPS = 'none';

/**
 * Pure: the span's local ports that are not in place, as the Ack names them (by port id, sorted):
 * those whose taps the dataplane could not put in place (`taps`: tap -> why, from
 * Dataplane.portFailures), and those left without a tap (`tapOf` gives none; `unresolved`: port
 * id -> why, from the tap resolution). Taps of no local port are left out.
 */
export function failedPorts(
  span: SpanView,
  taps: ReadonlyMap<string, string>,
  tapOf: (portId: string) => string | undefined = tapName,
  unresolved: ReadonlyMap<string, string> = new Map(),
): PortFailure[] {
  if (taps.size === 0 && unresolved.size === 0) {
    return [];
  }
  return [...span.ports.values()]
    .filter((port) => isLocal(port, span.hostId))
    .flatMap((port) => {
      const tap = tapOf(port.id);
      const reason = tap === undefined ? unresolved.get(port.id) : taps.get(tap);
      return reason === undefined ? [] : [{ portId: port.id, reason }];
    })
    .sort((a, b) => (a.portId < b.portId ? -1 : a.portId > b.portId ? 1 : 0));
}

/**
 * What the last pass put in place, all of it (no failure, no port failed or kept closed, the
 * state whole): the state it programmed, the taps it used and the taps closed without a policy
 * it rendered (see `render`). The next change pass's fast path starts from it.
 */
interface GoodPass {
  state: DesiredState;
  taps: ReadonlyMap<string, TapChoice>;
  namedTaps: string[];
}

/** Why a pass runs: a change from the controller, the state restored at start, the periodic drift check, the retry of a failed pass. */
export type PassKind = 'change' | 'restore' | 'periodic' | 'retry';

/**
 * Programs the dataplane toward the desired state and reports each revision: acked once
 * programmed, nacked if programming failed.
 *
 * A pass: render the firewall, load it when it changed (and, in the periodic pass, even when it
 * did not: the dataplane checks for drift), then plan = diff(desired links, observed links) and
 * apply. Nothing is removed before the state is whole (sweeping waits for `inSync`).
 *
 * Fail closed: with the firewall on, the ruleset is loaded before the links change, and a tap is
 * attached only while the ruleset in force holds its current policy (`closedPorts`); a tap whose
 * policy is not in force is detached, even before the state is whole. The other ports keep
 * forwarding with the rules in force.
 *
 * A failed pass is nacked and retried after a backoff delay (exponential, full jitter, the
 * reconnect bounds), or by the next real change; never by revision markers, nor in a loop.
 * A pass that failed only for some ports (Dataplane.portFailures: a tap missing, or its gate or
 * attachment refused) is acked with those ports (`failedPorts`), which stay closed, and retried
 * the same way; a marker meanwhile is acked with the same ports without a pass (it changed
 * nothing), and the first ack without them says they are in place.
 * Passes run on the agent's work queue, one at a time; at most one periodic pass is queued.
 * After a pass it reports, through `hooks`, the mirror counters and what the pass observed of the
 * host (`hostObservation`).
 */
export class Reconciler {
  /** Revisions reported, and change passes that took the fast path (see fastPass), for tests, logs and metrics. */
  readonly counts = { acks: 0, nacks: 0, fastPasses: 0 };
  /** The last revision acknowledged (programmed); 0 before the first. */
  ackedRevision = 0;
  /** Every pass, by kind and outcome (the instruments belong to no registry: the agent's metrics register them). */
  readonly passSeconds = new Histogram<'pass' | 'result'>({
    name: 'overlay_agent_apply_seconds',
    help: 'Reconcile passes (render and load the firewall, read the kernel, apply the difference), by pass (change, restore, periodic, retry) and result (ok, failed)',
    labelNames: ['pass', 'result'],
    buckets: APPLY_SECONDS_BUCKETS,
    registers: [],
  });
  /** Kernel changes periodic passes made: what drifted from the desired state since the last pass. */
  readonly linkDriftRepairs = new Counter({
    name: 'overlay_agent_link_drift_repairs_total',
    help: 'Changes periodic reconcile passes made to the kernel (devices, bridges, taps, forwarding entries, mirrors that drifted from the desired state)',
    registers: [],
  });
  /** Change passes that took the fast path (see fastPass): no kernel read. */
  readonly fastPasses = new Counter({
    name: 'overlay_agent_fast_passes_total',
    help: 'Change passes that put their changes without reading the kernel (remote forwarding entries, security groups); the others, and every periodic pass, read it',
    registers: [],
  });
  /** The ruleset the dataplane said was in force after the last pass; undefined = none. */
  private inForce?: FirewallRuleset;
  /** The last render and the desired state's maps (and taps) it was made from (see `render`). */
  private rendered?: Pick<DesiredState, 'policies' | 'members' | 'ports' | 'segments'> & { taps: ReadonlyMap<string, TapChoice>; namedTaps: string; firewall: FirewallRuleset };
  /** Each local port's tap as last resolved (by port id); replaced only when it changed, so a render can be reused. */
  private taps: ReadonlyMap<string, TapChoice> = new Map();
  private tapsKey = '';
  /** The last pass, when it put all of its state in place; cleared as each pass starts. */
  private good?: GoodPass;
  /** The ports without a tap last logged. */
  private tapProblems = '';
  /** The next pass loads the firewall even when its text did not change: the dataplane checks for drift. */
  private repairDue = false;
  /** Set while the last pass failed: its retry is scheduled with backoff, and markers do not retry. */
  private failing = false;
  /** The local ports the last pass that applied could not put in place (acked with each revision until they are); a retry is scheduled while there are some. */
  private portsFailed: PortFailure[] = [];
  private retryTimer?: NodeJS.Timeout;
  private readonly retryBackoff: Backoff;
  private periodicTimer?: NodeJS.Timeout;
  private periodicQueued = false;
  /** A pass for the changes received is queued (see changed). */
  private changePassQueued = false;
  /** A pass for a tap that showed up is queued (see watchTaps). */
  private tapPassQueued = false;
  private stopped = true;
  /** The mirror counters: sent whenever the span has mirror taps, an empty report once after they are gone. */
  private readonly counters: PassReport<MirrorTapCounters[]>;
  /** The host observation: sent when it changed, and every HOST_OBSERVATION_EVERY-th periodic pass. */
  private readonly observation: PassReport<HostObservation>;
  private periodicPasses = 0;
  /** Mirror sink problems last logged (they have no mirror tap to be reported with). */
  private sinkProblems = '';

  constructor(
    private readonly config: Pick<AgentConfig, 'firewall' | 'conntrack' | 'backoffBaseMs' | 'backoffMaxMs' | 'reconcileIntervalMs'>,
    private readonly dataplane: Dataplane,
    private readonly desired: DesiredSource,
    private readonly hooks: ReconcileHooks,
    /** Queues a task on the agent's work queue. */
    private readonly enqueue: (task: () => Promise<void>) => void,
    private readonly logger: Logger,
    random: () => number,
  ) {
    this.retryBackoff = new Backoff(config.backoffBaseMs, config.backoffMaxMs, random);
    this.counters = new PassReport(hooks.mirrorCounters, NO_MIRROR_TAPS);
    this.observation = new PassReport(hooks.hostObserved);
  }

  /** Programs the state restored from disk, if any (it is not whole: nothing is swept), then repairs drift periodically. */
  async start(restored?: number): Promise<void> {
    this.stopped = false;
    if (restored !== undefined) {
      await this.realize(restored, 'restore');
    }
    this.periodicTimer = setInterval(() => {
      // One periodic pass queued at a time: when a pass takes longer than the interval (a busy
      // host, a large firewall to reload) ticks would otherwise pile up in the queue, delay
      // every change behind them and hold up stop(). While a pass is failing, its retry (with
      // backoff) is the next attempt.
      if (this.periodicQueued || this.failing || this.portsFailed.length > 0) {
        return;
      }
      this.periodicQueued = true;
      this.enqueue(() => {
        this.periodicQueued = false;
        return this.queuedPass(() => this.repair('periodic'));
      });
    }, this.config.reconcileIntervalMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.periodicTimer);
  }

  /**
   * Programs what a state change asks for, in a pass queued behind the messages already received:
   * the changes that arrive while it waits share it (one pass for the state they make, reported
   * as its revision). A pass reads the whole kernel, so one per message would fall behind a
   * stream of changes for good. A revision marker while a pass is failing waits for the retry,
   * which reports its revision.
   */
  async changed(change: Extract<StateChange, { outcome: 'replaced' | 'updated' }>): Promise<void> {
    if (change.outcome === 'updated' && change.marker && change.wasInSync && this.failing) {
      return;
    }
    if (change.outcome === 'updated' && change.marker && change.wasInSync && this.portsFailed.length > 0 && !this.changePassQueued) {
      // Nothing changed since the last pass: its ports still wait for their retry (with backoff).
      this.ack(change.revision);
      return;
    }
    if (this.changePassQueued) {
      return;
    }
    this.changePassQueued = true;
    this.enqueue(() => {
      this.changePassQueued = false;
      return this.queuedPass(() => this.realize(this.desired.state.revision));
    });
  }

  /** The local ports the last pass could not put in place (see failedPorts). */
  get failedPorts(): readonly PortFailure[] {
    return this.portsFailed;
  }

  /** Whether the last pass failed (its retry is scheduled). */
  get isFailing(): boolean {
    return this.failing;
  }

  /** One pass for the current desired state, reported as `revision`; a periodic one (and a retry) also reports the mirror counters. */
  async realize(revision: number, kind: PassKind = 'change'): Promise<void> {
    const start = performance.now();
    const failed = await this.pass(revision, kind);
    this.passSeconds.observe({ pass: kind, result: failed ? 'failed' : 'ok' }, (performance.now() - start) / 1000);
  }

  /** The pass of `realize`: the fast path when it can (a change pass only), else the full pass; whether it failed. */
  private async pass(revision: number, kind: PassKind): Promise<boolean> {
    const good = this.good;
    this.good = undefined;
    const fast = kind === 'change' && good ? await this.fastPass(revision, good) : { done: false as const };
    if (fast.done) {
      return false;
    }
    return this.fullPass(revision, kind, fast.firewallError);
  }

  /**
   * A change pass's fast path: the state changed since the last pass, which put all of its own
   * in place, only in what needs no reading of the kernel (plan.ts `forwardingDelta`: remote
   * ports' forwarding entries, local ports' security groups). It renders and loads the firewall
   * as the full pass does, then puts the entries (Dataplane.updateForwarding). Whether it did:
   * if not the pass goes the full way, which reads the kernel (anything else changed, the
   * kernel refused a step, or a local port's rules are not certainly in force: the full pass
   * closes it); a firewall load that failed here is not tried again in the same pass
   * (`firewallError`: nacked, retried with backoff, as any failed load). Nothing it did needs
   * undoing: the full pass does the same and checks it. Periodic passes and retries are always
   * full: they catch drift.
   */
  private async fastPass(revision: number, good: GoodPass): Promise<{ done: boolean; firewallError?: string }> {
    const full = { done: false };
    const { state, inSync } = this.desired;
    if (!inSync || !this.dataplane.updateForwarding || this.repairDue || this.taps !== good.taps || state.epoch !== good.state.epoch) {
      return full;
    }
    const delta = forwardingDelta(good.state, state);
    if ('full' in delta) {
      return full;
    }
    if (this.config.firewall) {
      // The render counts ports only through their policies, and no changed remote port has one
      // (forwardingDelta): the render of the last pass's ports stands for these.
      if (this.rendered?.ports === good.state.ports) {
        this.rendered.ports = state.ports;
      }
      const wanted = this.render(state, good.namedTaps);
      if (wanted.text !== this.inForce?.text) {
        try {
          await this.dataplane.applyFirewall(wanted);
        } catch (err) {
          return { done: false, firewallError: (err as Error).message }; // the full pass closes the ports left without rules
        }
      }
      this.inForce = this.dataplane.firewallInForce();
      // Fail closed: every local port's rules in force as rendered, or the full pass closes it.
      const local = new Map<string, true>();
      for (const port of state.ports.values()) {
        const tap = isLocal(port, state.hostId) && !port.analyzer && state.segments.has(port.segmentId) ? this.tapOf(port.id) : undefined;
        if (tap !== undefined) {
          local.set(tap, true);
        }
      }
      if (closedPorts({ ports: local }, wanted, this.inForce).size > 0) {
        return full;
      }
    }
    if (delta.steps.length > 0) {
      try {
        await this.dataplane.updateForwarding(delta.steps);
      } catch (err) {
        this.logger.warn(`forwarding entries of revision ${revision} not put without reading the kernel (${(err as Error).message.split('\n')[0]}): taking the full pass`);
        return full;
      }
    }
    await this.hooks.linked();
    // No local port came or went: what the last observe saw still stands (sent if not yet).
    this.reportHost(false);
    this.counts.fastPasses++;
    this.fastPasses.inc();
    this.good = { ...good, state };
    this.ack(revision);
    return { done: true };
  }

  /** The full pass: reads the kernel, plans against it, applies; whether it failed. `firewallError`: the load the fast path tried failed (see fastPass). */
  private async fullPass(revision: number, kind: PassKind, firewallError?: string): Promise<boolean> {
    const periodic = kind === 'periodic' || kind === 'retry';
    const { state, inSync } = this.desired;
    const readAt = Date.now();
    const failures: string[] = [];
    const mirrorErrors = new Map<string, string>();
    // The kernel is read first: which link is each port's tap (taps.ts) decides the firewall's
    // keys as well as the links. Loading the firewall changes no link, so the plan below still
    // starts from what is there.
    let observed: DataplaneState | undefined;
    try {
      observed = await this.dataplane.observe();
    } catch (err) {
      failures.push((err as Error).message);
    }
    this.hooks.stageDone?.(); // the listings read, parsed and dropped
    await this.resolveTaps(state, observed !== undefined);
    this.watchTaps(state, readAt);
    const links = desiredDataplane(state, mirrorErrors, this.tapOf);
    this.hooks.stageDone?.();
    let closed = new Set<string>();
    let namedTaps: string[] = [];
    if (this.config.firewall) {
      // Taps not named tap* that are, or are to be, in an overlay bridge: closed without a policy.
      namedTaps = [...new Set([...links.ports.keys(), ...(observed?.ports.keys() ?? [])])].filter((t) => !t.startsWith('tap')).sort();
      const wanted = this.render(state, namedTaps);
      // Loaded when it changed, and by every periodic pass even when it did not: given the text
      // it loaded last, the dataplane reads its tables back and reloads only when they drifted
      // (one cheap read otherwise). Not on every delta: markers come up to 4 times a second.
      if (firewallError !== undefined) {
        failures.push(`firewall: ${firewallError}`);
      } else if (this.repairDue || wanted.text !== this.inForce?.text) {
        try {
          await this.dataplane.applyFirewall(wanted);
          this.repairDue = false;
        } catch (err) {
          failures.push(`firewall: ${(err as Error).message}`);
        }
      }
      this.inForce = this.dataplane.firewallInForce();
      this.hooks.stageDone?.(); // the render's and the drift check's
      closed = closedPorts(links, wanted, this.inForce);
      for (const tap of closed) {
        links.ports.delete(tap);
      }
    }
    let linked = false;
    let mirrorsChanged = false;
    let tapFailures: ReadonlyMap<string, string> = new Map();
    // Without a reading of the kernel (its failure is already said) nothing is planned.
    if (observed) {
      try {
        const plan = planChanges(links, observed, inSync, closed);
        if (plan.length) {
          await this.dataplane.apply(plan, observed); // from what observe read: one kernel read per pass
          tapFailures = this.dataplane.portFailures?.() ?? tapFailures;
          if (kind === 'periodic') {
            this.linkDriftRepairs.inc(plan.length);
          }
          mirrorsChanged = plan.some((s) => s.op.includes('mirror') || s.op.includes('analyzer'));
        }
        linked = true;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    if (linked) {
      await this.hooks.linked();
      if (mirrorsChanged || periodic) {
        await this.reportMirrors(links, mirrorsChanged ? undefined : observed, mirrorErrors);
      }
    }
    if (observed) {
      this.reportHost(periodic);
    }
    if (failures.length) {
      this.counts.nacks++;
      const error = failures.join('; ');
      this.logger.warn(`could not program revision ${revision}${closed.size ? ` (${closed.size} port(s) kept closed)` : ''}: ${error}`, { event: 'nack', revision, portsKeptClosed: closed.size, error });
      this.hooks.report(revision, error);
      this.scheduleRetry();
      return true;
    }
    this.failing = false;
    this.portsChanged(revision, failedPorts(state, tapFailures, this.tapOf, this.unresolvedTaps()));
    if (linked && inSync && closed.size === 0 && this.portsFailed.length === 0) {
      this.good = { state, taps: this.taps, namedTaps };
    }
    if (this.portsFailed.length > 0) {
      this.scheduleRetry(false);
    } else {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.retryBackoff.reset();
    }
    this.ack(revision);
    return false;
  }

  /** Acks `revision` with the ports not in place, once the state is whole (a restored one is not acked). */
  private ack(revision: number): void {
    const { state, inSync } = this.desired;
    if (state.epoch && inSync && this.hooks.report(revision, undefined, this.portsFailed)) {
      this.counts.acks++;
      this.ackedRevision = revision;
    }
  }

  /** Keeps the ports a pass could not put in place; logs each one that starts failing (or fails otherwise), and each one back in place. */
  private portsChanged(revision: number, now: PortFailure[]): void {
    const before = new Map(this.portsFailed.map((f) => [f.portId, f.reason]));
    for (const { portId, reason } of now) {
      if (before.get(portId) !== reason) {
        this.logger.warn(`port ${portId} not programmed at revision ${revision}, kept closed: ${reason}`, { event: 'port-nack', revision, portId, error: reason });
      }
      before.delete(portId);
    }
    for (const portId of before.keys()) {
      if (this.desired.state.ports.has(portId!)) {
        this.logger.info(`port ${portId} programmed at revision ${revision}`, { event: 'port-ack', revision, portId });
      }
    }
    this.portsFailed = now;
  }

  /** A pass that also checks the firewall in force for drift, and reports the mirror counters. */
  private repair(kind: 'periodic' | 'retry'): Promise<void> {
    this.repairDue = true;
    return this.realize(this.desired.state.revision, kind);
  }

  /**
   * Sends the mirror taps' counters, read after the pass (`observed` when the pass changed no
   * mirror), when the span has mirror taps or had some at the last report. Sink problems have
   * no tap to go with: they are logged, once each.
   */
  private async reportMirrors(desired: DataplaneState, observed: DataplaneState | undefined, errors: Map<string, string>): Promise<void> {
    const sinkProblems = [...errors].filter(([key]) => !key.includes('/')).map(([session, error]) => `mirror sink of session ${session}: ${error}`).join('; ');
    if (sinkProblems && sinkProblems !== this.sinkProblems) {
      this.logger.warn(sinkProblems);
    }
    this.sinkProblems = sinkProblems;
    const ids = [...this.desired.state.mirrors.keys()];
    if (!this.counters.enabled || (ids.length === 0 && this.counters.lastWas(NO_MIRROR_TAPS))) {
      return;
    }
    let now: DataplaneState;
    try {
      now = observed ?? (await this.dataplane.observe());
    } catch (err) {
      this.logger.warn(`mirror counters: ${(err as Error).message}`);
      return;
    }
    this.counters.offer(mirrorCounters(ids, desired, now, errors, this.dataplane.mirrorFailures?.()), ids.length ? 'taps' : NO_MIRROR_TAPS, ids.length > 0);
  }

  /**
   * The inventory changed (a collection finished): sends the host observation again now, with
   * the taps and bridges of the last observe, rather than at the next pass. Nothing before the
   * first observe (the first pass sends it).
   */
  inventoryChanged(): void {
    if (!this.stopped) {
      this.reportHost(false);
    }
  }

  /** Sends the host observation of the last observe when it changed, and every HOST_OBSERVATION_EVERY-th periodic pass. */
  private reportHost(periodic: boolean): void {
    const kernel = this.observation.enabled ? this.dataplane.observeHost?.() : undefined;
    if (!kernel) {
      return;
    }
    const observation = hostObservation(this.desired.state, kernel, this.hooks.inventory?.(), this.tapOf);
    const due = periodic && ++this.periodicPasses % HOST_OBSERVATION_EVERY === 0;
    this.observation.offer(observation, JSON.stringify(observation), due);
  }

  /**
   * The whole firewall of the desired state, rendered (each tap's digest counts its segment's
   * zone). A revision marker changes nothing: the desired state keeps its maps (deltas copy them,
   * snapshots make new ones), so the last render is reused rather than made again 4 times a second.
   */
  private render(state: DesiredState, namedTaps: string[]): FirewallRuleset {
    const { policies, members, ports, segments } = state;
    const taps = this.taps;
    const last = this.rendered;
    const namedKey = namedTaps.join(' ');
    if (last && last.policies === policies && last.members === members && last.ports === ports && last.segments === segments && last.taps === taps && last.namedTaps === namedKey) {
      return last.firewall;
    }
    // The render looks up the ports with a policy only (1,000 of the 11,000 at the bench's size).
    const portVnis = new Map<string, number>();
    for (const { portId } of policies.values()) {
      const port = ports.get(portId);
      const vni = port && segments.get(port.segmentId)?.vni;
      if (vni !== undefined) {
        portVnis.set(portId, vni);
      }
    }
    // The conntrack mode was resolved at start (main.ts); `auto` is left only on the memory
    // dataplane, which loads nothing.
    // A port without a tap gets no rules: its tap, if it has one after all, is closed.
    const firewall = renderFirewall({
      policies: [...policies.values()].filter((p) => this.tapOf(p.portId) !== undefined),
      members: [...members.values()],
      tapOf: (portId) => this.tapOf(portId) ?? tapName(portId),
      vnis: [...segments.values()].map((s) => s.vni),
      conntrack: this.config.conntrack === 'br_netfilter' ? 'br_netfilter' : 'bridge',
      portVnis,
      namedTaps,
    });
    this.rendered = { policies, members, ports, segments, taps, namedTaps: namedKey, firewall };
    return firewall;
  }

  /** The local ports the last resolution left without a tap, with why (port id -> problem). */
  private unresolvedTaps(): Map<string, string> {
    return new Map([...this.taps].flatMap(([portId, c]) => ('problem' in c ? [[portId, `no tap: ${c.problem}`] as const] : [])));
  }

  /**
   * A port's tap as last resolved (taps.ts); undefined when it has none (a problem, logged). A
   * port that is not local (not resolved) is named from its id, as before any resolution.
   */
  readonly tapOf = (portId: string): string | undefined => {
    const choice = this.taps.get(portId);
    return choice === undefined ? tapName(portId) : 'tap' in choice ? choice.tap : undefined;
  };

  /**
   * Resolves the local ports' taps: by the dataplane, from the links it just read (`fresh`; kept
   * as they were when the kernel could not be read), or, for a dataplane that reads no links,
   * their given or port-id names. Logs the ports left without a tap when that changes.
   */
  private async resolveTaps(state: DesiredState, fresh: boolean): Promise<void> {
    const claims: TapClaim[] = [...state.ports.values()].filter((p) => isLocal(p, state.hostId)).map((p) => ({ portId: p.id, mac: p.mac, tapName: p.tapName }));
    let taps: Map<string, TapChoice>;
    if (!this.dataplane.resolveTaps) {
      taps = resolveTaps(claims, undefined);
    } else if (!fresh) {
      return;
    } else {
      try {
        taps = await this.dataplane.resolveTaps(claims);
      } catch (err) {
        this.logger.warn(`could not find the ports' taps: ${(err as Error).message}`);
        return;
      }
    }
    const entries = [...taps].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const key = JSON.stringify(entries);
    if (key !== this.tapsKey) {
      // Say which link was taken for a port when it was not by the port-id name (the operator's "which tap is this VM's?").
      for (const [portId, c] of entries) {
        const was = this.taps.get(portId);
        if ('tap' in c && (c.by === 'MAC' || c.by === 'tapName') && !(was && 'tap' in was && was.tap === c.tap && was.by === c.by)) {
          this.logger.info(`port ${portId}: its tap is ${c.tap} (by ${c.by})`, { event: 'tap-found', portId, tap: c.tap, by: c.by });
        }
      }
      this.taps = taps;
      this.tapsKey = key;
    }
    const problems = entries.flatMap(([portId, c]) => ('problem' in c ? [`port ${portId}: ${c.problem}`] : [])).join('; ');
    if (problems && problems !== this.tapProblems) {
      this.logger.warn(`ports kept closed, without a tap: ${problems}`, { event: 'tap-unresolved' });
    }
    this.tapProblems = problems;
  }

  /**
   * Has the dataplane say when the tap of a local port that is not there yet shows up (its
   * name, or the MAC libvirt gives it unless the port names its tap), then runs a pass at once:
   * the hypervisor creates an incoming VM's tap after the prepare, and the VM may resume within
   * a second, well before the retry of the ports not in place (whose backoff grows to
   * OVERLAY_BACKOFF_MAX_MS). `readAt`: when this pass read the links (a tap that appeared since
   * counts). At most one such pass is queued.
   */
  private watchTaps(state: DesiredState, readAt: number): void {
    if (!this.dataplane.watchTaps) {
      return;
    }
    const names = new Set<string>();
    const macs = new Set<string>();
    for (const port of state.ports.values()) {
      const choice = isLocal(port, state.hostId) ? this.taps.get(port.id) : undefined;
      if (choice && 'tap' in choice && choice.by === 'pending') {
        names.add(choice.tap);
        if (!port.tapName) {
          macs.add(hostSideMac(port.mac));
        }
      }
    }
    this.dataplane.watchTaps({ names, macs }, readAt, () => {
      if (this.tapPassQueued || this.stopped) {
        return;
      }
      this.tapPassQueued = true;
      this.enqueue(() => {
        this.tapPassQueued = false;
        return this.realize(this.desired.state.revision, 'retry');
      });
    });
  }

  /** After a failed pass (`whole`), or one that left ports out: one retry, after a backoff delay that grows with each failure in a row. */
  private scheduleRetry(whole = true): void {
    this.failing = whole;
    if (this.retryTimer || this.stopped) {
      return;
    }
    const delay = this.retryBackoff.next();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.enqueue(() => this.queuedPass(() => this.repair('retry')));
    }, delay);
  }

  /** A pass of the work queue, then `passDone`, whether it failed or not. */
  private async queuedPass(pass: () => Promise<unknown>): Promise<void> {
    try {
      await pass();
    } finally {
      this.hooks.passDone?.();
    }
  }
}
