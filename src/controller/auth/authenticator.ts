import { Injectable, Logger } from '@nestjs/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrorCode, OverlayError } from '../errors';
import { EventRepository, type AuditEvent } from '../events/event.repository';
import { headerCount } from '../http/headers';
import { httpStatusOf } from '../http/http-status';
import type { StoredToken } from '../model/token';
import { TokenRepository } from '../tokens/token.repository';
import { sha256 } from '../tokens/token.service';
import { TOKEN_TEXT } from '../config';
import type { Principal } from './principal';
import type { Route } from './route-table';
import { actorOf } from './request-context';

/**
 * How long a replica trusts a token it has looked up: a revoked token stops working on every
 * replica within this (plus one Redis read); on the replica that revoked it, at once. Lookups are one HGET per token and replica per
 * period, shared by the requests that arrive meanwhile.
 */
export const TOKEN_CACHE_MS = 500;
/** How often a replica records that a token was used (`lastUsedAt` is this coarse). */
const LAST_USED_EVERY_MS = 60_000;
/**
 * Refused calls logged one by one and recorded in the audit trail, per second and replica, and
 * per source address within those: one loud source takes at most half, so it does not hide the
 * others. The rest are counted, and logged as one summary line at the end of their second: a
 * flood of bad tokens must not flood the log nor grow Redis without bound.
 */
export const DENIALS_PER_SECOND = 50;
export const DENIALS_PER_SOURCE_PER_SECOND = 25;
/** Sources named in a summary line (the loudest). */
const SUMMARY_SOURCES = 5;
/** Sources counted one by one in a second; past this many, the rest are counted together (UNCOUNTED). */
const COUNTED_SOURCES = 1000;
const UNCOUNTED = '';
/** Authorization headers remembered with their token's hash at most (see Authenticator.admittedHeaders). */
const ADMITTED_HEADERS = 1000;

interface Cached {
  token: StoredToken | undefined;
  loadedAt: number;
  pending?: Promise<StoredToken | undefined>;
}

interface DenialWindow {
  second: number;
  recorded: number;
  bySource: Map<string, number>;
  /** Refusals neither logged one by one nor recorded, by source. */
  dropped: Map<string, number>;
  timer?: NodeJS.Timeout;
}

/**
 * Turns an `Authorization: Bearer <token>` header into the caller's Principal, or refuses it
 * (401 UNAUTHENTICATED: missing, malformed, unknown, revoked or expired), and records refusals:
 * a warning in the log with the source address (never the token), a counter, and an entry in the
 * audit trail.
 */
@Injectable()
export class Authenticator {
  private readonly logger = new Logger('auth');
  /** Tokens read in the last TOKEN_CACHE_MS (and lookups in flight), by hash; older entries are swept. */
  private readonly cache = new Map<string, Cached>();
  /** The principal of each token read, shared by its requests (nothing changes a principal): one object per lookup, not per request. */
  private readonly principals = new WeakMap<StoredToken, Principal>();
  /**
   * The token hash of each Authorization header admitted in the last TOKEN_CACHE_MS, so that the
   * next request with the same header costs neither the parsing nor the SHA-256 (a few µs of
   * every request). Only admitted headers (a flood of bad tokens adds nothing), at most
   * ADMITTED_HEADERS, emptied with the cache's sweep; the token is still checked through `cache`
   * (a revoked or expired one is refused alike).
   */
  private readonly admittedHeaders = new Map<string, string>();
  private sweptAt = 0;
  /** When this replica last recorded each token's use; entries older than LAST_USED_EVERY_MS are swept. */
  private readonly touched = new Map<string, number>();
  private touchSweptAt = 0;
  private window: DenialWindow = { second: 0, recorded: 0, bySource: new Map(), dropped: new Map() };
  /** Refused calls since start, by code: read by tests (and, later, metrics). */
  readonly refused = { [ErrorCode.Unauthenticated]: 0, [ErrorCode.Forbidden]: 0 };

  constructor(
    private readonly tokens: TokenRepository,
    private readonly events: EventRepository,
  ) {
    // A token revoked through this replica is refused here at once, not a cache period later.
    tokens.onRevoked((hash) => this.cache.delete(hash));
  }

  async authenticate(header: string | string[] | undefined, now = Date.now()): Promise<Principal> {
    return this.principalOf(header, now);
  }

  /**
   * The same, synchronously when the token's lookup is fresh in the cache (the common case): no
   * promise per request. Throws (or rejects) with UNAUTHENTICATED, or STORE_UNAVAILABLE when the
   * token could not be checked.
   */
  principalOf(header: string | string[] | undefined, now = Date.now()): Principal | Promise<Principal> {
    if (Array.isArray(header) && header.length > 1) {
      throw new OverlayError(ErrorCode.Unauthenticated, `send one Authorization header, not ${header.length}`);
    }
    if (typeof header === 'string') {
      const known = this.admittedHeaders.get(header);
      const cached = known === undefined ? undefined : this.cache.get(known);
      if (cached && !cached.pending && now - cached.loadedAt < TOKEN_CACHE_MS) {
        return this.admit(cached.token, now);
      }
    }
    // The scheme is case-insensitive (RFC 9110); the token is one word of TOKEN_TEXT.
    const match = typeof header === 'string' ? /^Bearer +(\S.*)$/i.exec(header.trim()) : null;
    if (!match) {
      throw new OverlayError(ErrorCode.Unauthenticated, 'send a token: Authorization: Bearer <token>');
    }
    if (!TOKEN_TEXT.test(match[1])) {
      throw new OverlayError(ErrorCode.Unauthenticated, 'the bearer token is malformed');
    }
    const hash = sha256(match[1]);
    const cached = this.cache.get(hash);
    if (cached && !cached.pending && now - cached.loadedAt < TOKEN_CACHE_MS) {
      return this.remember(header as string, hash, this.admit(cached.token, now));
    }
    return this.lookup(hash, now).then((token) => this.remember(header as string, hash, this.admit(token, now)));
  }

  /** Notes that `header` names the token of `hash` (see admittedHeaders); passes `principal` through. */
  private remember(header: string, hash: string, principal: Principal): Principal {
    if (this.admittedHeaders.size < ADMITTED_HEADERS) {
      this.admittedHeaders.set(header, hash);
    }
    return principal;
  }

  private admit(token: StoredToken | undefined, now: number): Principal {
    if (!token) {
      throw new OverlayError(ErrorCode.Unauthenticated, 'unknown or revoked token');
    }
    if (token.expiresAt !== null && Date.parse(token.expiresAt) <= now) {
      throw new OverlayError(ErrorCode.Unauthenticated, `the token expired at ${token.expiresAt}`);
    }
    this.touch(token.id, now);
    let principal = this.principals.get(token);
    if (!principal) {
      principal = { tokenId: token.id, name: token.name, role: token.role, tenantId: token.tenantId, hostIds: token.hostIds, allowVniPinning: token.allowVniPinning };
      this.principals.set(token, principal);
    }
    return principal;
  }

  /** How many tokens this replica holds in its cache (tests). */
  cachedTokens(): number {
    return this.cache.size;
  }

  /** The token a hash names, from the cache while it is fresh; concurrent misses share one read. */
  private async lookup(hash: string, now: number): Promise<StoredToken | undefined> {
    const cached = this.cache.get(hash);
    if (cached && now - cached.loadedAt < TOKEN_CACHE_MS) {
      return cached.pending ? cached.pending : cached.token;
    }
    this.sweep(now);
    const entry: Cached = { token: undefined, loadedAt: now };
    // Only tokens that exist are remembered (guessing fills nothing), and only the entry this
    // read made: a slow read must not drop a newer one.
    const forget = () => this.cache.get(hash) === entry && this.cache.delete(hash);
    entry.pending = this.tokens.byHash(hash).then(
      (token) => {
        entry.token = token;
        entry.pending = undefined;
        if (!token) {
          forget();
        }
        return token;
      },
      (err: unknown) => {
        forget();
        throw err;
      },
    );
    this.cache.set(hash, entry);
    return entry.pending;
  }

  /**
   * Drops the entries past TOKEN_CACHE_MS, at most once per that period: they would be read
   * again anyway, and without this every token ever used would stay (revoked ones included).
   */
  private sweep(now: number): void {
    if (now - this.sweptAt < TOKEN_CACHE_MS) {
      return;
    }
    this.sweptAt = now;
    this.admittedHeaders.clear();
    for (const [hash, entry] of this.cache) {
      if (!entry.pending && now - entry.loadedAt >= TOKEN_CACHE_MS) {
        this.cache.delete(hash);
      }
    }
  }

  private touch(tokenId: string, now: number): void {
    if (now - (this.touched.get(tokenId) ?? 0) < LAST_USED_EVERY_MS) {
      return;
    }
    if (now - this.touchSweptAt >= LAST_USED_EVERY_MS) {
      this.touchSweptAt = now;
      for (const [id, at] of this.touched) {
        if (now - at >= LAST_USED_EVERY_MS) {
          this.touched.delete(id);
        }
      }
    }
    this.touched.set(tokenId, now);
    this.tokens.touch(tokenId, now).catch(() => this.touched.delete(tokenId));
  }

  /** Counts a refused call (401 or 403); logs and records it within the budget (DENIALS_PER_SECOND). */
  denied(request: FastifyRequest, error: OverlayError, now = Date.now()): void {
    const code = error.code as ErrorCode.Unauthenticated | ErrorCode.Forbidden;
    this.refused[code] = (this.refused[code] ?? 0) + 1;
    const source = request.ip;
    const second = Math.floor(now / 1000);
    if (second !== this.window.second) {
      this.summarize();
      this.window = { second, recorded: 0, bySource: new Map(), dropped: new Map() };
    }
    const w = this.window;
    const fromSource = w.bySource.get(source) ?? 0;
    if (w.recorded >= DENIALS_PER_SECOND || fromSource >= DENIALS_PER_SOURCE_PER_SECOND) {
      // Many sources at once (a botnet) must not grow the map without bound either.
      const counted = w.dropped.has(source) || w.dropped.size < COUNTED_SOURCES ? source : UNCOUNTED;
      w.dropped.set(counted, (w.dropped.get(counted) ?? 0) + 1);
      // Summarized when the second ends, even if no other refusal comes.
      w.timer ??= setTimeout(() => this.summarize(), (second + 1) * 1000 - now).unref();
      return;
    }
    w.recorded++;
    w.bySource.set(source, fromSource + 1);
    const route = request.routeOptions.url ?? request.url;
    const actor: AuditEvent['actor'] = request.principal
      ? actorOf(request, request.principal)
      : { kind: 'anonymous', source, method: request.method, route };
    const who = request.principal ? `token '${request.principal.name}' (${request.principal.tokenId}, ${request.principal.role})` : 'no valid token';
    this.logger.warn(`refused ${request.method} ${route} from ${source}: ${code}, ${who}: ${error.message}`);
    this.events.recordDenied(actor, code, error.message).catch((err: unknown) => this.logger.warn(`could not record a refused call: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** Logs the refusals of the current window that were only counted, once. */
  private summarize(): void {
    const w = this.window;
    clearTimeout(w.timer);
    w.timer = undefined;
    if (w.dropped.size === 0) {
      return;
    }
    const total = [...w.dropped.values()].reduce((a, b) => a + b, 0);
    const uncounted = w.dropped.get(UNCOUNTED) ?? 0;
    const loudest = [...w.dropped.entries()].filter(([source]) => source !== UNCOUNTED).sort((a, b) => b[1] - a[1]);
    const named = loudest.slice(0, SUMMARY_SOURCES).map(([source, n]) => `${source} (${n})`);
    const others = loudest.length > SUMMARY_SOURCES ? ` and ${loudest.length - SUMMARY_SOURCES} other sources` : '';
    const beyond = uncounted > 0 ? `, and ${uncounted} from further sources` : '';
    this.logger.warn(`${total} more refused calls in the second from ${new Date(w.second * 1000).toISOString()} were counted but neither logged one by one nor written to the audit trail; from ${named.join(', ')}${others}${beyond}`);
    w.dropped = new Map();
  }
}

/**
 * What a failed authentication answers. A token that cannot be looked up (Redis away) is refused
 * 503, never 401 (it may be valid) and never let through: nothing of the request has run, which
 * the message says (the store's own message says a write's outcome is unknown), so the client
 * knows it may retry. Anything else unexpected is a bug: logged here (the ErrorFilter never sees
 * this hook's errors) and answered INTERNAL.
 */
function authenticationError(err: unknown, logger: Logger): OverlayError {
  if (!(err instanceof OverlayError)) {
    logger.error(`authentication failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return new OverlayError(ErrorCode.Internal, 'internal error; see the controller log');
  }
  if (err.code === ErrorCode.StoreUnavailable) {
    return new OverlayError(ErrorCode.StoreUnavailable, 'Redis is unavailable, so the token could not be checked; nothing of the request was carried out');
  }
  return err;
}

/**
 * Authenticates every request to a route of `routes` that is not @Public (every /v1 route,
 * /metrics) as it arrives (Fastify `onRequest`), before its body is read: a caller without a valid
 * token costs one header check, not an 8 MiB body. Health, readiness, the OpenAPI document (not
 * a route of the table: Swagger serves it) and unknown paths answer without a token. By path
 * pattern, whatever the method (HEAD is served by GET routes): a path with a route that needs a
 * token needs one on every method. Which role may call which route is the AccessGuard's.
 */
export function registerAuthentication(fastify: FastifyInstance, authenticator: Authenticator, routes: readonly Pick<Route, 'path' | 'access'>[]): void {
  const logger = new Logger('auth');
  const withToken = new Set(routes.filter((r) => !r.access?.public).map((r) => r.path));
  const needsToken = (route: string | undefined): boolean => route !== undefined && withToken.has(route);
  // Callback style, not async: a token found in the cache costs no promise.
  fastify.addHook('onRequest', (request, reply, done) => {
    if (!needsToken(request.routeOptions.url)) {
      done();
      return;
    }
    const refuse = (err: unknown): void => {
      const error = authenticationError(err, logger);
      if (error.code === ErrorCode.Unauthenticated) {
        authenticator.denied(request, error);
        void reply.header('www-authenticate', 'Bearer realm="overlayd"');
      }
      void reply.status(httpStatusOf(error.code)).header('content-type', 'application/json').send(JSON.stringify(error));
    };
    let principal: Principal | Promise<Principal>;
    try {
      // Node keeps the first of several Authorization headers: all of them are passed, to be refused.
      const header = headerCount(request.raw, 'authorization') > 1 ? request.raw.headersDistinct.authorization : request.headers.authorization;
      principal = authenticator.principalOf(header);
    } catch (err) {
      refuse(err);
      return;
    }
    if (principal instanceof Promise) {
      principal.then((p) => {
        request.principal = p;
        done();
      }, refuse);
      return;
    }
    request.principal = principal;
    done();
  });
}
