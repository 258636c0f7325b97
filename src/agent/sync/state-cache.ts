import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IpSetMember__Output } from '../../generated/overlay/v1/IpSetMember';
import type { Port__Output } from '../../generated/overlay/v1/Port';
import type { PortPolicy__Output } from '../../generated/overlay/v1/PortPolicy';
import type { Segment__Output } from '../../generated/overlay/v1/Segment';
import type { SpanView } from '../reconcile/plan';

/** The agent's desired state: its span at a revision of an epoch. */
export interface DesiredState extends SpanView {
  epoch: string;
  revision: number;
  /** Compiled firewall policies of the host's own ports, by port id. */
  policies: Map<string, PortPolicy__Output>;
  /** IP-set members of the groups those policies reference, by `<groupId>/<family>/<cidr>`. */
  members: Map<string, IpSetMember__Output>;
}

export const memberStateKey = (m: { groupId: string; family: string; cidr: string }): string => `${m.groupId}/${m.family}/${m.cidr}`;

export function emptyDesiredState(): DesiredState {
  return { epoch: '', revision: 0, hostId: '', vtepIp: '', segments: new Map(), ports: new Map(), policies: new Map(), members: new Map() };
}

export function cloneDesiredState(state: DesiredState): DesiredState {
  return { ...state, segments: new Map(state.segments), ports: new Map(state.ports), policies: new Map(state.policies), members: new Map(state.members) };
}

/** Version 2 added policies and members; a version 1 file is ignored (a snapshot refills everything). */
const STATE_FILE_VERSION = 2;

interface StateFile {
  version: typeof STATE_FILE_VERSION;
  epoch: string;
  revision: number;
  hostId: string;
  vtepIp: string;
  segments: Segment__Output[];
  ports: Port__Output[];
  policies: PortPolicy__Output[];
  members: IpSetMember__Output[];
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
    if (data.version !== STATE_FILE_VERSION) {
      return undefined;
    }
    return {
      epoch: data.epoch,
      revision: data.revision,
      hostId: data.hostId,
      vtepIp: data.vtepIp,
      segments: new Map(data.segments.map((s) => [s.id, s])),
      ports: new Map(data.ports.map((p) => [p.id, p])),
      policies: new Map(data.policies.map((p) => [p.portId, p])),
      members: new Map(data.members.map((m) => [memberStateKey(m), m])),
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
          version: STATE_FILE_VERSION,
          epoch: state.epoch,
          revision: state.revision,
          hostId: state.hostId,
          vtepIp: state.vtepIp,
          segments: [...state.segments.values()],
          ports: [...state.ports.values()],
          policies: [...state.policies.values()],
          members: [...state.members.values()],
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
