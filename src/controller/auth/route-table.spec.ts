import { Controller, Delete, Get, Post } from '@nestjs/common';
import { apiRoutes, buildOpenApiDocument, pageRoutes } from '../app.module';
import { Allow, allows, Public } from './access';
import { ROLES } from './principal';
import { openApiPath, routeKey, routeTable } from './route-table';

describe('routeTable', () => {
  @Controller('v1/things')
  class ThingController {
    @Get()
    @Allow('auditor')
    list() {}

    @Delete(':id')
    remove() {}

    @Post([':id/a', ':id/b'])
    @Allow('operator')
    act() {}

    helper() {}
  }

  @Controller()
  class RootController {
    @Get('ping')
    @Public()
    ping() {}
  }

  it('reads every handler of every controller: method, joined path pattern, name and declaration', () => {
    const table = routeTable([ThingController, RootController]).map(({ method, path, name, access }) => ({ method, path, name, access }));
    expect(table).toEqual([
      { method: 'GET', path: '/v1/things', name: 'ThingController.list', access: { public: false, roles: ['admin', 'auditor'] } },
      { method: 'DELETE', path: '/v1/things/:id', name: 'ThingController.remove', access: undefined },
      { method: 'POST', path: '/v1/things/:id/a', name: 'ThingController.act', access: { public: false, roles: ['admin', 'operator'] } },
      { method: 'POST', path: '/v1/things/:id/b', name: 'ThingController.act', access: { public: false, roles: ['admin', 'operator'] } },
      { method: 'GET', path: '/ping', name: 'RootController.ping', access: { public: true } },
    ]);
  });

  it('names paths the OpenAPI way', () => {
    expect(openApiPath('/v1/migrations/:id/commit')).toBe('/v1/migrations/{id}/commit');
    expect(openApiPath('/healthz')).toBe('/healthz');
  });
});

describe("the API's route table", () => {
  const routes = apiRoutes();

  it('lists the routes, each once', () => {
    expect(routes.length).toBeGreaterThan(30);
    const keys = routes.map(routeKey);
    expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
  });

  it('has a declaration (@Allow or @Public) on every route', () => {
    expect(routes.filter((r) => r.access === undefined).map((r) => `${routeKey(r)} (${r.name})`)).toEqual([]);
  });

  it('makes only health and readiness public', () => {
    expect(routes.filter((r) => r.access?.public).map(routeKey).sort()).toEqual(['GET /healthz', 'GET /readyz']);
  });

  it('serves the status page beside it: public routes under /ui, no token needed, not in the OpenAPI document', () => {
    expect(pageRoutes().map((r) => `${routeKey(r)} ${r.access?.public ? 'public' : 'not public'}`)).toEqual(['GET /ui public', 'GET /ui/:file public']);
    const doc = buildOpenApiDocument(10_000) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/ui'))).toEqual([]);
  });

  it('is exactly the set of operations the OpenAPI document describes', () => {
    const doc = buildOpenApiDocument(10_000) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`));
    const served = routes.map((r) => `${r.method} ${openApiPath(r.path)}`);
    expect({ undocumented: served.filter((r) => !documented.includes(r)), notServed: documented.filter((o) => !served.includes(o)) }).toEqual({ undocumented: [], notServed: [] });
  });

  // The policy itself, written out once more on purpose: changing who may call a route must change this too.
  it('grants each role what the roles table says', () => {
    const A = 'admin';
    const O = 'operator';
    const T = 'tenant';
    const H = 'migration-hook';
    const R = 'auditor';
    const M = 'metrics';
    const granted = Object.fromEntries(routes.map((r) => [routeKey(r), r.access?.public ? 'public' : ROLES.filter((role) => allows(r.access, role)).join(' ')]));
    expect(granted).toEqual({
      'GET /healthz': 'public',
      'GET /readyz': 'public',
      'POST /v1/tenants': [A, O].join(' '),
      'GET /v1/tenants': [A, O, T, R].join(' '),
      'GET /v1/tenants/:id': [A, O, T, R].join(' '),
      'DELETE /v1/tenants/:id': [A, O].join(' '),
      'POST /v1/segments': [A, O, T].join(' '),
      'GET /v1/segments': [A, O, T, R].join(' '),
      'GET /v1/segments/:id': [A, O, T, R].join(' '),
      'DELETE /v1/segments/:id': [A, O, T].join(' '),
      'GET /v1/segments/:id/mappings': [A, O, R].join(' '),
      'POST /v1/hosts': [A, O].join(' '),
      'GET /v1/hosts': [A, O, H, R].join(' '),
      'GET /v1/hosts/:id': [A, O, H, R].join(' '),
      'PATCH /v1/hosts/:id': [A, O].join(' '),
      'DELETE /v1/hosts/:id': [A, O].join(' '),
      'POST /v1/ports': [A, O, T].join(' '),
      'POST /v1/ports/batch': [A, O, T].join(' '),
      'GET /v1/ports': [A, O, T, H, R].join(' '),
      'GET /v1/ports/:id': [A, O, T, H, R].join(' '),
      'PATCH /v1/ports/:id': [A, O, T].join(' '),
      'DELETE /v1/ports/:id': [A, O, T].join(' '),
      'POST /v1/security-groups': [A, O, T].join(' '),
      'GET /v1/security-groups': [A, O, T, R].join(' '),
      'GET /v1/security-groups/:id': [A, O, T, R].join(' '),
      'PUT /v1/security-groups/:id': [A, O, T].join(' '),
      'PATCH /v1/security-groups/:id': [A, O, T].join(' '),
      'DELETE /v1/security-groups/:id': [A, O, T].join(' '),
      'POST /v1/mirror-sessions': [A, O, T].join(' '),
      'GET /v1/mirror-sessions': [A, O, T, R].join(' '),
      'GET /v1/mirror-sessions/:id': [A, O, T, R].join(' '),
      'PATCH /v1/mirror-sessions/:id': [A, O, T].join(' '),
      'DELETE /v1/mirror-sessions/:id': [A, O, T].join(' '),
      'POST /v1/migrations': [A, O, H].join(' '),
      'GET /v1/migrations': [A, O, H, R].join(' '),
      'GET /v1/migrations/:id': [A, O, H, R].join(' '),
      'POST /v1/migrations/:id/commit': [A, O, H].join(' '),
      'POST /v1/migrations/:id/abort': [A, O, H].join(' '),
      'POST /v1/tokens': A,
      'GET /v1/tokens': [A, R].join(' '),
      'GET /v1/tokens/:id': [A, R].join(' '),
      'DELETE /v1/tokens/:id': A,
      'GET /v1/events': [A, R].join(' '),
      'GET /v1/audit': [A, O, R].join(' '),
      'GET /v1/audit/findings': [A, O, R].join(' '),
      'GET /metrics': [A, O, R, M].join(' '),
      'GET /v1/admin/recovery': [A, O, R].join(' '),
      'POST /v1/admin/recovery/accept': A,
    });
  });
});
