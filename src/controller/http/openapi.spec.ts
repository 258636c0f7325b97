import { apiRoutes, buildOpenApiDocument } from '../app.module';
import { rolesOf } from '../auth/access';
import { openApiPath, routeKey } from '../auth/route-table';
import { querySpecOf } from './query';

interface Operation {
  description?: string;
  parameters?: { name: string; in: string }[];
  security?: unknown[];
  responses: Record<string, { description: string }>;
  'x-roles'?: string[];
}

/** Every route of the API (the route table), with the query parameters it declares. */
function routes(): { method: string; path: string; query: string[]; route: ReturnType<typeof apiRoutes>[number] }[] {
  return apiRoutes().map((route) => ({ method: route.method.toLowerCase(), path: openApiPath(route.path), query: Object.keys(querySpecOf(route.handler)).sort(), route }));
}

describe('the OpenAPI document', () => {
  const doc = buildOpenApiDocument(10_000) as { paths: Record<string, Record<string, Operation>>; security: unknown; components: { securitySchemes: unknown } };

  it('finds the routes (the reflection below sees the controllers)', () => {
    expect(routes().length).toBeGreaterThan(25);
  });

  it.each(routes().map((r) => [`${r.method.toUpperCase()} ${r.path}`, r] as const))('documents %s with exactly the query parameters it takes', (_name, route) => {
    const operation = doc.paths[route.path]?.[route.method];
    expect(operation).toBeDefined();
    const documented = (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name).sort();
    expect(documented).toEqual(route.query);
  });

  it('documents no route the controllers do not serve', () => {
    const served = new Set(routes().map((r) => `${r.method} ${r.path}`));
    const documented = Object.entries(doc.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method} ${path}`));
    expect(documented.filter((operation) => !served.has(operation))).toEqual([]);
  });

  it('declares the bearer scheme, required by every operation unless it says otherwise', () => {
    expect(doc.components.securitySchemes).toEqual({ bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }) });
    expect(doc.security).toEqual([{ bearer: [] }]);
  });

  const byAccess = routes().map((r) => [routeKey(r.route), r] as const);

  it.each(byAccess.filter(([, r]) => !r.route.access?.public))('states who may call %s: x-roles, a sentence, 401 and 403', (_name, r) => {
    const operation = doc.paths[r.path][r.method];
    const roles = rolesOf(r.route.access);
    expect(operation['x-roles']).toEqual(roles);
    expect(operation.security).toBeUndefined();
    const sentence = /Roles: ([^.]+)\.$/.exec(operation.description ?? '');
    // Without the scopes in parentheses, the sentence lists exactly the declared roles.
    expect(sentence?.[1].replace(/ \([^)]*\)/g, '').split(', ')).toEqual(roles);
    expect(operation.responses['401'].description).toMatch(/^UNAUTHENTICATED/);
    expect(operation.responses['403'].description).toMatch(/^FORBIDDEN/);
  });

  it.each(byAccess.filter(([, r]) => r.route.access?.public))('makes %s public: no security, no 401 or 403, no roles', (_name, r) => {
    const operation = doc.paths[r.path][r.method];
    expect(operation.security).toEqual([]);
    expect(operation['x-roles']).toBeUndefined();
    expect(Object.keys(operation.responses)).not.toEqual(expect.arrayContaining(['401']));
    expect(Object.keys(operation.responses)).not.toEqual(expect.arrayContaining(['403']));
    expect(operation.description).toBe('No token needed.');
  });

  it("says each role's scope where it has one, and keeps an operation's own description first", () => {
    expect(doc.paths['/v1/ports/{id}'].get.description).toBe('Roles: admin, operator, tenant (own tenant only), migration-hook, auditor.');
    expect(doc.paths['/v1/migrations/{id}/commit'].post.description).toMatch(/^Needs the destination acknowledged .*\n\nRoles: admin, operator, migration-hook \(its hosts' migrations only, when the token names hosts\)\.$/s);
    expect(doc.paths['/v1/tokens'].post['x-roles']).toEqual(['admin']);
  });

  it('is the same document each time it is built (the shared descriptions are not changed)', () => {
    expect(buildOpenApiDocument(10_000)).toEqual(doc);
  });
});
