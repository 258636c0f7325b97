import { Injectable } from '@nestjs/common';
import type { MirrorCounters__Output } from '../../generated/overlay/v1/MirrorCounters';
import { MaterializedView } from '../store/materialized-view';
import { cleanAgentText } from '../../common/agent-text';
import { HOST_REPORT_WRITE_MS, HostReportIntake } from './host-report-intake';
import { MirrorCountersRepository, type MirrorTapCounters } from './mirror-counters.repository';

/** Entries one MirrorCounters message may carry (sync.proto). */
export const MAX_MIRROR_COUNTER_ENTRIES = 4096;
/** Longest tap id accepted: two ids and a slash, with room to spare. */
const MAX_TAP_ID = 256;
/** Longest error text kept per tap (cleaned: agent text is hostile input). */
const MAX_TAP_ERROR = 512;
/** A host's counters go to Redis at most this often (HostReportIntake). */
export const MIRROR_COUNTERS_WRITE_MS = HOST_REPORT_WRITE_MS;

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

/** Takes the mirror counters agents report to Redis (MirrorCountersRepository): see HostReportIntake. */
@Injectable()
export class MirrorCountersIntake extends HostReportIntake<ReadonlyMap<string, MirrorTapCounters>> {
  constructor(repository: MirrorCountersRepository, view: MaterializedView) {
    super('mirror counters', (hostId, entries) => repository.write(hostId, entries), view);
  }
}
