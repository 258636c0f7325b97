import { Injectable } from '@nestjs/common';
import { AgentStatusRepository } from '../distribution/agent-status.repository';
import { HostObservationRepository } from '../distribution/host-observation.repository';
import { RealizationService } from '../distribution/realization.service';
import { MaterializedView } from '../store/materialized-view';
import { runAuditInTurns, type AuditReport } from './audit';
import { evidenceOf, type AgentEvidence, type HostEvidence } from './audit.types';
import { FindingHistory, withSince, type FindingFilter, type FindingPage } from './finding-history';

/** How long the audit waits for this replica's view to catch up with Redis. */
const VIEW_CATCH_UP_MS = 5_000;

/**
 * The live audit: this replica's view caught up with Redis (so a write just acknowledged by any
 * replica is audited), every host's stored observation (one MGET) and its agent's status, then
 * the pure checks (audit.ts). Each evaluation is recorded in the findings' history, which gives
 * each finding the time it opened (`since`).
 */
@Injectable()
export class AuditService {
  constructor(
    private readonly view: MaterializedView,
    private readonly observations: HostObservationRepository,
    private readonly realization: RealizationService,
    private readonly status: AgentStatusRepository,
    private readonly history: FindingHistory,
  ) {}

  /** Evaluates the audit now and records it in the history. */
  async audit(): Promise<AuditReport> {
    // The sequence number first: an evaluation that read older state must be the one with the older number.
    const seq = await this.history.nextEvaluation();
    const report = await this.evaluate();
    return withSince(report, await this.history.record(report, seq));
  }

  findings(filter: FindingFilter, limit: number, cursor?: string): Promise<FindingPage> {
    return this.history.list(filter, limit, cursor);
  }

  private async evaluate(): Promise<AuditReport> {
    await this.view.catchUp(VIEW_CATCH_UP_MS);
    const view = this.view.current;
    const hostIds = [...view.hosts.keys()];
    const [stored, realized, errors] = await Promise.all([this.observations.read(hostIds), this.realization.hosts(hostIds), this.status.lastErrors(hostIds)]);
    const evidence = new Map<string, HostEvidence>([...stored.entries()].map(([id, o]) => [id, evidenceOf(o)]));
    const agents = new Map<string, AgentEvidence>(
      hostIds.map((id) => {
        const r = realized.get(id)!;
        const error = errors.get(id);
        return [id, { connected: r.connected, appliedRevision: r.appliedRevision, lag: r.lag, lastError: error ? `${error.error} (revision ${error.revision}, at ${error.at})` : null }];
      }),
    );
    return runAuditInTurns({ view, evidence, agents }, new Date().toISOString());
  }
}
