import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { SpanReplay } from '../desired-state/span-index';
import { ChangeLogReader } from '../store/change-log-reader';
import { MaterializedView } from '../store/materialized-view';
import { copyViewState, rewindChange } from '../store/view-state';
import { AgentStatusRepository, type AgentLastError } from './agent-status.repository';
import { HostObservationRepository, observedStatus, type HostObservedStatus } from './host-observation.repository';
import { AckRecorder } from './ack-recorder';
import { localHostsOf, type Port } from '../model/port';
import type { HostPortFailures, RealizationError } from './port-failures';
import { SpanFeed } from './span-feed';

export interface HostRealization {
  connected: boolean;
  appliedRevision: number;
  /** Revisions the host is behind the current one, or 0 when it holds everything its span needs. */
  lag: number;
}

/** A host's agent as the API shows it: its realization, its last NACK (null when none, or since cleared) and what it last observed of the host (null when it never reported). */
export interface HostAgentStatus extends HostRealization {
  lastError: AgentLastError | null;
  observed: HostObservedStatus | null;
}

const POLL_MS = 10;

/** Change records read per XRANGE when the hosts a revision changed are computed again. */
const REPLAY_PAGE = 128;
/** The most records such a computation reads back (from the view's revision down to the one asked); past it, every host counts. */
export const MAX_REPLAY_RECORDS = 100_000;
/** Revisions computed again that are kept (the least recently asked go first). */
const REPLAYED_KEPT = 256;

/** How a wait for a write's realization ended. */
export interface Realization {
  /** Every host whose span the write changed has acknowledged it (the ports in `failures` aside). */
  realized: boolean;
  /** The hosts whose acknowledgement was still missing (sorted); empty when realized. */
  pendingHostIds: string[];
  /** The write's ports that a host they are local to acknowledged the write without (it could not program them), by port id. */
  failures: Map<string, RealizationError>;
}

/** The port fields that say which hosts a port is local to. */
type LocalPort = Pick<Port, 'id' | 'hostId' | 'migration'>;

/**
 * Whether desired state has reached the hosts. Acknowledgements come from Redis (and from the
 * streams on this replica, which Redis learns a moment later), so any replica answers for any host.
 *
 * - A host is in sync when its acknowledged revision reaches the last change to its span.
 * - A port is realized (`portsRealized`, what a port read shows) when every host whose span
 *   holds the port's entries is in sync, and no host it is local to (its host, its migration's
 *   destination) said at its last ack that it could not program it (`realizationErrors`).
 * - A write is realized (`waitForRevision`, what `?wait=realized` waits for) when the view has
 *   applied its revision R and every host whose span R changed (that still exists) has
 *   acknowledged R or later: the hosts that gain, lose or see a change of the port, its segment,
 *   its policy or the members of its groups, the hosts that lose them included. Which hosts those
 *   are comes from the SpanFeed for recent revisions, and is otherwise computed again from the
 *   change log (`changedHosts`).
 */
@Injectable()
export class RealizationService implements OnModuleDestroy {
  /** Set at shutdown: waits end at once (answering what they know), so the HTTP server can close. */
  private closing = false;

  constructor(
    private readonly view: MaterializedView,
    private readonly feed: SpanFeed,
    private readonly status: AgentStatusRepository,
    private readonly recorder: AckRecorder,
    private readonly changeLog: ChangeLogReader,
    private readonly observations: HostObservationRepository,
  ) {}

  async hosts(hostIds: string[]): Promise<Map<string, HostRealization>> {
    const statuses = await this.status.status(hostIds);
    const out = new Map<string, HostRealization>();
    for (const id of hostIds) {
      // Acks to this replica count at once: the AckRecorder writes them to Redis a moment later.
      const stored = statuses.get(id)!;
      const local = this.recorder.appliedHere(id);
      const connected = stored.connected || local !== undefined;
      const appliedRevision = Math.max(stored.appliedRevision, local ?? 0);
      const inSync = appliedRevision >= this.feed.requiredRevision(id);
      out.set(id, { connected, appliedRevision, lag: inSync ? 0 : Math.max(0, this.view.revision - appliedRevision) });
    }
    return out;
  }

  /** `hosts` plus each host's last error and observation, for the host API (read from Redis: any replica answers). */
  async hostStatus(hostIds: string[]): Promise<Map<string, HostAgentStatus>> {
    const [realization, errors, observations] = await Promise.all([this.hosts(hostIds), this.status.lastErrors(hostIds), this.observations.read(hostIds)]);
    const view = this.view.current;
    return new Map(
      hostIds.map((id) => {
        const observation = observations.get(id);
        return [id, { ...realization.get(id)!, lastError: errors.get(id) ?? null, observed: observation ? observedStatus(observation, view) : null }];
      }),
    );
  }

  async portsRealized(ports: LocalPort[]): Promise<Map<string, { realized: boolean; realizationError: RealizationError | null }>> {
    const needs = new Map(ports.map((p) => [p.id, this.feed.hostsNeedingPort(p.id)]));
    const hostIds = [...new Set([...needs.values()].flat())];
    const [hosts, errors] = await Promise.all([this.hosts(hostIds), this.realizationErrors(ports)]);
    return new Map(
      ports.map((p) => {
        const realizationError = errors.get(p.id) ?? null;
        return [p.id, { realized: realizationError === null && needs.get(p.id)!.every((h) => hosts.get(h)!.lag === 0), realizationError }];
      }),
    );
  }

  /**
   * Each host's failed ports as its agent last acknowledged them: said on a stream here (the
   * moment it arrived), else as Redis holds them (written with the acks, in the same script).
   */
  async failedPorts(hostIds: string[]): Promise<Map<string, HostPortFailures>> {
    const out = new Map<string, HostPortFailures>();
    const elsewhere: string[] = [];
    for (const id of new Set(hostIds)) {
      const here = this.recorder.failedPortsHere(id);
      if (here) {
        if (Object.keys(here.ports).length) {
          out.set(id, here);
        }
      } else {
        elsewhere.push(id);
      }
    }
    for (const [id, record] of await this.status.portFailures(elsewhere)) {
      out.set(id, record);
    }
    return out;
  }

  /**
   * The ports (of these) a host they are local to (their host, their migration's destination)
   * said at its last ack it could not program, by port id; with `acknowledged`, only hosts that
   * have acknowledged that revision count (what they said is about it).
   */
  async realizationErrors(ports: LocalPort[], acknowledged = 0): Promise<Map<string, RealizationError>> {
    const hostIds = [...new Set(ports.flatMap((p) => localHostsOf(p)))];
    const out = new Map<string, RealizationError>();
    if (!hostIds.length) {
      return out;
    }
    const failed = await this.failedPorts(hostIds);
    if (!failed.size) {
      return out;
    }
    const applied = acknowledged > 0 ? await this.hosts([...failed.keys()]) : undefined;
    for (const port of ports) {
      for (const hostId of localHostsOf(port)) {
        const entry = failed.get(hostId)?.ports[port.id];
        if (entry && !out.has(port.id) && (!applied || applied.get(hostId)!.appliedRevision >= acknowledged)) {
          out.set(port.id, { hostId, reason: entry.reason, since: entry.since });
        }
      }
    }
    return out;
  }

  /**
   * The hosts whose span `revision` changed, as the SpanFeed computed them when the view applied
   * it; for a revision it no longer holds, computed again from the change log (one at a time,
   * the last REPLAYED_KEPT kept). When the log no longer holds the records from `revision` to the
   * view's, or there are more than MAX_REPLAY_RECORDS of them: every host, which may wait for
   * more hosts than the write changed, never for fewer. Call once the view has applied `revision`.
   */
  async changedHosts(revision: number): Promise<string[]> {
    const known = this.feed.hostsChangedAt(revision) ?? (await this.replayed(revision));
    return known ?? [...this.view.current.hosts.keys()];
  }

  /** Of these hosts, those that still exist and have not acknowledged `revision` yet. */
  async unapplied(hostIds: string[], revision: number): Promise<string[]> {
    const present = hostIds.filter((id) => this.view.current.hosts.has(id));
    if (!present.length) {
      return [];
    }
    const hosts = await this.hosts(present);
    return present.filter((id) => hosts.get(id)!.appliedRevision < revision);
  }

  /**
   * Waits until the write that made `revision` is realized (see the class comment), or
   * `timeoutMs` passed. Hosts found to have applied it are not asked again; `pendingHostIds`
   * are those that had not when the wait ended (empty when this replica's view had not even
   * applied the revision: which hosts it changes is not known then). With the write's `ports`,
   * it also ends as soon as a host one of them is local to acknowledged the revision without it
   * (`failures`: it could not program it, so waiting longer would not realize it).
   */
  async waitForRevision(revision: number, timeoutMs: number, ports: LocalPort[] = []): Promise<Realization> {
    // Pinned before the view applies it: what it changes stays known for as long as this waits.
    const unpin = this.feed.pin(revision);
    try {
      let pending: string[] | undefined;
      let failures = new Map<string, RealizationError>();
      await this.waitFor(
        async () => {
          if (this.view.revision < revision) {
            return false;
          }
          pending = await this.unapplied(pending ?? (await this.changedHosts(revision)), revision);
          failures = ports.length ? await this.realizationErrors(ports, revision) : failures;
          return pending.length === 0 || failures.size > 0;
        },
        revision,
        timeoutMs,
      );
      const realized = pending !== undefined && pending.length === 0;
      return { realized, pendingHostIds: realized ? [] : [...(pending ?? [])].sort(), failures };
    } finally {
      unpin();
    }
  }

  /** Whether every host has applied `revision` (not whether it is in sync: it may lag on later changes). */
  async hostsApplied(hostIds: string[], revision: number): Promise<boolean> {
    const hosts = await this.hosts(hostIds);
    return hostIds.every((id) => hosts.get(id)!.appliedRevision >= revision);
  }

  /** Waits until every host has applied `revision`, or `timeoutMs` passed; true if they have. */
  waitForHosts(hostIds: string[], revision: number, timeoutMs: number): Promise<boolean> {
    return this.waitFor(() => this.hostsApplied(hostIds, revision), revision, timeoutMs);
  }

  onModuleDestroy(): void {
    this.closing = true;
  }

  private readonly replayedHosts = new Map<number, string[] | null>();
  private readonly replayWanted = new Set<number>();
  private replaying?: Promise<void>;

  /** The hosts `revision` changed, computed again from the change log; null when it cannot be. */
  private async replayed(revision: number): Promise<string[] | null> {
    for (;;) {
      const kept = this.replayedHosts.get(revision);
      if (kept !== undefined) {
        // Most recently asked last: the first entry is the one to drop.
        this.replayedHosts.delete(revision);
        this.replayedHosts.set(revision, kept);
        return kept;
      }
      // One computation at a time, for every revision asked meanwhile: each costs an index of the whole state.
      this.replayWanted.add(revision);
      this.replaying ??= this.replayWantedRevisions().finally(() => (this.replaying = undefined));
      await this.replaying;
    }
  }

  private async replayWantedRevisions(): Promise<void> {
    const wanted = [...this.replayWanted].sort((a, b) => a - b);
    this.replayWanted.clear();
    const found = await this.replay(wanted);
    for (const revision of wanted) {
      this.replayedHosts.set(revision, found.get(revision) ?? null);
      if (this.replayedHosts.size > REPLAYED_KEPT) {
        this.replayedHosts.delete(this.replayedHosts.keys().next().value!);
      }
    }
  }

  /**
   * For each wanted revision the change log still covers: a copy of the view is rewound to just
   * before the oldest (records read newest first, a page at a time), and the records up to the
   * newest are replayed through the span computation the SpanFeed runs (SpanReplay).
   */
  private async replay(wanted: number[]): Promise<Map<number, string[]>> {
    const found = new Map<number, string[]>();
    const state = copyViewState(this.view.current);
    const usable = wanted.filter((r) => r >= 1 && r <= state.revision && state.revision - r < MAX_REPLAY_RECORDS);
    if (!usable.length) {
      return found;
    }
    const from = usable[0];
    const to = usable[usable.length - 1];
    for (let high = state.revision; high >= from; ) {
      const low = Math.max(from, high - REPLAY_PAGE + 1);
      const records = await this.changeLog.read(low - 1, high);
      if (!records) {
        return found; // trimmed past the revisions wanted
      }
      for (let i = records.length - 1; i >= 0; i--) {
        rewindChange(state, records[i]);
      }
      high = low - 1;
    }
    const replay = new SpanReplay(state);
    const want = new Set(usable);
    for (let low = from; low <= to; ) {
      const high = Math.min(to, low + REPLAY_PAGE - 1);
      const records = await this.changeLog.read(low - 1, high);
      if (!records) {
        return found;
      }
      for (const record of records) {
        const hosts = replay.apply(record);
        if (want.has(record.revision)) {
          found.set(record.revision, hosts);
        }
      }
      low = high + 1;
    }
    return found;
  }

  /** Waits until the view has applied `revision` and `check` holds, or `timeoutMs` passed; the last check's answer. */
  private async waitFor(check: () => Promise<boolean>, revision: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    await this.view.waitForRevision(revision, timeoutMs).catch(() => undefined);
    for (;;) {
      const ok = await check();
      if (ok || this.closing || Date.now() >= deadline) {
        return ok;
      }
      // Woken by a local ack, or polled for acks that reach Redis through other replicas.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          off();
          resolve();
        };
        const timer = setTimeout(done, Math.min(POLL_MS * 5, Math.max(0, deadline - Date.now())));
        const off = this.recorder.on('acked', done);
      });
    }
  }
}
