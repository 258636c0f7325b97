import type { ApiDescription } from '../http/openapi';

/** The routes of HealthController. */
export const healthApi: ApiDescription = {
  paths: {
    '/healthz': { get: { tags: ['health'], summary: 'Liveness', security: [], responses: { '200': { description: 'alive' } } } },
    '/readyz': { get: { tags: ['health'], summary: 'Readiness: Redis reachable', security: [], responses: { '200': { description: 'ready' }, '503': { description: 'Redis unreachable' } } } },
  },
  schemas: {},
};
