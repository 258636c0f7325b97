import type { FastifyInstance } from 'fastify';
import type { Histogram } from 'prom-client';

/** The route label of a request no route matched (404): never its URL, which the caller chooses. */
export const UNMATCHED = 'unmatched';

/**
 * Records every answered request (Fastify `onResponse`: refusals by the authentication hook and
 * 404s included) by method, route pattern (`/v1/ports/:id`, as the route table names it) and
 * status. The labels take a bounded set of values: the routes served, the methods Node's parser
 * accepts, the statuses the server answers.
 */
export function recordHttpRequests(fastify: FastifyInstance, requests: Histogram<'method' | 'route' | 'status'>): void {
  fastify.addHook('onResponse', (request, reply, done) => {
    requests.observe({ method: request.method, route: request.routeOptions.url ?? UNMATCHED, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });
}
