import { Inject, Injectable, Logger } from '@nestjs/common';
import { hash, randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import type { ResourceId } from '../../common/values';
import { systemActor, type Actor, type Principal, type Role } from '../auth/principal';
import { ControllerConfig } from '../config';
import { ErrorCode, notFound, OverlayError } from '../errors';
import { HostRepository } from '../hosts/host.repository';
import { newId } from '../model/value-parsers';
import type { StoredToken, Token, TokenView } from '../model/token';
import type { Page, PageRequest } from '../store/page';
import { TenantRepository } from '../tenants/tenant.repository';
import { TokenRepository } from './token.repository';
import type { CreateToken } from './token.schemas';

/** A new token: `ovl_` and 256 random bits in base64url (the prefix lets secret scanners find leaked ones). */
export function generateToken(): string {
  return `ovl_${randomBytes(32).toString('base64url')}`;
}

export function sha256(token: string): string {
  // One-shot: a third of createHash's cost, paid on every authenticated request.
  return hash('sha256', token, 'hex');
}

/** A new token's record as stored: what it may do, who made it, and the hash of `secret` (never the secret). */
function storedToken(
  secret: string,
  grant: Pick<Token, 'name' | 'role' | 'tenantId' | 'hostIds' | 'allowVniPinning' | 'expiresAt'>,
  createdBy: Token['createdBy'],
): StoredToken {
  return { id: newId(), ...grant, createdAt: new Date().toISOString(), createdBy, sha256: sha256(secret) };
}

function view(token: StoredToken, lastUsedMs: number | null): TokenView {
  const { id, name, role, tenantId, hostIds, allowVniPinning, createdAt, expiresAt, createdBy } = token;
  return { id, name, role, tenantId, hostIds, allowVniPinning, createdAt, expiresAt, createdBy, lastUsedAt: lastUsedMs === null ? null : new Date(lastUsedMs).toISOString() };
}

export interface TokenFilter {
  role?: Role;
  tenantId?: ResourceId;
}

/** Making, listing and revoking API tokens, and the first admin token of a deployment. */
@Injectable()
export class TokenService {
  private readonly logger = new Logger('tokens');

  constructor(
    private readonly tokens: TokenRepository,
    private readonly tenants: TenantRepository,
    private readonly hosts: HostRepository,
    @Inject(ControllerConfig) private readonly config: ControllerConfig,
  ) {}

  /** Makes a token: its record, and the token itself, returned this once. */
  async create(input: CreateToken, creator: Principal, actor: Actor): Promise<TokenView & { token: string }> {
    const role = input.role;
    const tenantId = input.tenantId ?? null;
    if (role === 'tenant' && tenantId === null) {
      throw new OverlayError(ErrorCode.MissingField, 'a tenant token needs tenantId: the tenant it is confined to', { field: 'tenantId' });
    }
    if (role !== 'tenant' && tenantId !== null) {
      throw new OverlayError(ErrorCode.InvalidValue, `only a tenant token takes tenantId; a ${role} token sees every tenant`, { field: 'tenantId' });
    }
    if (role !== 'tenant' && input.allowVniPinning !== undefined) {
      throw new OverlayError(ErrorCode.InvalidValue, `only a tenant token takes allowVniPinning; a ${role} token ${role === 'operator' ? 'may always pin VNIs' : 'creates no segments'}`, { field: 'allowVniPinning' });
    }
    const hostIds = input.hostIds ?? null;
    if (role !== 'migration-hook' && hostIds !== null) {
      throw new OverlayError(ErrorCode.InvalidValue, 'only a migration-hook token takes hostIds', { field: 'hostIds' });
    }
    if (tenantId !== null && !(await this.tenants.get(tenantId))) {
      throw notFound('tenant', tenantId, 'tenantId');
    }
    if (hostIds !== null) {
      const found = await this.hosts.getMany(hostIds);
      const missing = found.findIndex((h) => !h);
      if (missing >= 0) {
        throw notFound('host', hostIds[missing], `hostIds[${missing}]`);
      }
      const dup = hostIds.findIndex((id, i) => hostIds.indexOf(id) !== i);
      if (dup >= 0) {
        throw new OverlayError(ErrorCode.InvalidValue, `host ${hostIds[dup]} is listed twice`, { field: `hostIds[${dup}]` });
      }
    }
    const secret = generateToken();
    const token = storedToken(secret, { name: input.name, role, tenantId, hostIds, allowVniPinning: input.allowVniPinning ?? false, expiresAt: input.expiresAt ?? null }, {
      tokenId: creator.tokenId,
      name: creator.name,
    });
    await this.tokens.create(token, actor);
    return { ...view(token, null), token: secret };
  }

  async get(id: ResourceId): Promise<TokenView> {
    const token = await this.tokens.get(id);
    if (!token) {
      throw notFound('token', id);
    }
    const [lastUsed] = await this.tokens.lastUsed([id]);
    return view(token, lastUsed);
  }

  async list(page: PageRequest, filter: TokenFilter): Promise<Page<TokenView>> {
    let items: StoredToken[];
    let nextCursor: string | null;
    if (filter.role === undefined && filter.tenantId === undefined) {
      ({ items, nextCursor } = await this.tokens.list(page));
    } else {
      const matching = (await this.tokens.all()).filter(
        (t) => (filter.role === undefined || t.role === filter.role) && (filter.tenantId === undefined || t.tenantId === filter.tenantId) && (page.cursor === undefined || t.id > page.cursor),
      );
      items = matching.slice(0, page.limit);
      nextCursor = matching.length > page.limit ? items[items.length - 1].id : null;
    }
    const lastUsed = await this.tokens.lastUsed(items.map((t) => t.id));
    return { items: items.map((t, i) => view(t, lastUsed[i])), nextCursor };
  }

  /** Revokes a token: every replica refuses it within a second (Authenticator's cache). */
  async delete(id: ResourceId, actor: Actor): Promise<void> {
    await this.tokens.delete(id, actor);
  }

  /**
   * When no admin token works, makes the first one: OVERLAY_BOOTSTRAP_TOKEN if set, else a new
   * one written to OVERLAY_BOOTSTRAP_TOKEN_FILE (mode 0600) whose path, never the token, is
   * logged. Replicas starting together make one: the store keeps the first, and only the replica
   * whose token it kept puts its file in place.
   */
  async bootstrap(): Promise<void> {
    const given = this.config.bootstrapToken;
    // Nothing to do, and nothing written to disk, while an admin token works (most starts).
    if ((await this.tokens.liveAdmins(Date.now())) > 0) {
      if (given !== undefined && !(await this.tokens.byHash(sha256(given)))) {
        this.logger.log('admin tokens exist: OVERLAY_BOOTSTRAP_TOKEN is not used');
      }
      return;
    }
    const secret = given ?? generateToken();
    const token = storedToken(secret, { name: 'bootstrap', role: 'admin', tenantId: null, hostIds: null, allowVniPinning: false, expiresAt: null }, { tokenId: null, name: 'bootstrap' });
    const file = this.config.bootstrapTokenFile;
    // Written before the token is stored (a token nobody can read would lock everyone out), under
    // a name of its own: replicas on one volume may share a pid (1, in containers). `wx`: a new
    // file, so mode 0600 holds (an existing file would keep its mode).
    const draft = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    if (given === undefined) {
      try {
        await writeFile(draft, `${secret}\n`, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        throw new Error(`no admin token exists and the first one cannot be written next to OVERLAY_BOOTSTRAP_TOKEN_FILE (${file}): ${(err as Error).message}; set OVERLAY_BOOTSTRAP_TOKEN_FILE to a writable path, or give OVERLAY_BOOTSTRAP_TOKEN`);
      }
    }
    let stored = false;
    try {
      stored = await this.tokens.create(token, systemActor('bootstrap'), true);
      if (stored && given === undefined) {
        await rename(draft, file).catch((err: Error) => {
          throw new Error(`made admin token 'bootstrap' (${token.id}) but could not move ${draft} to ${file}: ${err.message}; the token is in ${draft}`);
        });
      }
    } finally {
      if (given === undefined && !stored) {
        await unlink(draft).catch(() => undefined);
      }
    }
    if (!stored) {
      return; // another replica made it meanwhile
    }
    if (given !== undefined) {
      this.logger.log(`no admin token existed: OVERLAY_BOOTSTRAP_TOKEN is now admin token 'bootstrap' (${token.id})`);
      return;
    }
    this.logger.warn(`no admin token existed: made admin token 'bootstrap' (${token.id}); it is in ${file} (mode 0600). Use it: export OVERLAY_TOKEN=$(cat ${file}); curl -H "Authorization: Bearer $OVERLAY_TOKEN" ...`);
  }
}

