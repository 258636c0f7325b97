import { Logger } from '@nestjs/common';
import Fastify from 'fastify';
import type { FastifyRequest } from 'fastify';
import { ErrorCode, OverlayError } from '../errors';
import type { EventRepository } from '../events/event.repository';
import type { StoredToken } from '../model/token';
import type { TokenRepository } from '../tokens/token.repository';
import * as tokenService from '../tokens/token.service';
import { generateToken, sha256 } from '../tokens/token.service';
import { newId, parseId } from '../model/value-parsers';
import { mockOf } from '../../../test/support/mocks';
import { Authenticator, registerAuthentication, TOKEN_CACHE_MS } from './authenticator';

const T0 = Date.parse('2026-03-01T12:00:00Z');

function stored(secret: string, over: Partial<StoredToken> = {}): StoredToken {
  return {
    id: parseId('01890a5d-ac96-774b-bcce-b302099a8057'),
    name: 'ops',
    role: 'operator',
    tenantId: null,
    hostIds: null,
    allowVniPinning: false,
    createdAt: new Date(T0 - 1000).toISOString(),
    expiresAt: null,
    createdBy: { tokenId: null, name: 'bootstrap' },
    sha256: sha256(secret),
    ...over,
  };
}

/** A TokenRepository over a map hash -> record; `byHash` counts its reads. */
function fakeTokens(...records: StoredToken[]) {
  const byHash = new Map(records.map((r) => [r.sha256, r]));
  const repo = mockOf<TokenRepository>({
    byHash: jest.fn(async (hash: string) => byHash.get(hash)),
    touch: jest.fn(async () => undefined),
    onRevoked: jest.fn(),
  });
  return { repo, byHash };
}

function fakeEvents() {
  return mockOf<EventRepository>({ recordDenied: jest.fn(async () => undefined) });
}

function request(ip = '192.0.2.7', over: Partial<FastifyRequest> = {}): FastifyRequest {
  return { ip, method: 'GET', url: '/v1/tenants?x=1', routeOptions: { url: '/v1/tenants' }, ...over } as unknown as FastifyRequest;
}

const unauthenticated = (message: RegExp) => expect.objectContaining({ name: 'OverlayError', code: ErrorCode.Unauthenticated, message: expect.stringMatching(message) });

describe('Authenticator', () => {
  const secret = generateToken();
  let warn: jest.SpyInstance;

  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });

  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  describe('the Authorization header', () => {
    const cases: [string, string | string[] | undefined, RegExp][] = [
      ['missing', undefined, /send a token/],
      ['empty', '', /send a token/],
      ['another scheme', `Basic ${Buffer.from(`u:${secret}`).toString('base64')}`, /send a token/],
      ['the scheme alone', 'Bearer', /send a token/],
      ['the scheme and spaces', 'Bearer    ', /send a token/],
      ['no space after the scheme', `Bearer${secret}`, /send a token/],
      ['two words', `Bearer ${secret} ${secret}`, /malformed/],
      ['a character a token never has', `Bearer ${secret.slice(0, -1)}!`, /malformed/],
      ['a non-ASCII character', `Bearer ${secret.slice(0, -1)}é`, /malformed/],
      ['a control character', `Bearer ${secret.slice(0, -1)}\u0001`, /malformed/],
      ['too short (31 characters)', `Bearer ${'a'.repeat(31)}`, /malformed/],
      ['oversized (10,000 characters)', `Bearer ${'a'.repeat(10_000)}`, /malformed/],
      ['a list (repeated header)', [`Bearer ${secret}`, `Bearer ${secret}`], /send one Authorization header/],
    ];

    it.each(cases)('refuses %s with 401 UNAUTHENTICATED, without a store read and without echoing it', async (_name, header, message) => {
      const { repo } = fakeTokens(stored(secret));
      const auth = new Authenticator(repo, fakeEvents());
      const err = await auth.authenticate(header, T0).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toEqual(unauthenticated(message));
      expect((err as Error).message).not.toContain(secret.slice(4, 20));
      expect(repo.byHash).not.toHaveBeenCalled();
    });

    const accepted: [string, string][] = [
      ['Bearer', `Bearer ${secret}`],
      ['bearer in lower case', `bearer ${secret}`],
      ['BEARER in upper case', `BEARER ${secret}`],
      ['several spaces after the scheme', `Bearer    ${secret}`],
      ['spaces around the value', `  Bearer ${secret}  `],
      ['the longest token text (256 characters)', `Bearer ${'A'.repeat(256)}`],
    ];

    it.each(accepted)('accepts %s', async (_name, header) => {
      const text = header.trim().split(/ +/)[1];
      const { repo } = fakeTokens(stored(text));
      const principal = await new Authenticator(repo, fakeEvents()).authenticate(header, T0);
      expect(principal).toEqual({ tokenId: stored(text).id, name: 'ops', role: 'operator', tenantId: null, hostIds: null, allowVniPinning: false });
      expect(repo.byHash).toHaveBeenCalledWith(sha256(text));
    });
  });

  it('refuses an unknown token, and does not remember it: a token created a moment later works', async () => {
    const { repo, byHash } = fakeTokens();
    const auth = new Authenticator(repo, fakeEvents());
    await expect(auth.authenticate(`Bearer ${secret}`, T0)).rejects.toEqual(unauthenticated(/unknown or revoked/));
    byHash.set(sha256(secret), stored(secret));
    await expect(auth.authenticate(`Bearer ${secret}`, T0 + 1)).resolves.toMatchObject({ name: 'ops' });
    expect(repo.byHash).toHaveBeenCalledTimes(2);
  });

  it('refuses an expired token, saying it expired and when, from its expiry on (also while cached)', async () => {
    const expiresAt = new Date(T0 + 100).toISOString();
    const { repo } = fakeTokens(stored(secret, { expiresAt }));
    const auth = new Authenticator(repo, fakeEvents());
    await expect(auth.authenticate(`Bearer ${secret}`, T0 + 99)).resolves.toMatchObject({ name: 'ops' });
    await expect(auth.authenticate(`Bearer ${secret}`, T0 + 100)).rejects.toEqual(unauthenticated(new RegExp(`expired at ${expiresAt}`)));
    expect(repo.byHash).toHaveBeenCalledTimes(1);
  });

  it('trusts a token it read for TOKEN_CACHE_MS, then reads it again: a revoked token is refused from then on', async () => {
    const { repo, byHash } = fakeTokens(stored(secret));
    const auth = new Authenticator(repo, fakeEvents());
    await auth.authenticate(`Bearer ${secret}`, T0);
    byHash.delete(sha256(secret)); // revoked (on another replica)
    await expect(auth.authenticate(`Bearer ${secret}`, T0 + TOKEN_CACHE_MS - 1)).resolves.toMatchObject({ name: 'ops' });
    expect(repo.byHash).toHaveBeenCalledTimes(1);
    await expect(auth.authenticate(`Bearer ${secret}`, T0 + TOKEN_CACHE_MS)).rejects.toEqual(unauthenticated(/unknown or revoked/));
    expect(repo.byHash).toHaveBeenCalledTimes(2);
    // Refused ever after, not only once.
    await expect(auth.authenticate(`Bearer ${secret}`, T0 + TOKEN_CACHE_MS + 1)).rejects.toEqual(unauthenticated(/unknown or revoked/));
  });

  it('refuses at once a token revoked through this replica', async () => {
    const { repo, byHash } = fakeTokens(stored(secret));
    const auth = new Authenticator(repo, fakeEvents());
    await auth.authenticate(`Bearer ${secret}`, T0);
    byHash.delete(sha256(secret));
    const revoked = repo.onRevoked.mock.calls[0][0] as (hash: string) => void;
    revoked(sha256(secret));
    await expect(auth.authenticate(`Bearer ${secret}`, T0 + 1)).rejects.toEqual(unauthenticated(/unknown or revoked/));
  });

  it('shares one store read among concurrent requests with the same token', async () => {
    const reads: ((t: StoredToken) => void)[] = [];
    const repo = mockOf<TokenRepository>({
      byHash: jest.fn(() => new Promise<StoredToken>((resolve) => reads.push(resolve))),
      touch: jest.fn(async () => undefined),
      onRevoked: jest.fn(),
    });
    const auth = new Authenticator(repo, fakeEvents());
    const all = Promise.all(Array.from({ length: 20 }, (_, i) => auth.authenticate(`Bearer ${secret}`, T0 + i)));
    await new Promise((r) => setImmediate(r));
    reads.forEach((release) => release(stored(secret)));
    const principals = await all;
    expect(principals).toHaveLength(20);
    expect(principals.every((p) => p.name === 'ops')).toBe(true);
    expect(repo.byHash).toHaveBeenCalledTimes(1);
  });

  it('answers a store failure with STORE_UNAVAILABLE (not UNAUTHENTICATED, not a principal), and reads again at the next request', async () => {
    const repo = mockOf<TokenRepository>({
      byHash: jest
        .fn()
        .mockRejectedValueOnce(new OverlayError(ErrorCode.StoreUnavailable, 'Redis is unavailable (connect ECONNREFUSED)'))
        .mockResolvedValueOnce(stored(secret)),
      touch: jest.fn(async () => undefined),
      onRevoked: jest.fn(),
    });
    const auth = new Authenticator(repo, fakeEvents());
    await expect(auth.authenticate(`Bearer ${secret}`, T0)).rejects.toMatchObject({ code: ErrorCode.StoreUnavailable });
    await expect(auth.authenticate(`Bearer ${secret}`, T0 + 1)).resolves.toMatchObject({ name: 'ops' });
    expect(repo.byHash).toHaveBeenCalledTimes(2);
  });

  it('neither parses nor hashes again a header it admitted while its token is cached; a new lookup hashes it again', async () => {
    const { repo } = fakeTokens(stored(secret));
    const auth = new Authenticator(repo, fakeEvents());
    const hashing = jest.spyOn(tokenService, 'sha256');
    for (const at of [T0, T0 + 1, T0 + TOKEN_CACHE_MS - 1]) {
      await expect(auth.authenticate(`Bearer ${secret}`, at)).resolves.toMatchObject({ name: 'ops' });
    }
    expect(hashing).toHaveBeenCalledTimes(1);
    await expect(auth.authenticate(`Bearer ${secret}`, T0 + TOKEN_CACHE_MS)).resolves.toMatchObject({ name: 'ops' });
    expect(hashing).toHaveBeenCalledTimes(2);
    expect(repo.byHash).toHaveBeenCalledTimes(2);
    // Another spelling of the same token is a header of its own: parsed, hashed, admitted alike.
    await expect(auth.authenticate(`bearer   ${secret}`, T0 + TOKEN_CACHE_MS + 1)).resolves.toMatchObject({ name: 'ops' });
    expect(hashing).toHaveBeenCalledTimes(3);
  });

  it('records a use at most once a minute per token', async () => {
    const { repo } = fakeTokens(stored(secret));
    const auth = new Authenticator(repo, fakeEvents());
    for (const at of [T0, T0 + 1000, T0 + 59_999, T0 + 60_000, T0 + 60_001]) {
      await auth.authenticate(`Bearer ${secret}`, at);
    }
    expect(repo.touch.mock.calls).toEqual([
      [stored(secret).id, T0],
      [stored(secret).id, T0 + 60_000],
    ]);
  });

  it('remembers only the tokens used in the last TOKEN_CACHE_MS, however many are used over time', async () => {
    const secrets = Array.from({ length: 200 }, () => generateToken());
    const { repo } = fakeTokens(...secrets.map((s) => stored(s, { id: newId() })));
    const auth = new Authenticator(repo, fakeEvents());
    for (const [i, s] of secrets.entries()) {
      await auth.authenticate(`Bearer ${s}`, T0 + i * 10);
    }
    // 200 tokens over 2 s: at most the last TOKEN_CACHE_MS's (50), plus one sweep period's.
    expect(auth.cachedTokens()).toBeLessThanOrEqual((2 * TOKEN_CACHE_MS) / 10 + 1);
    await auth.authenticate(`Bearer ${secrets[0]}`, T0 + 10_000);
    expect(auth.cachedTokens()).toBe(1);
  });

  describe('refused calls', () => {
    it('counts, logs (source, route, code; never the token) and records each one', async () => {
      const events = fakeEvents();
      const auth = new Authenticator(fakeTokens().repo, events);
      auth.denied(request('198.51.100.1'), new OverlayError(ErrorCode.Unauthenticated, 'unknown or revoked token'));
      expect(auth.refused[ErrorCode.Unauthenticated]).toBe(1);
      expect(events.recordDenied).toHaveBeenCalledWith({ kind: 'anonymous', source: '198.51.100.1', method: 'GET', route: '/v1/tenants' }, ErrorCode.Unauthenticated, 'unknown or revoked token');
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0][0]).toMatch(/refused GET \/v1\/tenants from 198\.51\.100\.1: UNAUTHENTICATED/);
    });

    it('records the principal of a FORBIDDEN call', () => {
      const events = fakeEvents();
      const auth = new Authenticator(fakeTokens().repo, events);
      const principal = { tokenId: parseId('01890a5d-ac96-774b-bcce-b302099a8058'), name: 'reader', role: 'auditor' as const, tenantId: null, hostIds: null, allowVniPinning: false };
      auth.denied(request('198.51.100.1', { method: 'POST', principal }), new OverlayError(ErrorCode.Forbidden, 'needs role admin'));
      expect(auth.refused[ErrorCode.Forbidden]).toBe(1);
      expect(events.recordDenied).toHaveBeenCalledWith(
        { kind: 'token', tokenId: '01890a5d-ac96-774b-bcce-b302099a8058', name: 'reader', role: 'auditor', source: '198.51.100.1', method: 'POST', route: '/v1/tenants' },
        ErrorCode.Forbidden,
        'needs role admin',
      );
    });

    it('records and logs at most 50 a second, 25 per source; counts every one; logs the rest as one summary at the end of the second', async () => {
      jest.useFakeTimers({ now: T0 });
      const events = fakeEvents();
      const auth = new Authenticator(fakeTokens().repo, events);
      const refuse = (ip: string) => auth.denied(request(ip), new OverlayError(ErrorCode.Unauthenticated, 'unknown or revoked token'));
      for (let i = 0; i < 1000; i++) {
        refuse('203.0.113.66'); // one loud source
      }
      for (let i = 0; i < 100; i++) {
        refuse(`198.51.100.${i}`); // many quiet ones
      }
      expect(auth.refused[ErrorCode.Unauthenticated]).toBe(1100);
      expect(events.recordDenied).toHaveBeenCalledTimes(50);
      const sources = events.recordDenied.mock.calls.map((c) => (c[0] as { source: string }).source);
      expect(sources.filter((s) => s === '203.0.113.66')).toHaveLength(25);
      expect(warn).toHaveBeenCalledTimes(50);
      // The summary comes without any further refusal.
      jest.advanceTimersByTime(1000);
      expect(warn).toHaveBeenCalledTimes(51);
      expect(warn.mock.calls[50][0]).toMatch(/1050 more refused calls .*203\.0\.113\.66 \(975\)/);
      // A new second: recorded again.
      refuse('203.0.113.66');
      expect(events.recordDenied).toHaveBeenCalledTimes(51);
    });

    it('counts refusals from very many sources in one second together past the first thousand', () => {
      jest.useFakeTimers({ now: T0 });
      const auth = new Authenticator(fakeTokens().repo, fakeEvents());
      for (let i = 0; i < 5000; i++) {
        auth.denied(request(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`), new OverlayError(ErrorCode.Unauthenticated, 'unknown or revoked token'));
      }
      jest.advanceTimersByTime(1000);
      expect(auth.refused[ErrorCode.Unauthenticated]).toBe(5000);
      expect(warn.mock.calls.at(-1)[0]).toMatch(/4950 more refused calls .*; from 10\.0\.0\.50 \(1\), .* and 995 other sources, and 3950 from further sources$/);
    });

    it('does not fail the request when the trail cannot be written', async () => {
      const events = mockOf<EventRepository>({ recordDenied: jest.fn(async () => Promise.reject(new Error('down'))) });
      const auth = new Authenticator(fakeTokens().repo, events);
      expect(() => auth.denied(request(), new OverlayError(ErrorCode.Unauthenticated, 'x'))).not.toThrow();
      await new Promise((r) => setImmediate(r));
      expect(warn.mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringMatching(/could not record a refused call: down/));
    });
  });
});

describe('registerAuthentication', () => {
  const secret = generateToken();

  async function server(repo: TokenRepository) {
    const fastify = Fastify();
    const events = fakeEvents();
    const auth = new Authenticator(repo, events);
    registerAuthentication(fastify, auth, [
      { path: '/v1/tenants', access: { public: false, roles: ['admin', 'operator'] } },
      { path: '/metrics', access: undefined },
      { path: '/healthz', access: { public: true } },
    ]);
    const seen: unknown[] = [];
    fastify.get('/v1/tenants', async (req) => {
      seen.push(req.principal);
      return { ok: true };
    });
    fastify.get('/metrics', async () => 'text');
    fastify.get('/healthz', async () => ({ ok: true }));
    // Not a route of the table (Swagger's document, say): no token.
    fastify.get('/docs-json', async () => ({ ok: true }));
    await fastify.ready();
    return { fastify, auth, events, seen };
  }

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });

  afterEach(() => jest.restoreAllMocks());

  it('lets the routes that are not public through with the principal set, only with a valid token, whatever the method; public routes and others need none', async () => {
    const { fastify, seen } = await server(fakeTokens(stored(secret)).repo);
    const ok = await fastify.inject({ method: 'GET', url: '/v1/tenants', headers: { authorization: `Bearer ${secret}` } });
    expect(ok.statusCode).toBe(200);
    expect(seen).toEqual([expect.objectContaining({ name: 'ops', role: 'operator' })]);
    expect((await fastify.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await fastify.inject({ method: 'GET', url: '/docs-json' })).statusCode).toBe(200);
    expect((await fastify.inject({ method: 'GET', url: '/nowhere' })).statusCode).toBe(404);
    for (const [method, url] of [['GET', '/metrics'], ['HEAD', '/metrics'], ['HEAD', '/v1/tenants']] as const) {
      expect({ method, url, status: (await fastify.inject({ method, url })).statusCode }).toEqual({ method, url, status: 401 });
    }
    expect((await fastify.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${secret}` } })).statusCode).toBe(200);
    await fastify.close();
  });

  it('answers 401 UNAUTHENTICATED with WWW-Authenticate, records it, and never runs the handler', async () => {
    const { fastify, seen, auth, events } = await server(fakeTokens().repo);
    const res = await fastify.inject({ method: 'GET', url: '/v1/tenants', headers: { authorization: `Bearer ${secret}` } });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="overlayd"');
    expect(res.json()).toEqual({ code: 'UNAUTHENTICATED', message: 'unknown or revoked token' });
    expect(res.body).not.toContain(secret);
    expect(seen).toEqual([]);
    expect(auth.refused[ErrorCode.Unauthenticated]).toBe(1);
    expect(events.recordDenied).toHaveBeenCalledTimes(1);
    await fastify.close();
  });

  it('answers 503 STORE_UNAVAILABLE when the token cannot be read: neither let in nor counted as refused', async () => {
    const repo = mockOf<TokenRepository>({ byHash: jest.fn(async () => Promise.reject(new OverlayError(ErrorCode.StoreUnavailable, 'Redis is unavailable'))), onRevoked: jest.fn() });
    const { fastify, seen, auth, events } = await server(repo);
    const res = await fastify.inject({ method: 'GET', url: '/v1/tenants', headers: { authorization: `Bearer ${secret}` } });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    // Refused before anything of the request ran: the client may simply retry.
    expect(res.json().message).toMatch(/the token could not be checked; nothing of the request was carried out/);
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(seen).toEqual([]);
    expect(auth.refused[ErrorCode.Unauthenticated]).toBe(0);
    expect(events.recordDenied).not.toHaveBeenCalled();
    await fastify.close();
  });

  it('answers 500 INTERNAL (and logs it) for an unexpected failure, never letting the call in', async () => {
    const repo = mockOf<TokenRepository>({ byHash: jest.fn(async () => Promise.reject(new Error('ERR script bug'))), onRevoked: jest.fn() });
    const error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const { fastify, seen } = await server(repo);
    const res = await fastify.inject({ method: 'GET', url: '/v1/tenants', headers: { authorization: `Bearer ${secret}` } });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({ code: 'INTERNAL' });
    expect(seen).toEqual([]);
    expect(error.mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringMatching(/ERR script bug/));
    await fastify.close();
  });
});
