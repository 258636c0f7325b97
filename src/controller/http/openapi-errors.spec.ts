import { ReachableCodes, REPOSITORY_ROOT } from '../../../test/support/reachable-codes';
import { apiDescriptions, apiRoutes } from '../app.module';
import { openApiPath, routeKey } from '../auth/route-table';
import { ErrorCode } from '../errors';

/**
 * The codes each operation declares as its own (`errors` in its *.openapi.ts) are codes its route
 * can answer with: each is reachable from the route's handler in the source (an over-approximation,
 * see ReachableCodes). The other direction, a code a route answers with that its operation does
 * not document, is checked on every answer the medium tests get (test/support/api-contract.ts).
 */
describe('the error codes each operation declares', () => {
  const reachable = new ReachableCodes(REPOSITORY_ROOT);
  const handlers = new Map(apiRoutes().map((r) => [routeKey({ method: r.method.toLowerCase(), path: openApiPath(r.path) }), r.name]));
  const declared = apiDescriptions(10_000).flatMap((description) =>
    Object.entries(description.paths).flatMap(([path, operations]) => Object.entries(operations).map(([method, operation]) => ({ key: routeKey({ method, path }), operation }))),
  );

  it.each(declared.map(({ key, operation }) => [`${operation.operationId} (${key})`, key, operation.errors] as const))('%s: are all reachable from its handler', (_name, key, errors) => {
    const handler = handlers.get(key);
    expect(handler).toBeDefined();
    const codes = reachable.ofHandler(handler!);
    expect(errors.filter((code) => !codes.has(code))).toEqual([]);
  });

  it('does not find codes where there are none (the analysis can fail)', () => {
    const health = reachable.ofHandler('HealthController.healthz');
    expect([...health]).toEqual([]);
    const deleteToken = reachable.ofHandler('TokenController.delete');
    expect(deleteToken.has(ErrorCode.LastAdminToken)).toBe(true);
    expect(deleteToken.has(ErrorCode.MigrationNotReady)).toBe(false);
  });
});
