import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { copySpanMaps, emptySpanMaps, SPAN_KINDS, type SpanMaps } from '../../common/span/span-kinds';
import type { SpanView } from '../reconcile/plan';

/** The agent's desired state: its span at a revision of an epoch, one map per kind (`segments`, `ports`, `policies`, `members`). */
export interface DesiredState extends SpanView, SpanMaps {
  epoch: string;
  revision: number;
  /** The change record of `revision` as the controller named it (sync.proto, Delta.record); '' when it named none. */
  record: string;
}

export function emptyDesiredState(): DesiredState {
  return { epoch: '', revision: 0, record: '', hostId: '', vtepIp: '', ...emptySpanMaps() };
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

/** The file: the state's scalars, and each kind's resources as an array under its collection's name. `record` is absent from a file an older agent wrote. */
type StateFile = { version: typeof STATE_FILE_VERSION; epoch: string; revision: number; record?: string; hostId: string; vtepIp: string } & { [C in keyof SpanMaps]: SpanMaps[C] extends Map<string, infer R> ? R[] : never };

const KINDS = Object.values(SPAN_KINDS);

/** About how many characters of the state file are serialized before they are written (see writeStateFile). */
const WRITE_CHUNK_CHARS = 64 * 1024;

/** Writes all of `text` at the file's position (a write may take less than it is given). */
async function writeAll(handle: FileHandle, text: string): Promise<void> {
  const bytes = Buffer.from(text, 'utf8');
  for (let done = 0; done < bytes.length; ) {
    done += (await handle.write(bytes, done)).bytesWritten;
  }
}

/**
 * Writes `state` to `file` as a StateFile: the same JSON as `JSON.stringify` of the whole, but
 * serialized and written a resource at a time in chunks of about WRITE_CHUNK_CHARS, so the
 * megabytes of text (5 MB at 10,000 entries) never exist at once, as a string nor as a buffer.
 * What it writes is taken at once (each collection's resources, which are never changed in place:
 * a delta replaces them), so a delta arriving while it writes does not reach the file.
 */
async function writeStateFile(file: string, state: DesiredState): Promise<void> {
  const head: Omit<StateFile, keyof SpanMaps> = { version: STATE_FILE_VERSION, epoch: state.epoch, revision: state.revision, record: state.record, hostId: state.hostId, vtepIp: state.vtepIp };
  const collections = KINDS.map((kind) => [kind.collection, [...state[kind.collection].values()]] as const);
  const handle = await open(file, 'w');
  try {
    let chunk = JSON.stringify(head).slice(0, -1);
    for (const [name, resources] of collections) {
      chunk += `,${JSON.stringify(name)}:[`;
      for (let i = 0; i < resources.length; i++) {
        chunk += (i ? ',' : '') + JSON.stringify(resources[i]);
        if (chunk.length >= WRITE_CHUNK_CHARS) {
          await writeAll(handle, chunk);
          chunk = '';
        }
      }
      chunk += ']';
    }
    await writeAll(handle, `${chunk}}`);
  } finally {
    await handle.close();
  }
}

/** The least time between two writes of the state file (a flush writes at once). */
export const STATE_WRITE_INTERVAL_MS = 1_000;

/**
 * Persists the desired state on local disk, so a restarted agent restores its dataplane without
 * the controller and resumes from its revision. Writes are atomic (temp file, then rename) and
 * coalesced: at most one write in flight, the latest state wins, and at most one write per
 * `minIntervalMs` (STATE_WRITE_INTERVAL_MS) unless flushed. Each write is the whole state (megabytes
 * of JSON at 10,000 entries): one per revision marker (several a second to an idle agent of a busy
 * cluster) or per delta of a stream kept the agent busy writing. A file written later is still a
 * state the host held at its revision, so a restarted agent resumes from it and the controller sends
 * what followed. A write that fails (a full or read-only disk) is reported to `failed` and never
 * thrown: the dataplane does not depend on the file, and the next save tries again.
 */
export class StateCache {
  private readonly file: string;
  private pending?: DesiredState;
  private writing?: Promise<void>;
  private lastWriteAt = -Infinity;
  /** Ends the wait between two writes at once (flush). */
  private wake?: () => void;
  /** A flush is waiting: writes do not wait out the interval. */
  private flushing = 0;

  constructor(
    private readonly dir: string,
    private readonly failed: (err: Error) => void = () => undefined,
    private readonly minIntervalMs = STATE_WRITE_INTERVAL_MS,
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
    return { epoch: data.epoch, revision: data.revision, record: typeof data.record === 'string' ? data.record : '', hostId: data.hostId, vtepIp: data.vtepIp, ...maps };
  }

  /** Schedules a write of `state` (coalesced with writes still pending). */
  save(state: DesiredState): void {
    this.pending = state;
    this.writing ??= this.drain();
  }

  /** Resolves once everything saved so far is on disk (without waiting out the interval). */
  async flush(): Promise<void> {
    this.flushing++;
    try {
      while (this.writing) {
        this.wake?.();
        await this.writing;
      }
    } finally {
      this.flushing--;
    }
  }

  private waitForInterval(): Promise<void> {
    const ms = this.lastWriteAt + this.minIntervalMs - performance.now();
    if (ms <= 0 || this.flushing > 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      // Not what keeps the process alive: a stopping agent flushes.
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async drain(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
      while (this.pending) {
        await this.waitForInterval();
        this.wake = undefined;
        const state = this.pending;
        this.pending = undefined;
        const tmp = `${this.file}.tmp`;
        await writeStateFile(tmp, state);
        await rename(tmp, this.file);
        this.lastWriteAt = performance.now();
      }
    } catch (err) {
      this.failed(err as Error);
    } finally {
      this.writing = undefined;
    }
  }
}
