import { Injectable } from '@nestjs/common';
import type { ResourceId } from '../../common/values';
import { ErrorCode, notFound, OverlayError } from '../errors';
import { MigrationRepository } from '../migrations/migration.repository';
import type { Principal } from './principal';

/**
 * A `migration-hook` token with host scope (`hostIds`) handles only migrations from or to one of
 * its hosts. Preparing another is refused with 403 (the hook names the hosts itself, so nothing
 * is revealed); any other migration does not exist for it (404, as a missing one). Free for a
 * token without host scope; with one, a commit, abort or read costs one HGET of the migration's
 * record, whose hosts never change, so the check cannot be raced.
 */
@Injectable()
export class HostScope {
  constructor(private readonly migrations: MigrationRepository) {}

  /** Before a prepare: one of the two hosts must be the token's. */
  prepare(caller: Principal, hosts: { sourceHostId: ResourceId; destinationHostId: ResourceId }): void {
    if (!this.covers(caller, hosts)) {
      throw new OverlayError(
        ErrorCode.Forbidden,
        `token '${caller.name}' may prepare only migrations from or to its hosts (${caller.hostIds!.join(', ')}); neither the source nor the destination is one of them`,
        { field: 'sourceHostId' },
      );
    }
  }

  /** Before a commit, an abort or a read: a migration of other hosts answers as one that does not exist. */
  async own(caller: Principal, id: ResourceId): Promise<void> {
    if (caller.hostIds === null) {
      return;
    }
    const record = await this.migrations.record(id);
    if (record && !this.covers(caller, record)) {
      throw notFound('migration', id);
    }
  }

  /** For a list: whether the caller may see a migration (one of its hosts is the source or the destination). */
  visible(caller: Principal): (hosts: { sourceHostId: string; destinationHostId: string }) => boolean {
    return (hosts) => this.covers(caller, hosts);
  }

  private covers(caller: Principal, hosts: { sourceHostId: string; destinationHostId: string }): boolean {
    const mine: readonly string[] | null = caller.hostIds;
    return mine === null || mine.includes(hosts.sourceHostId) || mine.includes(hosts.destinationHostId);
  }
}
