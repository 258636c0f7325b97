import { ErrorCode, OverlayError } from '../errors';
import { parseId } from '../model/value-parsers';
import { luaSecurityGroupHelpers } from '../security-groups/security-group.lua';
import type { MaterializedView } from '../store/materialized-view';
import { keysFor } from '../store/keys';
import type { RedisStore } from '../store/redis-store';
import { emptyViewState, type ViewState } from '../store/view-state';
import { portRecord } from '../../../test/support/records';
import { expectOverlayError } from '../../../test/support/mocks';
import type { Principal, Role } from './principal';
import { confineError, TenantScope, tenantOf } from './tenant-scope';

const A = parseId('01890a5d-ac96-774b-bcce-b302099a0001');
const B = parseId('01890a5d-ac96-774b-bcce-b302099a0002');
const SEG_A = parseId('01890a5d-ac96-774b-bcce-b302099a0011');
const SEG_B = parseId('01890a5d-ac96-774b-bcce-b302099a0012');
const PORT_B = parseId('01890a5d-ac96-774b-bcce-b302099a0022');
const GROUP_B = parseId('01890a5d-ac96-774b-bcce-b302099a0032');
const UNSEEN_A = parseId('01890a5d-ac96-774b-bcce-b302099a0041');
const UNSEEN_B = parseId('01890a5d-ac96-774b-bcce-b302099a0042');
const MISSING = parseId('01890a5d-ac96-774b-bcce-b302099a0099');

const principal = (role: Role, fields: Partial<Principal> = {}): Principal => ({
  tokenId: parseId('01890a5d-ac96-774b-bcce-b302099a0100'),
  name: `${role}-token`,
  role,
  tenantId: role === 'tenant' ? A : null,
  hostIds: null,
  allowVniPinning: false,
  ...fields,
});
const tenantA = principal('tenant');
const OTHER_ROLES: Role[] = ['admin', 'operator', 'migration-hook', 'auditor'];

const segment = (id: string, tenantId: string) => ({ id, tenantId, name: 'web', vni: 5000, vlanId: null, cidr: null, createdAt: 't0' });

/** A scope over a view that knows SEG_A, SEG_B, PORT_B and GROUP_B, and a Redis holding UNSEEN_A and UNSEEN_B (segments) too. */
function scopeWith(): { scope: TenantScope; hget: jest.Mock } {
  const state: ViewState = emptyViewState();
  state.segments.set(SEG_A, segment(SEG_A, A));
  state.segments.set(SEG_B, segment(SEG_B, B));
  state.ports.set(PORT_B, portRecord({ id: PORT_B, tenantId: B }));
  state.securityGroups.set(GROUP_B, { id: GROUP_B, tenantId: B, name: 'g', description: null, isDefault: false, rules: [], createdAt: 't0', updatedAt: 't0' });
  const keys = keysFor('unit');
  const redis: Record<string, string> = { [UNSEEN_A]: JSON.stringify(segment(UNSEEN_A, A)), [UNSEEN_B]: JSON.stringify(segment(UNSEEN_B, B)) };
  const hget = jest.fn(async (hash: string, id: string) => (hash === keys.segments() ? (redis[id] ?? null) : null));
  const store = { keys, read: jest.fn(async (fn: (r: unknown) => Promise<unknown>) => fn({ hget })) } as unknown as RedisStore;
  const view = { current: state } as unknown as MaterializedView;
  return { scope: new TenantScope(view, store), hget };
}

describe('tenantOf', () => {
  it("is a tenant token's tenant, and null (every tenant) for every other role", () => {
    expect(tenantOf(tenantA)).toBe(A);
    for (const role of OTHER_ROLES) {
      expect(tenantOf(principal(role))).toBeNull();
    }
  });

  it('fails closed for a tenant token without a tenant', () => {
    expect(() => tenantOf(principal('tenant', { tenantId: null }))).toThrow(expect.objectContaining({ code: ErrorCode.Forbidden }));
  });
});

describe('TenantScope', () => {
  it("answers another tenant's id, named in a path or a body, as a tenant that does not exist", () => {
    const { scope } = scopeWith();
    expect(() => scope.tenant(tenantA, A)).not.toThrow();
    expect(() => scope.tenant(tenantA, B)).toThrow(expect.objectContaining({ code: ErrorCode.TenantNotFound, field: 'id', message: `no tenant ${B}` }));
    expect(() => scope.tenant(tenantA, B, 'tenantId')).toThrow(expect.objectContaining({ code: ErrorCode.TenantNotFound, field: 'tenantId', message: `no tenant ${B}` }));
    for (const role of OTHER_ROLES) {
      expect(() => scope.tenant(principal(role), B)).not.toThrow();
    }
  });

  it("answers another tenant's segment, port or group as missing, with the service's words; its own and missing ones pass", async () => {
    const { scope, hget } = scopeWith();
    await expect(scope.own(tenantA, 'segment', SEG_A)).resolves.toBeUndefined();
    await expectOverlayError(scope.own(tenantA, 'segment', SEG_B), ErrorCode.SegmentNotFound, 'id');
    await expect(scope.own(tenantA, 'segment', SEG_B)).rejects.toThrow(`no segment ${SEG_B}`);
    await expect(scope.own(tenantA, 'port', PORT_B)).rejects.toMatchObject({ code: ErrorCode.PortNotFound, message: `no port ${PORT_B}`, field: 'id' });
    await expect(scope.own(tenantA, 'securityGroup', GROUP_B)).rejects.toMatchObject({ code: ErrorCode.SecurityGroupNotFound, message: `no security group ${GROUP_B}`, field: 'id' });
    // What the view knows costs no read.
    expect(hget).not.toHaveBeenCalled();
    // Missing everywhere: the service answers it.
    await expect(scope.own(tenantA, 'port', MISSING)).resolves.toBeUndefined();
  });

  it('reads Redis for an object this replica has not seen yet', async () => {
    const { scope, hget } = scopeWith();
    await expect(scope.own(tenantA, 'segment', UNSEEN_A)).resolves.toBeUndefined();
    await expectOverlayError(scope.own(tenantA, 'segment', UNSEEN_B), ErrorCode.SegmentNotFound, 'id');
    expect(hget).toHaveBeenCalledTimes(2);
  });

  it('costs every other role nothing', async () => {
    const { scope, hget } = scopeWith();
    for (const role of OTHER_ROLES) {
      await scope.own(principal(role), 'segment', SEG_B);
      await scope.own(principal(role), 'segment', UNSEEN_B);
    }
    expect(hget).not.toHaveBeenCalled();
  });

  it("confines a tenant's lists to its tenant; asking for another shows nothing, as for a tenant that does not exist", () => {
    const { scope } = scopeWith();
    expect(scope.list(tenantA, undefined)).toEqual({ tenantId: A });
    expect(scope.list(tenantA, A)).toEqual({ tenantId: A });
    expect(scope.list(tenantA, B)).toBeNull();
    expect(scope.list(principal('operator'), undefined)).toEqual({ tenantId: undefined });
    expect(scope.list(principal('auditor'), B)).toEqual({ tenantId: B });
  });

  it('lets a tenant pin a VNI only with allowVniPinning, and says what is needed', () => {
    const { scope } = scopeWith();
    expect(() => scope.vniPinning(tenantA, undefined)).not.toThrow();
    expect(() => scope.vniPinning(tenantA, 5000)).toThrow(expect.objectContaining({ code: ErrorCode.Forbidden, field: 'vni', message: expect.stringContaining('allowVniPinning') }));
    expect(() => scope.vniPinning(principal('tenant', { allowVniPinning: true }), 5000)).not.toThrow();
    expect(() => scope.vniPinning(principal('operator'), 5000)).not.toThrow();
  });
});

describe('confineError', () => {
  // The words the script writes (security-group.lua.ts), rebuilt here from its text.
  const mismatch = (group: string, field: string) => {
    expect(luaSecurityGroupHelpers).toContain(`'security group ' .. id .. ' belongs to another tenant than ' .. tenantId`);
    return new OverlayError(ErrorCode.SecurityGroupTenantMismatch, `security group ${group} belongs to another tenant than ${A}`, { field });
  };

  it("turns another tenant's security group into the missing group the script names, with its field", () => {
    expect(confineError(tenantA, mismatch(GROUP_B, 'ports[2].securityGroupIds[1]'))).toEqual(
      new OverlayError(ErrorCode.SecurityGroupNotFound, `no security group ${GROUP_B}`, { field: 'ports[2].securityGroupIds[1]' }),
    );
    const confined = confineError(tenantA, mismatch(GROUP_B, 'rules[3].remoteGroupId'));
    expect(confined.toJSON()).toEqual({ code: ErrorCode.SecurityGroupNotFound, message: `no security group ${GROUP_B}`, field: 'rules[3].remoteGroupId' });
  });

  it("turns another tenant's port in a mirror session into the missing port, with its field", () => {
    const port = new OverlayError(ErrorCode.PortTenantMismatch, `port ${SEG_B} belongs to another tenant than ${A}`, { field: 'sources[4].portId' });
    expect(confineError(tenantA, port).toJSON()).toEqual({ code: ErrorCode.PortNotFound, message: `no port ${SEG_B}`, field: 'sources[4].portId' });
    const session = new OverlayError(ErrorCode.VniTaken, `VNI 5000 is in use by mirror session ${SEG_B}`, { field: 'sink.vni' });
    expect(confineError(tenantA, session).toJSON()).toEqual({ code: ErrorCode.VniTaken, message: 'VNI 5000 is in use', field: 'sink.vni' });
  });

  it('drops the segment holding a VNI or a VLAN for a tenant', () => {
    const vni = new OverlayError(ErrorCode.VniTaken, `VNI 5000 is in use by segment ${SEG_B}`, { field: 'vni' });
    const vlan = new OverlayError(ErrorCode.VlanTaken, `VLAN 100 is in use by segment ${SEG_B}`, { field: 'vlanId' });
    expect(confineError(tenantA, vni).toJSON()).toEqual({ code: ErrorCode.VniTaken, message: 'VNI 5000 is in use', field: 'vni' });
    expect(confineError(tenantA, vlan).toJSON()).toEqual({ code: ErrorCode.VlanTaken, message: 'VLAN 100 is in use', field: 'vlanId' });
  });

  it("tells a tenant only that the host does not carry the segment's VLAN, not what its switch ports carry", () => {
    const error = new OverlayError(ErrorCode.VlanNotTrunked, "segment s is on VLAN 401, which eth0's switch port of host hv-7 does not carry (it carries 402; observed by LLDP from tor-a port Ethernet1 at t)", { field: 'hostId' });
    expect(confineError(tenantA, error).toJSON()).toEqual({ code: ErrorCode.VlanNotTrunked, message: "the host is not known to carry the segment's VLAN", field: 'hostId' });
    expect(confineError(principal('operator'), error)).toBe(error);
  });

  it('leaves every other role, and every other error, as they are', () => {
    const errors = [mismatch(GROUP_B, 'securityGroupIds[0]'), new OverlayError(ErrorCode.VniTaken, `VNI 5000 is in use by segment ${SEG_B}`, { field: 'vni' })];
    for (const role of OTHER_ROLES) {
      for (const error of errors) {
        expect(confineError(principal(role), error)).toBe(error);
      }
    }
    expect(confineError(undefined, errors[0])).toBe(errors[0]);
    const other = new OverlayError(ErrorCode.DuplicateMac, 'MAC 02:00:00:00:00:01 is already used on this segment by port x', { field: 'mac' });
    expect(confineError(tenantA, other)).toBe(other);
  });
});
