import { HostObservationRepository } from '../../src/controller/distribution/host-observation.repository';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { inventory, nic } from '../support/audit-worlds';
import { factories } from '../support/factories';

/**
 * Strict VLAN trunks (OVERLAY_STRICT_VLAN_TRUNKS=1): a port of a VLAN segment is bound, and its
 * migration prepared, only onto a host whose switch ports are known to carry the VLAN (observed
 * by LLDP, else declared). A refusal is 409 VLAN_NOT_TRUNKED naming the host field, and changes
 * nothing.
 */
describe('strict VLAN trunks', () => {
  const prefix = uniquePrefix('strict-trunks');
  let ctl: Harness;
  let client: ReturnType<typeof api>;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    ctl = await startController({ prefix, env: { OVERLAY_STRICT_VLAN_TRUNKS: '1' } });
    client = api(ctl.url);
    const f = factories(client);
    ids.tenant = (await f.tenant()).id;
    ids.vlanSegment = (await f.segment(ids.tenant, { vlanId: 401 })).id;
    ids.overlaySegment = (await f.segment(ids.tenant)).id;
    ids.carrying = (await f.host({ inventory: { uplinks: [], trunkedVlans: [401, 402] } })).id;
    ids.lacking = (await f.host({ inventory: { uplinks: [], trunkedVlans: [402] } })).id;
    ids.unknown = (await f.host()).id;
    // Declares 402 only, but LLDP says eth0's switch port carries 401 (eth1's switch sends no VLAN TLV: it says nothing).
    ids.observed = (await f.host({ inventory: { uplinks: [], trunkedVlans: [402] } })).id;
    await ctl.app.get(HostObservationRepository).write(ids.observed, {
      at: Date.now(),
      taps: [],
      bridges: [],
      inventory: inventory([nic('eth0', { switch: 'tor-a', vlans: [401] }), nic('eth1', { switch: 'tor-b', vlans: [] })], 'eth0'),
    });
  });

  afterAll(async () => {
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  const portCount = async () => (await client.get(`/v1/ports?segmentId=${ids.vlanSegment}&limit=1000`)).body.items.length;
  const refusal = (res: { status: number; body: any }) => ({ status: res.status, code: res.body.code, field: res.body.field });

  it('binds where the VLAN is carried (declared or observed), refuses where it is not or is unknown, and stores nothing refused', async () => {
    for (const host of ['carrying', 'observed']) {
      expect((await client.post('/v1/ports', { segmentId: ids.vlanSegment, hostId: ids[host] })).status).toBe(201);
    }
    const before = await portCount();
    const lacking = await client.post('/v1/ports', { segmentId: ids.vlanSegment, hostId: ids.lacking });
    expect(refusal(lacking)).toEqual({ status: 409, code: 'VLAN_NOT_TRUNKED', field: 'hostId' });
    expect(lacking.body.message).toContain('VLAN 401');
    expect(lacking.body.message).toContain('carries 402; declared');
    const unknown = await client.post('/v1/ports', { segmentId: ids.vlanSegment, hostId: ids.unknown });
    expect(refusal(unknown)).toEqual({ status: 409, code: 'VLAN_NOT_TRUNKED', field: 'hostId' });
    expect(unknown.body.message).toContain('unknown');
    const batch = await client.post('/v1/ports/batch', { ports: [{ segmentId: ids.vlanSegment, hostId: ids.carrying }, { segmentId: ids.vlanSegment, hostId: ids.lacking }] });
    expect(refusal(batch)).toEqual({ status: 409, code: 'VLAN_NOT_TRUNKED', field: 'ports[1].hostId' });
    expect(await portCount()).toBe(before);
    // Unbound ports, and ports of a segment without a VLAN, are not its business.
    expect((await client.post('/v1/ports', { segmentId: ids.vlanSegment })).status).toBe(201);
    expect((await client.post('/v1/ports', { segmentId: ids.overlaySegment, hostId: ids.lacking })).status).toBe(201);
  });

  it('refuses a rebind onto a host without the VLAN, and leaves the port where it was; other changes to a bound port pass', async () => {
    const port = (await client.post('/v1/ports', { segmentId: ids.vlanSegment, hostId: ids.carrying })).body;
    const rebind = await client.patch(`/v1/ports/${port.id}`, { hostId: ids.lacking });
    expect(refusal(rebind)).toEqual({ status: 409, code: 'VLAN_NOT_TRUNKED', field: 'hostId' });
    expect((await client.get(`/v1/ports/${port.id}`)).body.hostId).toBe(ids.carrying);
    expect((await client.patch(`/v1/ports/${port.id}`, { vmId: 'vm-strict' })).status).toBe(200);
    expect((await client.patch(`/v1/ports/${port.id}`, { hostId: ids.observed })).status).toBe(200);
  });

  it("refuses a migration's prepare onto a host without the VLAN: a pre-flight check, nothing prepared", async () => {
    const port = (await client.post('/v1/ports', { segmentId: ids.vlanSegment, hostId: ids.carrying, vmId: 'vm-moving' })).body;
    const prepare = await client.post('/v1/migrations', { vmId: 'vm-moving', sourceHostId: ids.carrying, destinationHostId: ids.lacking });
    expect(refusal(prepare)).toEqual({ status: 409, code: 'VLAN_NOT_TRUNKED', field: 'destinationHostId' });
    expect((await client.get(`/v1/ports/${port.id}`)).body.migration).toBeNull();
    const byPorts = await client.post('/v1/migrations', { portIds: [port.id], sourceHostId: ids.carrying, destinationHostId: ids.unknown });
    expect(refusal(byPorts)).toEqual({ status: 409, code: 'VLAN_NOT_TRUNKED', field: 'destinationHostId' });
  });
});
