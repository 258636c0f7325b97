import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The migration prepared for an incoming domain, kept from `migrate begin` to the incoming
 * domain's stop (each hook call is a process of its own). One file per domain UUID (a UUID the
 * XML scanner checked, so it cannot name another path).
 */
export interface IncomingMigration {
  migrationId: string;
  domain: string;
  portIds: string[];
  sourceHostId: string;
  preparedAt: string;
}

/** Older than the longest migration TTL the controller allows: nothing left to abort. */
const STALE_MS = 25 * 3600_000;

export class HookState {
  constructor(private readonly dir: string) {}

  private file(uuid: string): string {
    return join(this.dir, `${uuid}.json`);
  }

  save(uuid: string, migration: IncomingMigration): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file(uuid)}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(migration), { mode: 0o600 });
    renameSync(tmp, this.file(uuid));
  }

  /** The domain's incoming migration; undefined when none (or the file is unreadable: it is then removed). */
  load(uuid: string): IncomingMigration | undefined {
    let text: string;
    try {
      text = readFileSync(this.file(uuid), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const parsed = JSON.parse(text) as IncomingMigration;
      if (typeof parsed.migrationId === 'string') {
        return parsed;
      }
    } catch {
      // fall through: a torn or foreign file
    }
    this.forget(uuid);
    return undefined;
  }

  forget(uuid: string): void {
    rmSync(this.file(uuid), { force: true });
  }

  /** Removes files older than any migration can stay open (a VM that migrated in and never stopped). */
  prune(now = Date.now()): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(this.dir, name);
      try {
        if (now - statSync(path).mtimeMs > STALE_MS) {
          rmSync(path, { force: true });
        }
      } catch {
        // gone meanwhile
      }
    }
  }
}
