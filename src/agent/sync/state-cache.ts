import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copySpanMaps, emptySpanMaps, SPAN_KINDS, type SpanMaps } from '../../common/span/span-kinds';
import type { SpanView } from '../reconcile/plan';

/** The agent's desired state: its span at a revision of an epoch, one map per kind (`segments`, `ports`, `policies`, `members`). */
export interface DesiredState extends SpanView, SpanMaps {
  epoch: string;
  revision: number;
}

export function emptyDesiredState(): DesiredState {
  return { epoch: '', revision: 0, hostId: '', vtepIp: '', ...emptySpanMaps() };
}

/** `state` with new maps for `collections` (default: every one), the others shared. */
export function cloneDesiredState(state: DesiredState, collections?: ReadonlySet<keyof SpanMaps>): DesiredState {
  return { ...state, ...copySpanMaps(state, collections) };
}

/**
 * Version 2 added policies and members, version 3 mirrors and mirror sinks (and the ports'
 * analyzer flag); a file of an older version is ignored, because resuming from it would never
 * bring the kinds it lacks (a snapshot refills everything).
 */
const STATE_FILE_VERSION = 3;

/** The file: the state's scalars, and each kind's resources as an array under its collection's name. */
type StateFile = { version: typeof STATE_FILE_VERSION; epoch: string; revision: number; hostId: string; vtepIp: string } & { [C in keyof SpanMaps]: SpanMaps[C] extends Map<string, infer R> ? R[] : never };

const KINDS = Object.values(SPAN_KINDS);

/**
 * Persists the desired state on local disk, so a restarted agent restores its dataplane without
 * the controller and resumes from its revision. Writes are atomic (temp file, then rename) and
 * coalesced: at most one write in flight, the latest state wins. A write that fails (a full or
 * read-only disk) is reported to `failed` and never thrown: the dataplane does not depend on the
 * file, and the next save tries again.
 */
export class StateCache {
  private readonly file: string;
  private pending?: DesiredState;
  private writing?: Promise<void>;

  constructor(
    private readonly dir: string,
    private readonly failed: (err: Error) => void = () => undefined,
  ) {
    this.file = join(dir, 'desired-state.json');
  }

  async load(): Promise<DesiredState | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return undefined;
      }
      throw err;
    }
    const data = JSON.parse(text) as StateFile;
    if (data.version !== STATE_FILE_VERSION) {
      return undefined;
    }
    const maps = emptySpanMaps();
    for (const kind of KINDS) {
      const collection = maps[kind.collection] as Map<string, unknown>;
      for (const resource of data[kind.collection]) {
        collection.set(kind.idOf(resource as never), resource);
      }
    }
    return { epoch: data.epoch, revision: data.revision, hostId: data.hostId, vtepIp: data.vtepIp, ...maps };
  }

  /** Schedules a write of `state` (coalesced with writes still pending). */
  save(state: DesiredState): void {
    this.pending = state;
    this.writing ??= this.drain();
  }

  /** Resolves once everything saved so far is on disk. */
  async flush(): Promise<void> {
    while (this.writing) {
      await this.writing;
    }
  }

  private async drain(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
      while (this.pending) {
        const state = this.pending;
        this.pending = undefined;
        const data = {
          version: STATE_FILE_VERSION,
          epoch: state.epoch,
          revision: state.revision,
          hostId: state.hostId,
          vtepIp: state.vtepIp,
          ...Object.fromEntries(KINDS.map((kind) => [kind.collection, [...state[kind.collection].values()]])),
        } as StateFile;
        const tmp = `${this.file}.tmp`;
        await writeFile(tmp, JSON.stringify(data));
        await rename(tmp, this.file);
      }
    } catch (err) {
      this.failed(err as Error);
    } finally {
      this.writing = undefined;
    }
  }
}
