import type { ResourceId } from '../../common/values';
import type { Role } from '../auth/principal';

/**
 * An API token's record. The token itself (256 random bits) is shown once, when it is made;
 * Redis holds only its SHA-256, enough for a random secret (no dictionary to try).
 */
export interface Token {
  id: ResourceId;
  name: string;
  role: Role;
  /** The tenant a `tenant` token is confined to; null for the other roles. */
  tenantId: ResourceId | null;
  /** The hosts a `migration-hook` token may migrate from or to; null = any. */
  hostIds: ResourceId[] | null;
  /** Whether a `tenant` token may pin a segment's VNI. */
  allowVniPinning: boolean;
  createdAt: string;
  /** After this it authenticates nothing (401); null = never. */
  expiresAt: string | null;
  /** The token that made this one (null for the bootstrap token). */
  createdBy: { tokenId: ResourceId | null; name: string };
}

/** As stored: the record and the token's SHA-256 (hex). */
export interface StoredToken extends Token {
  sha256: string;
}

/** As the API shows it: never the hash; when it was last used (to the minute, per replica), if ever. */
export interface TokenView extends Token {
  lastUsedAt: string | null;
}
