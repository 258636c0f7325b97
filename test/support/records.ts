import { systemActor } from '../../src/controller/auth/principal';
import type { Port } from '../../src/controller/model/port';

/** A stored port record for unit specs: unbound, no VM, port security on with no groups; `fields` override. */
export function portRecord(fields: Partial<Port> & Pick<Port, 'id'>): Port {
  return {
    segmentId: 'segment-1',
    tenantId: 'tenant-1',
    vmId: null,
    mac: '02:00:00:00:00:01',
    ips: [],
    hostId: null,
    securityGroupIds: [],
    portSecurity: true,
    allowedAddressPairs: [],
    migration: null,
    createdAt: 't0',
    updatedAt: 't0',
    ...fields,
  };
}

/** The actor the services' unit specs write as (a route passes its caller's). */
export const TEST_ACTOR = systemActor('test');
