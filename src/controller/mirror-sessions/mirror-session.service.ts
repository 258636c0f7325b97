import type { Actor } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import { ErrorCode, notFound, OverlayError } from '../errors';
import { type ResourceId } from '../../common/values';
import { asVni, newId } from '../model/value-parsers';
import type { MirrorSession } from '../model/mirror-session';
import type { Port } from '../model/port';
import { AgentStatusRepository, type AgentLastError } from '../distribution/agent-status.repository';
import { MirrorCountersRepository, type MirrorTapCounters } from '../distribution/mirror-counters.repository';
import { PortRepository } from '../ports/port.repository';
import type { Page, PageRequest } from '../store/page';
import { MirrorSessionRepository, VNI_PLACEHOLDER } from './mirror-session.repository';
import { normalizeFilter, normalizeSink, normalizeSources } from './mirror-session.rules';
import type { CreateMirrorSession, UpdateMirrorSession } from './mirror-session.schemas';

/**
 * Where one source stands: `active` (programmed as far as the controller knows), `re-homing`
 * (its port is being live-migrated: the copies follow it), `broken` (its port or the sink port
 * is unbound, or the host's agent reported an error: `lastError`), `disabled` (the session is;
 * nothing is programmed anywhere).
 */
export type MirrorSourceState = 'active' | 're-homing' | 'broken' | 'disabled';

export interface MirrorSourceStatus {
  portId: string;
  /** The host the port is bound to; null when unbound. */
  hostId: string | null;
  state: MirrorSourceState;
  /** The last revision the host's agent acknowledged; null when none (or no host). */
  realizedRevision: number | null;
  /** What the host's agent last reported of this source's copies (0 when it reported none). */
  packets: number;
  bytes: number;
  lastError: string | null;
}

export type MirrorSessionWithStatus = MirrorSession & { status: MirrorSourceStatus[] };

/** The id the agents report a source's copies under (MirrorTap id). */
const tapId = (sessionId: string, portId: string): string => `${sessionId}/${portId}`;

@Injectable()
export class MirrorSessionService {
  constructor(
    private readonly sessions: MirrorSessionRepository,
    private readonly ports: PortRepository,
    private readonly agents: AgentStatusRepository,
    private readonly counters: MirrorCountersRepository,
  ) {}

  /** The store checks sources, sink and overlaps, and allocates the VNI (the vxlan sink's, if it names one). */
  async create(input: CreateMirrorSession, actor: Actor): Promise<MirrorSession> {
    const now = new Date().toISOString();
    const sources = normalizeSources(input.sources);
    const session: MirrorSession = {
      id: newId(),
      tenantId: input.tenantId,
      name: input.name,
      enabled: input.enabled ?? true,
      sources,
      sink: normalizeSink(input.sink, sources, VNI_PLACEHOLDER),
      filter: normalizeFilter(input.filter),
      snapLength: input.snapLength ?? null,
      vni: VNI_PLACEHOLDER,
      createdAt: now,
      updatedAt: now,
    };
    const pinned = input.sink.type === 'vxlan' && input.sink.vni !== undefined ? asVni(input.sink.vni) : undefined;
    return this.sessions.create(session, pinned, actor);
  }

  /** PATCH: only the fields given; sources and sink replace the current ones. Retries when the session changed concurrently. */
  async update(id: ResourceId, input: UpdateMirrorSession, actor: Actor): Promise<MirrorSession> {
    for (;;) {
      const current = await this.read(id);
      if (input.sink?.type === 'vxlan' && input.sink.vni !== undefined && input.sink.vni !== current.vni) {
        throw new OverlayError(ErrorCode.InvalidValue, `sink.vni: the session's VNI is ${current.vni} and never changes; leave vni out, or delete the session and create one with that VNI`, { field: 'sink.vni' });
      }
      const sources = input.sources ? normalizeSources(input.sources) : current.sources;
      const next: MirrorSession = {
        ...current,
        name: input.name ?? current.name,
        enabled: input.enabled ?? current.enabled,
        sources,
        sink: normalizeSink(input.sink ?? current.sink, sources, current.vni, input.sink !== undefined),
        filter: input.filter === undefined ? current.filter : normalizeFilter(input.filter),
        snapLength: input.snapLength === undefined ? current.snapLength : input.snapLength,
        updatedAt: new Date().toISOString(),
      };
      if ((await this.sessions.replace(current, next, actor)) >= 0) {
        return next;
      }
    }
  }

  async get(id: ResourceId): Promise<MirrorSessionWithStatus> {
    return (await this.withStatus([await this.read(id)]))[0];
  }

  async list(page: PageRequest, tenantId?: ResourceId): Promise<Page<MirrorSessionWithStatus>> {
    const result = await this.sessions.list(page, tenantId);
    return { ...result, items: await this.withStatus(result.items) };
  }

  /** Its VNI goes into quarantine. */
  async delete(id: ResourceId, actor: Actor): Promise<void> {
    await this.sessions.delete(id, actor);
  }

  private async read(id: ResourceId): Promise<MirrorSession> {
    const session = await this.sessions.get(id);
    if (!session) {
      throw notFound('mirrorSession', id);
    }
    return session;
  }

  /**
   * Each source's status (see MirrorSourceStatus), for a page of sessions at once: one HMGET for
   * every port they name, two for the agents of their hosts (acks, last NACKs), and one per host
   * for the counters its agent reported.
   */
  private async withStatus(sessions: MirrorSession[]): Promise<MirrorSessionWithStatus[]> {
    const portIds = [...new Set(sessions.flatMap((s) => [...s.sources.map((x) => x.portId), ...(s.sink.type === 'port' ? [s.sink.portId] : [])]))];
    const ports = new Map((await this.ports.getMany(portIds)).map((p) => [p.id, p]));
    const tapsByHost = new Map<string, string[]>();
    for (const s of sessions) {
      for (const source of s.sources) {
        const host = ports.get(source.portId)?.hostId;
        if (host) {
          const taps = tapsByHost.get(host) ?? [];
          taps.push(tapId(s.id, source.portId));
          tapsByHost.set(host, taps);
        }
      }
    }
    const hostIds = [...tapsByHost.keys()];
    const [agents, nacks, counters] = await Promise.all([
      this.agents.status(hostIds),
      this.agents.lastErrors(hostIds),
      Promise.all(hostIds.map(async (h) => [h, await this.counters.read(h, tapsByHost.get(h)!)] as const)),
    ]);
    const countersByHost = new Map(counters);
    return sessions.map((s) => {
      const sinkPort = s.sink.type === 'port' ? ports.get(s.sink.portId) : undefined;
      const status = s.sources.map((source): MirrorSourceStatus => {
        const port = ports.get(source.portId);
        const hostId = port?.hostId ?? null;
        const applied = hostId === null ? 0 : (agents.get(hostId)?.appliedRevision ?? 0);
        const reported = hostId === null ? undefined : countersByHost.get(hostId)?.get(tapId(s.id, source.portId));
        const { state, lastError } = sourceState(s, source.portId, port, sinkPort, reported, hostId === null ? null : (nacks.get(hostId) ?? null));
        return { portId: source.portId, hostId, state, realizedRevision: applied > 0 ? applied : null, packets: reported?.packets ?? 0, bytes: reported?.bytes ?? 0, lastError };
      });
      return { ...s, status };
    });
  }
}

/** One source's state, the first reason that applies: disabled, then what breaks it, then a migration. */
export function sourceState(
  session: MirrorSession,
  portId: string,
  port: Port | undefined,
  sinkPort: Port | undefined,
  reported: MirrorTapCounters | undefined,
  nack: AgentLastError | null,
): { state: MirrorSourceState; lastError: string | null } {
  if (!session.enabled) {
    return { state: 'disabled', lastError: null };
  }
  if (!port || port.hostId === null) {
    return { state: 'broken', lastError: `port ${portId} is not bound to a host` };
  }
  if (session.sink.type === 'port' && (!sinkPort || sinkPort.hostId === null)) {
    return { state: 'broken', lastError: `the sink port ${session.sink.portId} is not bound to a host` };
  }
  if (reported?.error) {
    return { state: 'broken', lastError: reported.error };
  }
  if (nack) {
    return { state: 'broken', lastError: `the agent of host ${port.hostId} failed to apply revision ${nack.revision}: ${nack.error}` };
  }
  if (port.migration) {
    return { state: 're-homing', lastError: null };
  }
  return { state: 'active', lastError: null };
}
