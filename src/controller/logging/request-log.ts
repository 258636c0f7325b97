import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { ProcessLog } from '../../common/logger';

export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * A client's request id, taken as it is when it is one header of 1-128 characters that cannot
 * break a log line or a header (letters, digits and `._~:/+=-`: UUIDs, trace ids, base64);
 * anything else is replaced, not repaired.
 */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._~:/+=-]{1,128}$/;

/** The id of a request (Fastify's `genReqId`): the client's x-request-id when well formed, else a new UUID. */
export function requestIdOf(raw: Pick<IncomingMessage, 'headers'>): string {
  const given = raw.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && CLIENT_REQUEST_ID.test(given) ? given : randomUUID();
}

/** Fastify's options for request ids: ours (requestIdOf), never its own reading of a header. */
export const requestIdOptions = { genReqId: requestIdOf, requestIdHeader: false as const };

/** A path long enough to recognize, short enough that a hostile URL does not fill the log. */
const MAX_LOGGED_PATH = 200;

/** The fields of a request's line: route template (never the URL with its ids and query), status, duration, the caller once authenticated. */
export function requestLine(request: FastifyRequest, reply: FastifyReply): Record<string, unknown> {
  const route = request.routeOptions.url;
  const principal = request.principal;
  return {
    reqId: request.id,
    method: request.method,
    route: route ?? null,
    // Only when no route matched: what was asked, without its query string.
    ...(route === undefined && { path: request.url.split('?')[0].slice(0, MAX_LOGGED_PATH) }),
    status: reply.statusCode,
    durationMs: Math.round(reply.elapsedTime * 10) / 10,
    ...(principal && { actor: { tokenId: principal.tokenId, name: principal.name, role: principal.role } }),
    source: request.ip,
  };
}

/**
 * One line a request, when its answer has been sent: `GET /v1/ports/:portId 200 3.1 ms` with
 * the fields of requestLine, at info (error for a 5xx). Probes and the OpenAPI document (paths
 * outside /v1) at debug: a load balancer asking every second must not drown the API's lines.
 * Every answer carries its request id in x-request-id, set before authentication runs so a 401
 * has it too (the hook is registered before any other).
 */
export function registerRequestLog(fastify: FastifyInstance, log: ProcessLog): void {
  // The line's fields are requestLine's, none of them named as a secret (REDACTED_KEYS): the
  // process log's redaction walk, the net under every other line, is left out of this one (the
  // same line, a walk less per request).
  const http = log.child({ component: 'http' }, { formatters: { log: (fields: object) => fields } });
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    const fields = requestLine(request, reply);
    const level = reply.statusCode >= 500 ? 'error' : (request.routeOptions.url ?? request.url).startsWith('/v1') ? 'info' : 'debug';
    if (http.isLevelEnabled(level)) {
      http[level](fields, `${request.method} ${(fields.route as string | null) ?? fields.path} ${reply.statusCode} ${fields.durationMs as number} ms`);
    }
    done();
  });
}
