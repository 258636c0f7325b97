import { Injectable, Logger } from '@nestjs/common';
import type { MirrorCounters__Output } from '../../generated/overlay/v1/MirrorCounters';
import { MaterializedView } from '../store/materialized-view';
import { cleanAgentText } from './agent-text';
import { MirrorCountersRepository, type MirrorTapCounters } from './mirror-counters.repository';

/** Entries one MirrorCounters message may carry (sync.proto). */
export const MAX_MIRROR_COUNTER_ENTRIES = 4096;
/** Longest tap id accepted: two ids and a slash, with room to spare. */
const MAX_TAP_ID = 256;
/** Longest error text kept per tap (cleaned: agent text is hostile input). */
const MAX_TAP_ERROR = 512;
/** A host's counters go to Redis at most this often; reports in between replace the pending one. */
export const MIRROR_COUNTERS_WRITE_MS = 1_000;

const TAP_ID = /^[^/]+\/[^/]+$/;

/**
 * Reads an agent's MirrorCounters: the entries to keep (those naming a mirror tap of the host's
 * span, `inSpan`), stamped `at`, or why the message breaks the protocol (more than
 * MAX_MIRROR_COUNTER_ENTRIES entries, an id that is no tap id, an id twice, a count that is not a
 * whole number up to 2^53 - 1: a uint64 past it has lost its value on the way). Pure.
 */
export function readMirrorCounters(message: MirrorCounters__Output, inSpan: (tapId: string) => boolean, at: number): { entries: Map<string, MirrorTapCounters> } | { violation: string } {
  const list = message.entries ?? [];
  if (list.length > MAX_MIRROR_COUNTER_ENTRIES) {
    return { violation: `MirrorCounters of ${list.length} entries (at most ${MAX_MIRROR_COUNTER_ENTRIES})` };
  }
  const seen = new Set<string>();
  const entries = new Map<string, MirrorTapCounters>();
  for (const [i, entry] of list.entries()) {
    const id = entry.id;
    if (typeof id !== 'string' || id.length > MAX_TAP_ID || !TAP_ID.test(id)) {
      return { violation: `MirrorCounters entry ${i}: id is not a mirror tap id ("<session_id>/<port_id>", at most ${MAX_TAP_ID} characters)` };
    }
    if (seen.has(id)) {
      return { violation: `MirrorCounters entry ${i}: tap ${id} reported twice` };
    }
    seen.add(id);
    for (const field of ['packets', 'bytes'] as const) {
      const value = entry[field];
      if (!Number.isSafeInteger(value) || value < 0) {
        return { violation: `MirrorCounters entry ${i}: ${field} is not a count up to 2^53 - 1` };
      }
    }
    if (inSpan(id)) {
      entries.set(id, { packets: entry.packets, bytes: entry.bytes, error: cleanAgentText(entry.error ?? '', MAX_TAP_ERROR), at });
    }
  }
  return { entries };
}

/**
 * Takes the mirror counters agents report on this replica to Redis (MirrorCountersRepository),
 * at most once per MIRROR_COUNTERS_WRITE_MS per host: agents may report often (after every pass
 * that changed mirrors), and each report replaces the host's counters whole, so the latest one
 * pending is all that needs writing. A failed write is logged and dropped, and so is what is
 * pending at shutdown: the agent reports again on its next pass (to whichever replica holds its
 * stream). Nothing is written for a host the view no longer has.
 */
@Injectable()
export class MirrorCountersIntake {
  private readonly logger = new Logger('sync');
  private readonly pending = new Map<string, ReadonlyMap<string, MirrorTapCounters>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly lastWrite = new Map<string, number>();
  private stopped = false;

  constructor(
    private readonly repository: MirrorCountersRepository,
    private readonly view: MaterializedView,
  ) {}

  /** The host's latest counters (already checked: `readMirrorCounters`). */
  report(hostId: string, entries: ReadonlyMap<string, MirrorTapCounters>): void {
    if (this.stopped) {
      return;
    }
    this.pending.set(hostId, entries);
    if (!this.timers.has(hostId)) {
      const wait = Math.max(0, (this.lastWrite.get(hostId) ?? -Infinity) + MIRROR_COUNTERS_WRITE_MS - Date.now());
      this.timers.set(hostId, setTimeout(() => void this.flush(hostId), wait));
    }
  }

  /** Drops what is pending and every report after this. Idempotent. */
  stop(): void {
    this.stopped = true;
    this.timers.forEach(clearTimeout);
    this.timers.clear();
    this.pending.clear();
  }

  private async flush(hostId: string): Promise<void> {
    this.timers.delete(hostId);
    const entries = this.pending.get(hostId);
    this.pending.delete(hostId);
    if (!entries) {
      return;
    }
    this.lastWrite.set(hostId, Date.now());
    if (!this.view.current.hosts.has(hostId)) {
      this.lastWrite.delete(hostId); // deleted: its counters were forgotten with it
      return;
    }
    try {
      await this.repository.write(hostId, entries);
    } catch (err) {
      this.logger.warn(`recording mirror counters of host ${hostId}: ${(err as Error).message}`);
    }
  }
}
