import type { AgentConfig } from '../config';
import type { Dataplane, FirewallRuleset } from '../dataplane/dataplane';
import { renderFirewall } from '../dataplane/linux/nftables';
import { tapName } from '../dataplane/names';
import type { Logger } from '../../common/logger';
import { Backoff } from '../sync/backoff';
import type { DesiredSource, StateChange } from '../sync/desired-state-store';
import type { DesiredState } from '../sync/state-cache';
import { closedPorts, desiredDataplane, planChanges } from './plan';

export interface ReconcileHooks {
  /** Acks `revision`, or nacks it with `error`; whether it was sent. */
  report(revision: number, error?: string): boolean;
  /** Runs after each pass that programmed the links (closed ports aside). */
  linked(): Promise<void>;
}

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
 * Passes run on the agent's work queue, one at a time; at most one periodic pass is queued.
 */
export class Reconciler {
  /** Revisions reported, for tests and logs. */
  readonly counts = { acks: 0, nacks: 0 };
  /** The ruleset the dataplane said was in force after the last pass; undefined = none. */
  private inForce?: FirewallRuleset;
  /** The last render and the desired state's maps it was made from (see `render`). */
  private rendered?: Pick<DesiredState, 'policies' | 'members' | 'ports' | 'segments'> & { firewall: FirewallRuleset };
  /** The next pass loads the firewall even when its text did not change: the dataplane checks for drift. */
  private repairDue = false;
  /** Set while the last pass failed: its retry is scheduled with backoff, and markers do not retry. */
  private failing = false;
  private retryTimer?: NodeJS.Timeout;
  private readonly retryBackoff: Backoff;
  private periodicTimer?: NodeJS.Timeout;
  private periodicQueued = false;
  private stopped = true;

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
  }

  /** Programs the state restored from disk, if any (it is not whole: nothing is swept), then repairs drift periodically. */
  async start(restored?: number): Promise<void> {
    this.stopped = false;
    if (restored !== undefined) {
      await this.realize(restored);
    }
    this.periodicTimer = setInterval(() => {
      // One periodic pass queued at a time: when a pass takes longer than the interval (a busy
      // host, a large firewall to reload) ticks would otherwise pile up in the queue, delay
      // every change behind them and hold up stop(). While a pass is failing, its retry (with
      // backoff) is the next attempt.
      if (this.periodicQueued || this.failing) {
        return;
      }
      this.periodicQueued = true;
      this.enqueue(() => {
        this.periodicQueued = false;
        return this.repair();
      });
    }, this.config.reconcileIntervalMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.periodicTimer);
  }

  /** Programs what a state change asks for. A revision marker while a pass is failing waits for the retry, which reports its revision. */
  async changed(change: Extract<StateChange, { outcome: 'replaced' | 'updated' }>): Promise<void> {
    if (change.outcome === 'updated' && change.marker && change.wasInSync && this.failing) {
      return;
    }
    await this.realize(change.revision);
  }

  /** One pass for the current desired state, reported as `revision`. */
  async realize(revision: number): Promise<void> {
    const { state, inSync } = this.desired;
    const failures: string[] = [];
    const links = desiredDataplane(state);
    let closed = new Set<string>();
    if (this.config.firewall) {
      const wanted = this.render(state);
      // Loaded when it changed, and by every periodic pass even when it did not: given the text
      // it loaded last, the dataplane reads its tables back and reloads only when they drifted
      // (one cheap read otherwise). Not on every delta: markers come up to 4 times a second.
      if (this.repairDue || wanted.text !== this.inForce?.text) {
        try {
          await this.dataplane.applyFirewall(wanted);
          this.repairDue = false;
        } catch (err) {
          failures.push(`firewall: ${(err as Error).message}`);
        }
      }
      this.inForce = this.dataplane.firewallInForce();
      closed = closedPorts(links, wanted, this.inForce);
      for (const tap of closed) {
        links.ports.delete(tap);
      }
    }
    let linked = false;
    try {
      const plan = planChanges(links, await this.dataplane.observe(), inSync, closed);
      if (plan.length) {
        await this.dataplane.apply(plan);
      }
      linked = true;
    } catch (err) {
      failures.push((err as Error).message);
    }
    if (linked) {
      await this.hooks.linked();
    }
    if (failures.length) {
      this.counts.nacks++;
      const error = failures.join('; ');
      this.logger.warn(`could not program revision ${revision}${closed.size ? ` (${closed.size} port(s) kept closed)` : ''}: ${error}`);
      this.hooks.report(revision, error);
      this.scheduleRetry();
      return;
    }
    this.failing = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryBackoff.reset();
    if (state.epoch && inSync && this.hooks.report(revision)) {
      this.counts.acks++;
    }
  }

  /** A pass that also checks the firewall in force for drift. */
  private repair(): Promise<void> {
    this.repairDue = true;
    return this.realize(this.desired.state.revision);
  }

  /**
   * The whole firewall of the desired state, rendered (each tap's digest counts its segment's
   * zone). A revision marker changes nothing: the desired state keeps its maps (deltas copy them,
   * snapshots make new ones), so the last render is reused rather than made again 4 times a second.
   */
  private render(state: DesiredState): FirewallRuleset {
    const { policies, members, ports, segments } = state;
    const last = this.rendered;
    if (last && last.policies === policies && last.members === members && last.ports === ports && last.segments === segments) {
      return last.firewall;
    }
    const portVnis = new Map<string, number>();
    for (const port of ports.values()) {
      const vni = segments.get(port.segmentId)?.vni;
      if (vni !== undefined) {
        portVnis.set(port.id, vni);
      }
    }
    // The conntrack mode was resolved at start (main.ts); `auto` is left only on the memory
    // dataplane, which loads nothing.
    const firewall = renderFirewall({
      policies: [...policies.values()],
      members: [...members.values()],
      tapOf: tapName,
      vnis: [...segments.values()].map((s) => s.vni),
      conntrack: this.config.conntrack === 'br_netfilter' ? 'br_netfilter' : 'bridge',
      portVnis,
    });
    this.rendered = { policies, members, ports, segments, firewall };
    return firewall;
  }

  /** After a failed pass: one retry, after a backoff delay that grows with each failure in a row. */
  private scheduleRetry(): void {
    this.failing = true;
    if (this.retryTimer || this.stopped) {
      return;
    }
    const delay = this.retryBackoff.next();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.enqueue(() => this.repair());
    }, delay);
  }
}
