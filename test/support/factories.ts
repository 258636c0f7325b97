import type { api, ApiResponse } from './controller-harness';

type Fields = Record<string, unknown>;

/** The body of a create, after checking it was one (201); on another status the assertion shows the answer. */
export async function created(res: Promise<ApiResponse>): Promise<any> {
  const r = await res;
  expect({ status: r.status, body: r.body }).toMatchObject({ status: 201 });
  return r.body;
}

/**
 * Resources created through the REST API, as medium tests set up their state. Each has sensible
 * defaults (unique names, a VTEP of its own for a host), so a
 * test writes only the fields it is about; every create must answer 201 (see `created`).
 */
export function factories(client: ReturnType<typeof api>) {
  let n = 0;
  return {
    tenant: (fields: Fields = {}) => created(client.post('/v1/tenants', { name: `tenant-${++n}`, ...fields })),
    segment: (tenantId: string, fields: Fields = {}) => created(client.post('/v1/segments', { tenantId, name: `segment-${++n}`, ...fields })),
    /** VTEPs from 198.51.100.0/24 (TEST-NET-2), apart from the 192.0.2.x that tests name themselves. */
    host: (fields: Fields = {}) => created(client.post('/v1/hosts', { name: `hv-${++n}`, vtepIp: `198.51.100.${n % 250 + 1}`, ...fields })),
    port: (segmentId: string, fields: Fields = {}) => created(client.post('/v1/ports', { segmentId, ...fields })),
    securityGroup: (tenantId: string, fields: Fields = {}) => created(client.post('/v1/security-groups', { tenantId, name: `group-${++n}`, ...fields })),
  };
}
