import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Port__Output } from '../../generated/overlay/v1/Port';
import type { Segment__Output } from '../../generated/overlay/v1/Segment';
import type { SpanView } from '../reconcile/plan';

/** The agent's desired state: its span at a revision of an epoch. */
export interface DesiredState extends SpanView {
  epoch: string;
  revision: number;
}

export function emptyDesiredState(): DesiredState {
  return { epoch: '', revision: 0, hostId: '', vtepIp: '', segments: new Map(), ports: new Map() };
}

export function cloneDesiredState(state: DesiredState): DesiredState {
  return { ...state, segments: new Map(state.segments), ports: new Map(state.ports) };
}

interface StateFile {
  version: 1;
  epoch: string;
  revision: number;
  hostId: string;
  vtepIp: string;
  segments: Segment__Output[];
  ports: Port__Output[];
}

/**
 * Persists the desired state on local disk, so a restarted agent restores its dataplane without
 * the controller and resumes from its revision. Writes are atomic (temp file, then rename) and
 * coalesced: at most one write in flight, the latest state wins.
 */
export class StateCache {
  private readonly file: string;
  private pending?: DesiredState;
  private writing?: Promise<void>;

  constructor(private readonly dir: string) {
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
    if (data.version !== 1) {
      return undefined;
    }
    return {
      epoch: data.epoch,
      revision: data.revision,
      hostId: data.hostId,
      vtepIp: data.vtepIp,
      segments: new Map(data.segments.map((s) => [s.id, s])),
      ports: new Map(data.ports.map((p) => [p.id, p])),
    };
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
        const data: StateFile = {
          version: 1,
          epoch: state.epoch,
          revision: state.revision,
          hostId: state.hostId,
          vtepIp: state.vtepIp,
          segments: [...state.segments.values()],
          ports: [...state.ports.values()],
        };
        const tmp = `${this.file}.tmp`;
        await writeFile(tmp, JSON.stringify(data));
        await rename(tmp, this.file);
      }
    } finally {
      this.writing = undefined;
    }
  }
}
