/**
 * The one place that names Redis keys. Every key of a deployment starts with `{<prefix>}:`: the
 * braces make it one hash tag, so every script touches a single slot and stays valid under
 * Redis Cluster, and the prefix separates deployments (and test files) sharing one Redis.
 *
 * Lua scripts need the same names for keys they derive (a segment's MAC index...), so the
 * templates below produce both the TypeScript builders and a Lua table `K` with the same
 * functions (`luaKeyFunctions`).
 */
const templates = {
  /** String: the global revision, INCR'd by every mutation. */
  revision: 'rev',
  /** Stream: the change log; entry id `<revision>-<nonce>` (change-log.ts), fields `at` (ms), `actor` and `ops` (JSON array). */
  changeLog: 'log',
  /** Hash id -> JSON record, one per kind. */
  tenants: 'tenants',
  segments: 'segments',
  hosts: 'hosts',
  ports: 'ports',
  securityGroups: 'sgs',
  mirrorSessions: 'mirrors',
  /** Sorted sets (all scores 0, ordered by id = creation time) for paging. */
  tenantIndex: 'tenants:index',
  segmentIndex: 'segments:index',
  hostIndex: 'hosts:index',
  portIndex: 'ports:index',
  securityGroupIndex: 'sgs:index',
  mirrorSessionIndex: 'mirrors:index',
  /** Uniqueness: hash value -> owner id. */
  tenantNames: 'tenants:by-name',
  hostNames: 'hosts:by-name',
  hostVteps: 'hosts:by-vtep',
  vlanOwners: 'vlans:owner',
  vniOwners: 'vnis:owner',
  /** Bitmap: bit v is 1 while VNI v is allocated or in quarantine. */
  vniBits: 'vnis:bits',
  /** Sorted set: quarantined VNI, score = the time (ms) it may be reused. */
  vniQuarantine: 'vnis:quarantine',
  /** String: a random id made when this deployment's state was first written; agents' revisions belong to it. */
  epoch: 'epoch',
  /**
   * String: JSON of the store recovery in progress (store/store-recovery.ts): why, when, by whom,
   * what was seen before and what was found. While it exists no script makes a revision.
   */
  recovery: 'recovery',
  /** Set: epochs agents named in their Hello during the recovery; retired when it is accepted. */
  recoveryAgentEpochs: 'recovery:agent-epochs',
  /** Set: epochs given up by an accepted recovery: an agent naming one gets a snapshot, not a new recovery. */
  retiredEpochs: 'epochs:retired',
  /** Hash host id -> the last revision its agent acknowledged. */
  agentApplied: 'agents:applied',
  /**
   * Hash host id -> the claim on the host's stream, JSON: `replica` and `token` (the stream that
   * holds it), `instance` (the agent process's instance id, '' when its Hello had none),
   * `expires` (ms; refreshed every 2 s while the stream lives), `evicted` (instances this claim
   * or the claims it replaced took the host from: refused while it lives) and `reported` (those
   * whose refusal was logged). Written only by the scripts in agent-status.repository.ts.
   */
  agentSessions: 'agents:sessions',
  /** Hash host id -> JSON `{revision, error, at}`: the host's last NACK, until an ack at or above its revision. */
  agentLastErrors: 'agents:last-error',
  /**
   * Hash host id -> JSON `{revision, ports: {<port id>: {reason, since}}}`: the local ports the
   * host's agent said at its last acknowledgement it could not program (Ack.failed_ports); no
   * field when it named none.
   */
  agentPortFailures: 'agents:port-failures',
  /**
   * Hash mirror tap id (`<sessionId>/<portId>`) -> JSON `{packets, bytes, error, at}`: what the
   * host's agent last reported of its mirror taps (MirrorCounters); replaced whole by each report.
   */
  hostMirrorCounters: 'host:%:mirror-counters',
  /**
   * String: JSON `{at, taps: [{portId, promiscuity, bridged}], bridges: [{vni, segmentId,
   * ageingSeconds}]}`, what the host's agent last said it observed of its kernel
   * (HostObservation); replaced whole by each report.
   */
  hostObserved: 'host:%:observed',
  /** Hash VNI -> the revision that released it (its segment's deletion). */
  vniReleasedAt: 'vnis:released-at',
  /** Per-parent children (sorted sets, score 0). */
  tenantSegments: 'tenant:%:segments',
  segmentPorts: 'segment:%:ports',
  hostPorts: 'host:%:ports',
  /** Per-segment uniqueness: hash MAC -> port id, IP -> port id. */
  segmentMacs: 'segment:%:macs',
  segmentIps: 'segment:%:ips',
  /** A tenant's security groups (sorted set, score 0) and their names (hash name -> group id; unique per tenant). */
  tenantSecurityGroups: 'tenant:%:sgs',
  tenantSecurityGroupNames: 'tenant:%:sg-names',
  /**
   * A security group's members: the ports whose *effective* groups include it (a port with no
   * groups listed belongs to its tenant's default group; a port without port security to none).
   * Sorted set, score 0. Makes SECURITY_GROUP_IN_USE O(1).
   */
  securityGroupPorts: 'sg:%:ports',
  /**
   * A live migration (hash): `record` (JSON: ports, hosts, expiry), `key` (what a retried prepare
   * must match), `state`, and one field per timeline event, `ev:<event>` = `<ms>` or `<ms>:<revision>`
   * (connection events: `<ms>::<connections>:<failed>`); the connection handover's per-port counts
   * `cx:<port>` (exported) and `ci:<port>` (`<installed>:<failed>`), and `conns` (entries stored).
   */
  migration: 'migration:%',
  /**
   * A live migration's tracked connections, handed from its source to its destination (stream):
   * one entry per batch, field `b` = the SyncResponse bytes sent to the destination as they are.
   * Expires with the migration.
   */
  migrationConnections: 'migration:%:connections',
  /** Open migrations (prepared, not committed nor aborted nor expired): hash port id / VM id -> migration id. */
  migrationsByPort: 'migrations:open-by-port',
  migrationsByVm: 'migrations:open-by-vm',
  /** Sorted set: open migrations by the time (ms) they expire. */
  migrationExpiry: 'migrations:expiry',
  /**
   * Sorted set (score 0): every migration by id (UUIDv7: creation order), for GET /v1/migrations.
   * Entries whose migration expired (its retention passed) are dropped when a list meets them and,
   * by age, when a migration closes.
   */
  migrationIndex: 'migrations:index',
  /** Sorted set (score 0): migrations whose timeline is not complete yet (the monitor's work list). */
  migrationsActive: 'migrations:active',
  /** Sorted set (score 0): the open migrations whose destination is this host. */
  hostIncomingMigrations: 'host:%:incoming',
  /**
   * API tokens (tokens/): hash id -> JSON record (its SHA-256 among the fields; never the token),
   * the id index for paging, hash SHA-256 (hex) -> id for authentication, hash id -> last use
   * (ms, coarse), and the admin tokens (sorted set, score = expiry in ms or +inf: the live admins
   * are counted with one ZCOUNT).
   */
  tokens: 'tokens',
  tokenIndex: 'tokens:index',
  tokenHashes: 'tokens:by-hash',
  tokenLastUsed: 'tokens:last-used',
  tokenAdmins: 'tokens:admins',
  /**
   * Streams: the audit trail (events/). `events` holds one entry per accepted write (`type` write:
   * `actor` JSON, `rev` the revision it made or '' when it made none, `res` the `kind:id` it
   * touched), trimmed by age (OVERLAY_EVENTS_RETENTION_SECONDS). `events:denied` holds one per
   * refused call (`type` denied: `actor`, `code`, `reason`), trimmed by age and capped in length
   * (OVERLAY_DENIED_EVENTS_MAX_LENGTH): whoever is refused must not be able to grow Redis
   * without bound. Entry ids are Redis' clock.
   */
  events: 'events',
  deniedEvents: 'events:denied',
  /** A tenant's mirror sessions (sorted set, score 0) and their names (hash name -> session id; unique per tenant). */
  tenantMirrorSessions: 'tenant:%:mirrors',
  tenantMirrorSessionNames: 'tenant:%:mirror-names',
  /** The mirror sessions a port is a source or the sink of (sorted set, score 0): the port's deletion guard. */
  portMirrorSessions: 'port:%:mirrors',
  /** The mirror sessions whose sink is an uplink of this host (sorted set, score 0): the host's deletion guard. */
  hostMirrorSessions: 'host:%:mirrors',
  /** The other groups whose rules name this one as remote group (sorted set, score 0; a group naming itself is not listed). */
  securityGroupReferrers: 'sg:%:referrers',
  /**
   * The audit's findings history (audit/finding-history.ts): the open findings (hash finding id ->
   * JSON with `openedAt`), the closed ones (sorted set, score = the time it closed, member = JSON
   * with `openedAt` and `closedAt`; trimmed by age like the audit trail, and capped in length),
   * and the history's own state (hash: `version`, bumped by each recording; `seq`, the newest
   * evaluation recorded, so that an older one that finishes later cannot undo it; `at`, when).
   */
  auditFindingsOpen: 'audit:findings:open',
  auditFindingsClosed: 'audit:findings:closed',
  auditFindingsState: 'audit:findings:state',
  /** String: INCR'd when an evaluation of the audit starts (its `seq`). */
  auditEvaluations: 'audit:evaluations',
} as const;

type Templates = typeof templates;
type KeyBuilder<T extends string> = T extends `${string}%${string}` ? (id: string) => string : () => string;
export type Keys = { readonly [K in keyof Templates]: KeyBuilder<Templates[K]> } & { readonly base: string };

export function keysFor(prefix: string): Keys {
  const base = `{${prefix}}:`;
  const out: Record<string, unknown> = { base };
  for (const [name, template] of Object.entries(templates)) {
    out[name] = template.includes('%') ? (id: string) => base + template.replace('%', id) : () => base + template;
  }
  return out as Keys;
}

/**
 * Lua prelude: `K.<name>(id?)` mirrors `keysFor`, given the base as KEYS[1]; only the functions
 * `lua` calls (`K.<name>(`), or all of them when it picks one by name (`K[...]`). A script makes
 * each function it defines every time it runs: all of them were 64 closures, about 6 µs of
 * Redis in every write.
 */
export function luaKeyFunctions(lua: string): string {
  const byName = /\bK\[/.test(lua);
  return [
    'local P = KEYS[1]',
    'local K = {}',
    ...Object.entries(templates)
      .filter(([name]) => byName || lua.includes(`K.${name}(`))
      .map(([name, template]) => {
        if (template.includes('%')) {
          const [before, after] = template.split('%');
          return `K.${name} = function(id) return P .. '${before}' .. id .. '${after}' end`;
        }
        return `K.${name} = function() return P .. '${template}' end`;
      }),
  ].join('\n');
}
