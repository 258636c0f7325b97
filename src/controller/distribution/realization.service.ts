import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { MaterializedView } from '../store/materialized-view';
import { AgentStatusRepository, type AgentLastError } from './agent-status.repository';
import { SpanFeed } from './span-feed';
import { SyncServer } from './sync.server';

export interface HostRealization {
  connected: boolean;
  appliedRevision: number;
  /** Revisions the host is behind the current one, or 0 when it holds everything its span needs. */
  lag: number;
}

/** A host's agent as the API shows it: its realization and its last NACK (null when none, or since cleared). */
export interface HostAgentStatus extends HostRealization {
  lastError: AgentLastError | null;
}

const POLL_MS = 10;

/**
 * Whether desired state has reached the hosts. A host is in sync when its acknowledged revision
 * reaches the last change to its span; a port is realized when every host whose span holds the
 * port's entries is. Acknowledgements come from Redis, so any replica answers for any host.
 */
@Injectable()
export class RealizationService implements OnModuleDestroy {
  /** Set at shutdown: waits end at once (answering what they know), so the HTTP server can close. */
  private closing = false;

  constructor(
    private readonly view: MaterializedView,
    private readonly feed: SpanFeed,
    private readonly status: AgentStatusRepository,
    private readonly sync: SyncServer,
  ) {}

  async hosts(hostIds: string[]): Promise<Map<string, HostRealization>> {
    const statuses = await this.status.status(hostIds);
    const out = new Map<string, HostRealization>();
    for (const id of hostIds) {
      // Acks to this replica count at once: Redis learns them up to APPLIED_FLUSH_MS later.
      const stored = statuses.get(id)!;
      const local = this.sync.session(id);
      const live = local !== undefined && !local.isClosed;
      const connected = stored.connected || live;
      const appliedRevision = Math.max(stored.appliedRevision, live ? local.appliedRevision : 0);
      const inSync = appliedRevision >= this.feed.requiredRevision(id);
      out.set(id, { connected, appliedRevision, lag: inSync ? 0 : Math.max(0, this.view.revision - appliedRevision) });
    }
    return out;
  }

  /** `hosts` plus each host's last error, for the host API (read from Redis: any replica answers). */
  async hostStatus(hostIds: string[]): Promise<Map<string, HostAgentStatus>> {
    const [realization, errors] = await Promise.all([this.hosts(hostIds), this.status.lastErrors(hostIds)]);
    return new Map(hostIds.map((id) => [id, { ...realization.get(id)!, lastError: errors.get(id) ?? null }]));
  }

  async portsRealized(portIds: string[]): Promise<Map<string, boolean>> {
    const needs = new Map(portIds.map((id) => [id, this.feed.hostsNeedingPort(id)]));
    const hostIds = [...new Set([...needs.values()].flat())];
    const hosts = await this.hosts(hostIds);
    return new Map(portIds.map((id) => [id, needs.get(id)!.every((h) => hosts.get(h)!.lag === 0)]));
  }

  /**
   * Waits until the view has applied `revision` and every port is realized, or `timeoutMs`
   * passed. Returns the final realization of each port.
   */
  async waitForPorts(portIds: string[], revision: number, timeoutMs: number): Promise<Map<string, boolean>> {
    let realized = new Map<string, boolean>();
    await this.waitFor(
      async () => {
        realized = await this.portsRealized(portIds);
        return [...realized.values()].every(Boolean);
      },
      revision,
      timeoutMs,
    );
    return realized;
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
          this.sync.acks.removeListener('acked', done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(POLL_MS * 5, Math.max(0, deadline - Date.now())));
        this.sync.acks.once('acked', done);
      });
    }
  }
}
