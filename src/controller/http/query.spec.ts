import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ErrorCode } from '../errors';
import { integerParam, MAX_QUERY_PAIRS, parseQuery, parseQueryString, QueryGuard, QueryParams } from './query';

describe('the query string', () => {
  const spec = { limit: integerParam({ min: 1, max: 1000, description: 'items per page' }) };
  /** Every value the parser kept, repeated names counted once per value. */
  const valuesKept = (query: Record<string, unknown>) => Object.values(query).reduce<number>((n, v) => n + (Array.isArray(v) ? v.length : 1), 0);

  // The router parses a query before any token is checked: what it reads of one must be bounded.
  it.each([
    ['one name repeated', 'a=1&'.repeat(4000)],
    ['names without a value', 'a&'.repeat(8000)],
    ['undecodable names', '%ff=1&'.repeat(3000)],
    ['distinct names', Array.from({ length: 2000 }, (_, i) => `p${i}=1`).join('&')],
  ])('%s, 16 KiB of them: at most MAX_QUERY_PAIRS read, and the query is refused with UNKNOWN_PARAMETER', (_name, text) => {
    const query = parseQueryString(text);
    expect(valuesKept(query)).toBeLessThanOrEqual(MAX_QUERY_PAIRS);
    expect(() => parseQuery(spec, query)).toThrow(expect.objectContaining({ code: ErrorCode.UnknownParameter, message: expect.stringMatching(/more than 64 parameters/) }));
  });

  it('does not count empty pairs, and still reads a query of MAX_QUERY_PAIRS pairs', () => {
    expect(parseQuery(spec, parseQueryString(`${'&'.repeat(1000)}limit=5${'&'.repeat(1000)}`))).toEqual({ limit: 5 });
    const full = parseQueryString(Array.from({ length: MAX_QUERY_PAIRS }, (_, i) => `p${i}=1`).join('&'));
    expect(valuesKept(full)).toBe(MAX_QUERY_PAIRS);
    expect(() => parseQuery(spec, full)).toThrow(expect.objectContaining({ code: ErrorCode.UnknownParameter, field: 'p0' }));
  });
});

describe('QueryGuard', () => {
  class Handlers {
    @QueryParams({ limit: integerParam({ min: 1, max: 10, description: 'items' }) })
    list(): void {}

    get(): void {}
  }
  const contextOf = (handler: () => void, query: Record<string, string>) =>
    ({ getHandler: () => handler, switchToHttp: () => ({ getRequest: () => ({ query }) }) }) as unknown as ExecutionContext;

  it("checks each route's query against that route's declaration, read once per handler, whatever the order of requests", () => {
    const reflector = new Reflector();
    const read = jest.spyOn(reflector, 'get');
    const guard = new QueryGuard(reflector);
    const { list, get } = Handlers.prototype;
    for (let i = 0; i < 3; i++) {
      expect(guard.canActivate(contextOf(list, { limit: '5' }))).toBe(true);
      expect(() => guard.canActivate(contextOf(list, { limit: '50' }))).toThrow(expect.objectContaining({ field: 'limit' }));
      // A route that declares none takes none: the other handler's declaration is not used for it.
      expect(() => guard.canActivate(contextOf(get, { limit: '5' }))).toThrow(expect.objectContaining({ code: ErrorCode.UnknownParameter, field: 'limit' }));
      expect(guard.canActivate(contextOf(get, {}))).toBe(true);
    }
    expect(read).toHaveBeenCalledTimes(2);
  });
});
