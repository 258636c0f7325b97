/**
 * Code written against the client types openapi-typescript generates from the OpenAPI document
 * (src/generated/openapi/overlayd.ts): it compiles (`npm run lint`, and openapi.spec.ts with the
 * types generated again) only while the document gives a client what it needs. Each
 * `@ts-expect-error` is a check: if the document loosened (a field optional, a code enum gone),
 * the line would compile and the directive itself would be the error. Types only: nothing here runs.
 */
import type { components, operations } from '../../generated/openapi/overlayd';

type JsonOf<R> = R extends { content: { 'application/json': infer B } } ? B : never;
/** The JSON an operation answers with, by status. */
type Answer<O extends keyof operations, S extends keyof operations[O]['responses']> = JsonOf<operations[O]['responses'][S]>;
/** The JSON body an operation takes. */
type Body<O extends keyof operations> = operations[O] extends { requestBody: { content: { 'application/json': infer B } } } ? B : never;
type Port = components['schemas']['port'];

// Request bodies require what the validator requires, and nothing else.
export const minimalPort: Body<'createPort'> = { segmentId: '01a21ab0-1e93-7a10-b2c4-7d9e0f1a2b3c' };
// @ts-expect-error segmentId is required
export const portWithoutSegment: Body<'createPort'> = { mac: '02:00:00:00:00:01' };
// @ts-expect-error a port's role is vm or analyzer
export const badRole: Body<'createPort'> = { segmentId: 'x', role: 'router' };
export const unbind: Body<'updatePort'> = { hostId: null };

// Answers: what the API always returns is not optional; null is said where it means "none".
export const macOf = (port: Answer<'getPort', 200>): string => port.mac;
export const hostOf = (port: Port): string | null => port.hostId;
// @ts-expect-error hostId may be null (an unbound port)
export const boundHostOf = (port: Port): string => port.hostId;
// @ts-expect-error `realized` is there only on a GET of one port or a write that waited
export const realizedOf = (port: Port): boolean => port.realized;
export const nextPage = (page: Answer<'listPorts', 200>): string | null => page.nextCursor;
export const lagOf = (host: Answer<'getHost', 200>): number => host.lag;
// @ts-expect-error a host as written (POST, PATCH) carries no agent status
export const lagAfterCreate = (host: Answer<'createHost', 201>): number => host.lag;
export const tokenOnce = (made: Answer<'createToken', 201>): string => made.token;

// A mirror session's sink is one of four shapes, told apart by `type`.
export function sinkTarget(session: components['schemas']['mirrorSession']): string {
  switch (session.sink.type) {
    case 'port':
      return session.sink.portId;
    case 'vxlan':
    case 'erspan':
      return session.sink.remoteIp;
    case 'uplink':
      return `${session.sink.hostId}/${session.sink.interface}`;
  }
}

// Errors: each status of each operation names exactly the codes it can answer with.
export const duplicateMac: Answer<'createPort', 409>['code'] = 'DUPLICATE_MAC';
// @ts-expect-error creating a port is never refused for a tenant's segments
export const notForPorts: Answer<'createPort', 409>['code'] = 'TENANT_HAS_SEGMENTS';
export const missingSegment: Answer<'createPort', 404>['code'] = 'SEGMENT_NOT_FOUND';
export const invalidMac: Answer<'createPort', 400>['code'] = 'INVALID_MAC';
export const unauthenticated: Answer<'createPort', 401>['code'] = 'UNAUTHENTICATED';
export const tenantInUse: Answer<'deleteTenant', 409>['code'] = 'TENANT_HAS_SEGMENTS';
// @ts-expect-error a read takes no body, so it is never refused as one
export const readWithBody: Answer<'getPort', 400>['code'] = 'INVALID_JSON';
export const refusal = (error: Answer<'deleteHost', 409>): { code: string; message: string; field?: string } => error;
