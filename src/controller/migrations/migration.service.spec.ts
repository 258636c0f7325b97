import { TEST_ACTOR } from '../../../test/support/records';
import { ErrorCode } from '../errors';
import { parseId } from '../model/value-parsers';
import type { ControllerConfig } from '../config';
import type { AgentStatusRepository } from '../distribution/agent-status.repository';
import type { RealizationService } from '../distribution/realization.service';
import type { Migration } from '../model/migration';
import type { Port } from '../model/port';
import type { MaterializedView } from '../store/materialized-view';
import { expectOverlayError, mockOf } from '../../../test/support/mocks';
import { portRecord } from '../../../test/support/records';
import type { ConnectionHandover } from './connection-handover';
import { MigrationRepository } from './migration.repository';
import { prepareMigrationSchema } from './migration.schemas';
import { MigrationService } from './migration.service';
import type { StrictTrunks } from '../audit/strict-trunks';

const SOURCE = parseId('01890a5d-ac96-774b-bcce-b302099a8051');
const DESTINATION = parseId('01890a5d-ac96-774b-bcce-b302099a8052');
const P1 = parseId('01890a5d-ac96-774b-bcce-b302099a8053');
const P2 = parseId('01890a5d-ac96-774b-bcce-b302099a8054');
const MIGRATION = parseId('01890a5d-ac96-774b-bcce-b302099a8055');

const port = (id: string, hostId: string): Port => portRecord({ id, hostId, vmId: 'vm-1' });

function serviceWith(migrations: MigrationRepository, viewPorts: Port[] = []): MigrationService {
  const view = { current: { ports: new Map(viewPorts.map((p) => [p.id, p])) } } as unknown as MaterializedView;
  const config = { migrationRetentionSeconds: 60, migrationTtlMs: 30_000 } as ControllerConfig;
  return new MigrationService(migrations, mockOf<RealizationService>({}), view, { enabled: false } as ConnectionHandover, mockOf<AgentStatusRepository>({}), { check: async () => undefined } as unknown as StrictTrunks, config);
}
const prepare = (raw: Record<string, unknown>) => prepareMigrationSchema.parse({ sourceHostId: SOURCE, destinationHostId: DESTINATION, ...raw }, '');

describe('MigrationService.prepare', () => {
  it.each([
    ['neither vmId nor portIds', {}, 'vmId'],
    ['both vmId and portIds', { vmId: 'vm-1', portIds: [P1] }, 'portIds'],
    ['the same host as source and destination', { portIds: [P1], destinationHostId: SOURCE }, 'destinationHostId'],
    ['a port listed twice', { portIds: [P1, P2, P1] }, 'portIds[2]'],
  ])('refuses %s (INVALID_VALUE) before reading any port', async (_name, raw, field) => {
    const migrations = mockOf<MigrationRepository>({ ports: jest.fn() });
    await expectOverlayError(serviceWith(migrations).prepare(prepare(raw), TEST_ACTOR, 0), ErrorCode.InvalidValue, field);
    expect(migrations.ports).not.toHaveBeenCalled();
  });

  it('names the port by its place in portIds, or the VM when asked by VM', async () => {
    const missing = mockOf<MigrationRepository>({ ports: jest.fn(async () => [port(P1, SOURCE), undefined]) });
    await expectOverlayError(serviceWith(missing).prepare(prepare({ portIds: [P1, P2] }), TEST_ACTOR, 0), ErrorCode.PortNotFound, 'portIds[1]');
    const elsewhere = mockOf<MigrationRepository>({ ports: jest.fn(async () => [port(P1, DESTINATION)]) });
    await expectOverlayError(serviceWith(elsewhere, [port(P1, SOURCE)]).prepare(prepare({ vmId: 'vm-1' }), TEST_ACTOR, 0), ErrorCode.PortNotOnSource, 'vmId');
  });

  it('refuses a VM with no port bound to the source (PORT_NOT_FOUND, vmId)', async () => {
    await expectOverlayError(serviceWith(mockOf<MigrationRepository>({}), [port(P1, DESTINATION)]).prepare(prepare({ vmId: 'vm-1' }), TEST_ACTOR, 0), ErrorCode.PortNotFound, 'vmId');
  });

  it('hands the store the record, the retry key and each port prepared on the destination', async () => {
    const migrations = mockOf<MigrationRepository>({
      ports: jest.fn(async () => [port(P2, SOURCE), port(P1, SOURCE)]),
      prepare: jest.fn(async () => ({ revision: 8, id: MIGRATION })),
      get: jest.fn(async (): Promise<Migration> => ({ id: MIGRATION, state: 'prepared', timeline: [] }) as unknown as Migration),
    });
    const { created } = await serviceWith(migrations).prepare(prepare({ portIds: [P2, P1], ttlMs: 5_000 }), TEST_ACTOR, 0);
    expect(created).toBe(true);
    const [record, key, expiresAtMs, swaps] = migrations.prepare.mock.calls[0];
    expect(record).toMatchObject({ vmId: null, portIds: [P2, P1], sourceHostId: SOURCE, destinationHostId: DESTINATION });
    expect(Date.parse(record.expiresAt)).toBe(expiresAtMs);
    expect(expiresAtMs - Date.parse(record.createdAt)).toBe(5_000);
    expect(key).toBe(`${SOURCE} ${DESTINATION} ${[P1, P2].sort().join(',')}`);
    expect(swaps.map((s: { next: Port }) => s.next.migration)).toEqual([
      { id: record.id, destinationHostId: DESTINATION },
      { id: record.id, destinationHostId: DESTINATION },
    ]);
  });
});

describe('MigrationService.commitOnArrival', () => {
  it('calls a report from a host that is not the destination a violation, and commits nothing', async () => {
    const migrations = mockOf<MigrationRepository>({
      get: jest.fn(async () => ({ id: MIGRATION, destinationHostId: DESTINATION, portIds: [P1], state: 'prepared', timeline: [] })),
      commit: jest.fn(),
    });
    expect(await serviceWith(migrations).commitOnArrival(SOURCE, MIGRATION, P1)).toEqual({ violation: expect.stringContaining('not migrating to this host') });
    expect(migrations.commit).not.toHaveBeenCalled();
  });
});
