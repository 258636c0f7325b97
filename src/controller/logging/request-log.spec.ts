import type { FastifyReply, FastifyRequest } from 'fastify';
import { PassThrough } from 'node:stream';
import { createLog, jsonLineTarget } from '../../common/logger';
import type { Principal } from '../auth/principal';
import { requestIdOf, requestLine, requestLineJson } from './request-log';

describe('requestIdOf', () => {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it("takes a client's well-formed x-request-id as it is", () => {
    for (const id of ['abc', '0f8fad5b-d9cb-469f-a165-70867728950e', 'trace:4bf92f3577b34da6a3ce929d0e0e4736/00f067aa0ba902b7', 'YWJj+/=_~.-', 'x'.repeat(128)]) {
      expect(requestIdOf({ headers: { 'x-request-id': id } })).toBe(id);
    }
  });

  it('makes a new one when there is none, or it is too long, has unsafe characters or comes twice', () => {
    for (const given of [undefined, '', 'x'.repeat(129), 'a b', 'a"b', 'a\nb', '{"level":"fatal"}', 'ä', ['a', 'b']]) {
      expect(requestIdOf({ headers: { 'x-request-id': given } })).toMatch(UUID);
    }
  });
});

describe("the request's line", () => {
  const FIXED_TIME = ',"time":"2026-12-06T07:00:00.123Z"';
  const logTo = (lines: string[]) =>
    createLog({ logFormat: 'json', logLevel: 'debug' }, 'overlayd', { write: (line: string) => void lines.push(line) }).child({ component: 'http' });
  const principal: Principal = { tokenId: '0193c7a2-5b4e-7c1d-9e2f-123456789012' as Principal['tokenId'], name: 'bench', role: 'admin', tenantId: null, hostIds: null, allowVniPinning: false };
  const cases: [string, Partial<FastifyRequest>, Partial<FastifyReply>][] = [
    ['a create', { id: 'r1', method: 'POST', url: '/v1/ports', routeOptions: { url: '/v1/ports' } as never, principal, ip: '127.0.0.1' }, { statusCode: 201, elapsedTime: 12.345 }],
    ['no route, a query and odd characters', { id: 'r2', method: 'GET', url: '/v1/x"y\\z\u0001\u00e9?token=secret', routeOptions: {} as never, ip: '::1' }, { statusCode: 404, elapsedTime: 0.04 }],
    ['a long path', { id: 'r3', method: 'DELETE', url: `/v1/${'a'.repeat(500)}`, routeOptions: {} as never, ip: '10.0.0.1' }, { statusCode: 401, elapsedTime: 1 }],
    ['a token name with quotes and unicode, a 5xx', { id: 'r4', method: 'PUT', url: '/v1/ports/p', routeOptions: { url: '/v1/ports/:portId' } as never, principal: { ...principal, name: 'a "b" \\ ä 😀 \n', tokenId: null as never }, ip: '127.0.0.1' }, { statusCode: 503, elapsedTime: 250.06 }],
    ['no source (the socket gone), a duration that is not a number', { id: 'r5', method: 'GET', url: '/health', routeOptions: { url: '/health' } as never, ip: undefined }, { statusCode: 200, elapsedTime: NaN }],
  ];

  it.each(cases)("is pino's line to the byte: %s", (_name, request, reply) => {
    const lines: string[] = [];
    const log = logTo(lines);
    const target = jsonLineTarget(log)!;
    expect(target).toBeDefined();
    const fields = requestLine(request as FastifyRequest, reply as FastifyReply);
    log.info(fields, `${request.method} ${(fields.route as string | null) ?? fields.path} ${reply.statusCode} ${fields.durationMs as number} ms`);
    const byPino = lines[0].replace(/,"time":"[^"]*"/, FIXED_TIME);
    const made = requestLineJson('info', FIXED_TIME, target.bindings, request as FastifyRequest, reply as FastifyReply);
    expect(made).toBe(byPino);
    expect(JSON.parse(made)).toEqual(JSON.parse(byPino));
  });

  it('is left to pino (and pino-pretty) in the text format', () => {
    const text = createLog({ logFormat: 'text', logLevel: 'debug' }, 'overlayd', new PassThrough()).child({ component: 'http' });
    expect(jsonLineTarget(text)).toBeUndefined();
  });
});
