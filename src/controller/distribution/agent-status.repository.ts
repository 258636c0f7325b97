import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { parseStreamEntry, type ChangeRecord } from '../store/change-log';
import { RedisStore } from '../store/redis-store';

// Acknowledged revisions only move forward, whichever replica reports them. A host is entered
// (at the revision its Hello claimed) as soon as it connects: from then on it holds forwarding
// state, and the VNI quarantine must wait for it.
const RECORD_APPLIED = `
for i = 3, #ARGV, 2 do
  local current = redis.call('HGET', K.agentApplied(), ARGV[i])
  if not current or tonumber(ARGV[i + 1]) > tonumber(current) then redis.call('HSET', K.agentApplied(), ARGV[i], ARGV[i + 1]) end
end
return 0
`;

export interface AgentStatus {
  connected: boolean;
  appliedRevision: number;
}

/**
 * What agents did, in Redis, so every replica sees it: the revision each host acknowledged,
 * which replica holds each host's stream (with an expiry, refreshed while the stream lives),
 * the deployment's epoch, and reads of the change log for resume.
 */
@Injectable()
export class AgentStatusRepository {
  constructor(private readonly store: RedisStore) {
    store.defineScript('overlayAgentApplied', RECORD_APPLIED);
  }

  /** The deployment's epoch, made once (SET NX): idempotent. */
  async epoch(): Promise<string> {
    const key = this.store.keys.epoch();
    await this.store.read((r) => r.set(key, randomBytes(8).toString('hex'), 'NX'));
    return (await this.store.read((r) => r.get(key)))!;
  }

  async recordApplied(applied: Map<string, number>): Promise<void> {
    if (applied.size === 0) {
      return;
    }
    const args: (string | number)[] = [];
    for (const [host, revision] of applied) {
      args.push(host, revision);
    }
    await this.store.mutate('overlayAgentApplied', args);
  }

  async claimSession(hostId: string, replicaId: string, ttlMs: number): Promise<void> {
    await this.store.read((r) => r.hset(this.store.keys.agentSessions(), hostId, `${replicaId} ${Date.now() + ttlMs}`));
  }

  async refreshSessions(hostIds: string[], replicaId: string, ttlMs: number): Promise<void> {
    if (!hostIds.length) {
      return;
    }
    const value = `${replicaId} ${Date.now() + ttlMs}`;
    await this.store.read((r) => r.hset(this.store.keys.agentSessions(), Object.fromEntries(hostIds.map((h) => [h, value]))));
  }

  /**
   * Releases the claim if it is still this replica's (a newer stream elsewhere keeps its own) and
   * `stillFree()` holds once the claim is read: a newer stream for the host on this replica makes
   * the same claim, which the release must not delete.
   */
  async releaseSession(hostId: string, replicaId: string, stillFree: () => boolean = () => true): Promise<void> {
    const key = this.store.keys.agentSessions();
    const current = await this.store.read((r) => r.hget(key, hostId));
    if (current?.startsWith(`${replicaId} `) && stillFree()) {
      await this.store.read((r) => r.hdel(key, hostId));
    }
  }

  async status(hostIds: string[]): Promise<Map<string, AgentStatus>> {
    const out = new Map<string, AgentStatus>();
    if (!hostIds.length) {
      return out;
    }
    const k = this.store.keys;
    const [applied, sessions] = await Promise.all([
      this.store.read((r) => r.hmget(k.agentApplied(), ...hostIds)),
      this.store.read((r) => r.hmget(k.agentSessions(), ...hostIds)),
    ]);
    const now = Date.now();
    hostIds.forEach((id, i) => {
      const expiry = sessions[i] ? Number(sessions[i].split(' ')[1]) : 0;
      out.set(id, { connected: expiry > now, appliedRevision: Number(applied[i] ?? 0) });
    });
    return out;
  }

  /** Records (from, to], or undefined when the log no longer holds all of them. */
  async readChangeLog(from: number, to: number): Promise<ChangeRecord[] | undefined> {
    if (to <= from) {
      return [];
    }
    const entries = (await this.store.read((r) => r.xrange(this.store.keys.changeLog(), `${from + 1}-0`, `${to}-0`))) as [string, string[]][];
    const records = entries.map(parseStreamEntry);
    if (records.length !== to - from || records[0].revision !== from + 1) {
      return undefined;
    }
    return records;
  }
}
