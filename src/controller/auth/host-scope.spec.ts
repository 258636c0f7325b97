import { ErrorCode, OverlayError } from '../errors';
import type { MigrationRecord } from '../model/migration';
import { parseId } from '../model/value-parsers';
import type { MigrationRepository } from '../migrations/migration.repository';
import { expectOverlayError, mockOf } from '../../../test/support/mocks';
import { HostScope } from './host-scope';
import type { Principal } from './principal';

const H1 = parseId('01890a5d-ac96-774b-bcce-b302099a0001');
const H2 = parseId('01890a5d-ac96-774b-bcce-b302099a0002');
const H3 = parseId('01890a5d-ac96-774b-bcce-b302099a0003');
const H4 = parseId('01890a5d-ac96-774b-bcce-b302099a0004');
const MIGRATION = parseId('01890a5d-ac96-774b-bcce-b302099a0010');
const MISSING = parseId('01890a5d-ac96-774b-bcce-b302099a0011');

const hook = (hostIds: Principal['hostIds']): Principal => ({ tokenId: H1, name: 'nova-hook', role: 'migration-hook', tenantId: null, hostIds, allowVniPinning: false });
const record = (sourceHostId: string, destinationHostId: string): MigrationRecord => ({
  id: MIGRATION,
  vmId: null,
  portIds: [],
  sourceHostId,
  destinationHostId,
  createdAt: 't0',
  expiresAt: 't1',
});

function scopeOver(stored: MigrationRecord | undefined): { scope: HostScope; read: jest.Mock } {
  const read = jest.fn(async (id: string) => (id === MIGRATION ? stored : undefined));
  return { scope: new HostScope(mockOf<MigrationRepository>({ record: read })), read };
}

describe('HostScope', () => {
  it('lets a scoped hook prepare a migration from or to one of its hosts, and refuses any other with 403 naming the rule', () => {
    const { scope } = scopeOver(undefined);
    const mine = hook([H1, H2]);
    expect(() => scope.prepare(mine, { sourceHostId: H1, destinationHostId: H3 })).not.toThrow();
    expect(() => scope.prepare(mine, { sourceHostId: H3, destinationHostId: H2 })).not.toThrow();
    expect(() => scope.prepare(mine, { sourceHostId: H3, destinationHostId: H4 })).toThrow(
      expect.objectContaining({ code: ErrorCode.Forbidden, field: 'sourceHostId', message: expect.stringContaining('only migrations from or to its hosts') }),
    );
    expect(() => scope.prepare(hook(null), { sourceHostId: H3, destinationHostId: H4 })).not.toThrow();
  });

  it("answers another hosts' migration as one that does not exist; its own and missing ones pass", async () => {
    await expect(scopeOver(record(H1, H3)).scope.own(hook([H1]), MIGRATION)).resolves.toBeUndefined();
    await expect(scopeOver(record(H3, H1)).scope.own(hook([H1]), MIGRATION)).resolves.toBeUndefined();
    const { scope } = scopeOver(record(H3, H4));
    await expectOverlayError(scope.own(hook([H1, H2]), MIGRATION), ErrorCode.MigrationNotFound, 'id');
    await expect(scope.own(hook([H1, H2]), MIGRATION)).rejects.toThrow(new OverlayError(ErrorCode.MigrationNotFound, `no migration ${MIGRATION}`));
    await expect(scope.own(hook([H1]), MISSING)).resolves.toBeUndefined();
  });

  it('reads nothing for a token without host scope', async () => {
    const { scope, read } = scopeOver(record(H3, H4));
    await scope.own(hook(null), MIGRATION);
    await scope.own({ ...hook(null), role: 'operator' }, MIGRATION);
    expect(read).not.toHaveBeenCalled();
  });
});
