import { TEST_ACTOR } from '../../../test/support/records';
import { ErrorCode } from '../errors';
import { parseId } from '../model/value-parsers';
import type { RealizationService } from '../distribution/realization.service';
import type { Host } from '../model/host';
import { expectOverlayError, mockOf } from '../../../test/support/mocks';
import { HostRepository } from './host.repository';
import { createHostSchema, updateHostSchema } from './host.schemas';
import { HostService } from './host.service';

const ID = parseId('01890a5d-ac96-774b-bcce-b302099a8057');
const stored: Host = { id: ID, name: 'hv1', vtepIp: '192.0.2.1', inventory: { uplinks: [], trunkedVlans: [] }, createdAt: 't0', updatedAt: 't0' };
const noRealization = mockOf<RealizationService>({});

describe('HostService', () => {
  it('stores the inventory in one shape: absent fields null, PCI address lower case, VLANs sorted once each', async () => {
    const hosts = mockOf<HostRepository>({ create: jest.fn(async (h) => h) });
    const input = createHostSchema.parse({ name: 'hv1', vtepIp: '192.0.2.1', inventory: { uplinks: [{ name: 'ens1f0', pciAddress: '0000:3B:00.0' }], trunkedVlans: [30, 10, 30] } }, '');
    const host = await new HostService(hosts, noRealization).create(input, TEST_ACTOR);
    expect(host.inventory).toEqual({
      uplinks: [{ name: 'ens1f0', driver: null, pciAddress: '0000:3b:00.0', switch: null, switchPort: null, team: null, mode: null, failureDetection: null }],
      trunkedVlans: [10, 30],
    });
  });

  it('refuses an uplink listed twice, naming the second, before writing', async () => {
    const hosts = mockOf<HostRepository>({ create: jest.fn() });
    const input = createHostSchema.parse({ name: 'hv1', vtepIp: '192.0.2.1', inventory: { uplinks: [{ name: 'ens1f0' }, { name: 'ens1f0' }] } }, '');
    await expectOverlayError(new HostService(hosts, noRealization).create(input, TEST_ACTOR), ErrorCode.InvalidValue, 'inventory.uplinks[1].name');
    expect(hosts.create).not.toHaveBeenCalled();
  });

  it('changes only the fields given, comparing with the record it read, and retries when that record changed', async () => {
    const hosts = mockOf<HostRepository>({
      get: jest.fn().mockResolvedValueOnce(stored).mockResolvedValueOnce({ ...stored, name: 'renamed' }),
      replace: jest.fn().mockResolvedValueOnce(false).mockResolvedValueOnce(true),
    });
    const updated = await new HostService(hosts, noRealization).update(ID, updateHostSchema.parse({ vtepIp: '192.0.2.9' }, ''), TEST_ACTOR);
    expect(hosts.replace).toHaveBeenCalledTimes(2);
    expect(hosts.replace.mock.calls[1][0]).toEqual({ ...stored, name: 'renamed' });
    expect(updated).toMatchObject({ name: 'renamed', vtepIp: '192.0.2.9', inventory: stored.inventory });
  });

  it('adds the agent status to a host it reads', async () => {
    const status = { connected: true, appliedRevision: 4, lag: 0, lastError: null };
    const realization = mockOf<RealizationService>({ hostStatus: jest.fn(async () => new Map([[ID, status]])) });
    const hosts = mockOf<HostRepository>({ get: jest.fn(async () => stored) });
    expect(await new HostService(hosts, realization).get(ID)).toEqual({ ...stored, ...status });
  });

  it('answers HOST_NOT_FOUND naming the id', async () => {
    const hosts = mockOf<HostRepository>({ get: jest.fn(async () => undefined) });
    await expectOverlayError(new HostService(hosts, noRealization).get(ID), ErrorCode.HostNotFound, 'id');
  });
});
