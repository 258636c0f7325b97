import type { FastifyInstance } from 'fastify';
import type { KeyedHistogram } from './keyed-histogram';

/** The route label of a request no route matched (404): never its URL, which the caller chooses. */
export const UNMATCHED = 'unmatched';

/**
 * Records every answered request (Fastify `onResponse`: refusals by the authentication hook and
 * 404s included) by method, route pattern (`/v1/ports/:id`, as the route table names it) and
 * status. The labels take a bounded set of values: the routes served, the methods Node's parser
 * accepts, the statuses the server answers.
 */
export function recordHttpRequests(fastify: FastifyInstance, requests: KeyedHistogram<'method' | 'route' | 'status'>): void {
  fastify.addHook('onResponse', (request, reply, done) => {
    const method = request.method;
    const route = request.routeOptions.url ?? UNMATCHED;
    const status = reply.statusCode;
    // Found by a key (no labels object made and hashed per request); a route never holds a space.
    requests.observeAs(`${method} ${route} ${status}`, () => ({ method, route, status: String(status) }), reply.elapsedTime / 1000);
    done();
  });
}
