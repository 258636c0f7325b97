import { json, record, type ApiDescription } from '../http/openapi';

const status = (status: string, redis?: string) =>
  json(record({ status: { type: 'string', enum: [status] }, ...(redis ? { redis: { type: 'string', enum: [redis] } } : {}) }));

/** The routes of HealthController (public: `security: []` comes from their @Public, see http/openapi.ts). */
export const healthApi: ApiDescription = {
  paths: {
    '/healthz': { get: { operationId: 'getLiveness', tags: ['health'], summary: 'Liveness', responses: { '200': { description: 'alive', ...status('ok') } }, errors: [] } },
    '/readyz': {
      get: {
        operationId: 'getReadiness',
        tags: ['health'],
        summary: 'Readiness: Redis reachable (and whether the store is in recovery: still ready, so that the API stays reachable)',
        responses: {
          '200': {
            description: 'ready; `store: recovery` while the store is in recovery (see GET /v1/admin/recovery)',
            ...json(record({ status: { type: 'string', enum: ['ready'] }, redis: { type: 'string', enum: ['ok'] }, store: { type: 'string', enum: ['recovery'] } }, { optional: ['store'] })),
          }, '503': { description: 'Redis unreachable', ...status('not ready', 'unreachable') } },
        errors: [],
      },
    },
  },
  schemas: {},
};
