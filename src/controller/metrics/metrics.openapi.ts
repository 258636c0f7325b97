import type { ApiDescription } from '../http/openapi';

/** The route of MetricsController. */
export const metricsApi: ApiDescription = {
  paths: {
    '/metrics': {
      get: {
        operationId: 'getMetrics',
        tags: ['metrics'],
        summary: 'Prometheus metrics',
        description: "Prometheus' text exposition format (0.0.4). Per-replica metrics, and deployment-wide ones (`overlay_host_*`, `overlay_migrations`, `overlay_vni_pool`) that every replica reports alike; see docs/operations.md, Metrics.",
        responses: { '200': { description: 'the metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
        errors: [],
      },
    },
  },
  schemas: {},
};
