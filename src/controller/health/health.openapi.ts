import type { ApiDescription } from '../http/openapi';

/** The routes of HealthController (public: `security: []` comes from their @Public, see http/openapi.ts). */
export const healthApi: ApiDescription = {
  paths: {
    '/healthz': { get: { tags: ['health'], summary: 'Liveness', responses: { '200': { description: 'alive' } } } },
    '/readyz': { get: { tags: ['health'], summary: 'Readiness: Redis reachable', responses: { '200': { description: 'ready' }, '503': { description: 'Redis unreachable' } } } },
  },
  schemas: {},
};
