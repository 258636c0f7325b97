import { existsSync } from 'node:fs';

/**
 * overlay-agent's configuration, from the environment, validated once at start: a bad value
 * exits with status 1 and a message naming the variable.
 */
export interface AgentConfig {
  /** host:port of controller replicas (or of a load balancer); the agent moves to the next on failure. */
  controllers: string[];
  /** This host's registered name. */
  hostName: string;
  /** This host's VTEP; when set the controller checks it against the registration. */
  vtepIp?: string;
  dataplane: 'memory' | 'linux';
  stateDir: string;
  tls?: { ca: string; cert: string; key: string; serverName?: string };
  /** Reconnect backoff bounds. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** How often the agent compares the kernel with desired state and repairs drift. */
  reconcileIntervalMs: number;
  /**
   * Whether the agent loads the security-group firewall (`table bridge overlay`, and in
   * br_netfilter mode `table inet overlay`; see dataplane/linux/nftables.ts). On by default;
   * OVERLAY_FIREWALL=0 turns it off. Absent (configs built by tests) means off.
   */
  firewall?: boolean;
  /**
   * Where the firewall's connection tracking comes from (OVERLAY_CONNTRACK): `bridge`, native
   * bridge conntrack (CONFIG_NF_CONNTRACK_BRIDGE); `br_netfilter`, the inet family's conntrack
   * reached through br_netfilter (the agent sets net.bridge.bridge-nf-call-ip{,6}tables=1 in
   * its namespace); `auto` (default), probed at start: bridge when the kernel accepts `ct state`
   * in a bridge table, else br_netfilter when loaded, else the agent refuses to start.
   */
  conntrack?: ConntrackSetting;
  /**
   * Whether the agent commits a migration itself when the VM's first frame shows up on a port
   * prepared here (OVERLAY_MIGRATION_AUTO_COMMIT, default 1): it reports the arrival and the
   * controller commits. 0 leaves the commit to the migration hook. Absent (tests) means off.
   */
  migrationAutoCommit?: boolean;
}

export type ConntrackSetting = 'auto' | 'bridge' | 'br_netfilter';

export class AgentConfigError extends Error {}

export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const need = (name: string): string => {
    const value = env[name];
    if (!value) {
      throw new AgentConfigError(`${name} is required`);
    }
    return value;
  };
  const controllers = need('OVERLAY_CONTROLLER').split(',').map((c) => c.trim());
  for (const controller of controllers) {
    if (!/^[^\s:,]+:\d{1,5}$/.test(controller) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(controller)) {
      throw new AgentConfigError(`OVERLAY_CONTROLLER must be host:port[,host:port...], got ${JSON.stringify(controller)}`);
    }
  }
  const hostName = need('OVERLAY_HOST');
  // linux by default: an agent on a hypervisor that programmed only memory would ack what the kernel lacks.
  const dataplane = env.OVERLAY_DATAPLANE ?? 'linux';
  if (dataplane !== 'memory' && dataplane !== 'linux') {
    throw new AgentConfigError(`OVERLAY_DATAPLANE must be memory or linux, got ${JSON.stringify(dataplane)}`);
  }
  const tlsVars = ['OVERLAY_TLS_CA', 'OVERLAY_TLS_CERT', 'OVERLAY_TLS_KEY'] as const;
  const given = tlsVars.filter((name) => env[name]);
  if (given.length > 0 && given.length < tlsVars.length) {
    throw new AgentConfigError(`set all of ${tlsVars.join(', ')} (only ${given.join(', ')} given)`);
  }
  for (const name of given) {
    if (!existsSync(env[name]!)) {
      throw new AgentConfigError(`${name}: no such file ${env[name]}`);
    }
  }
  if (given.length === 0 && env.OVERLAY_GRPC_INSECURE !== 'true') {
    throw new AgentConfigError('set OVERLAY_TLS_CA, OVERLAY_TLS_CERT and OVERLAY_TLS_KEY (the certificate CN is the host name), or OVERLAY_GRPC_INSECURE=true for development');
  }
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') {
      return fallback;
    }
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw new AgentConfigError(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
    }
    return Number(raw);
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = env[name];
    if (raw === undefined || raw === '') {
      return fallback;
    }
    if (raw !== '0' && raw !== '1') {
      throw new AgentConfigError(`${name} must be 0 or 1, got ${JSON.stringify(raw)}`);
    }
    return raw === '1';
  };
  const conntrack = env.OVERLAY_CONNTRACK || 'auto';
  if (conntrack !== 'auto' && conntrack !== 'bridge' && conntrack !== 'br_netfilter') {
    throw new AgentConfigError(`OVERLAY_CONNTRACK must be auto, bridge or br_netfilter, got ${JSON.stringify(conntrack)}`);
  }
  const backoffBaseMs = int('OVERLAY_BACKOFF_BASE_MS', 200, 1, 60_000);
  const backoffMaxMs = int('OVERLAY_BACKOFF_MAX_MS', 10_000, 1, 600_000);
  if (backoffBaseMs > backoffMaxMs) {
    throw new AgentConfigError(`OVERLAY_BACKOFF_BASE_MS (${backoffBaseMs}) must not exceed OVERLAY_BACKOFF_MAX_MS (${backoffMaxMs})`);
  }
  return {
    controllers,
    hostName,
    vtepIp: env.OVERLAY_VTEP_IP || undefined,
    dataplane,
    stateDir: env.OVERLAY_STATE_DIR ?? '/var/lib/overlay-agent',
    tls: given.length ? { ca: env.OVERLAY_TLS_CA!, cert: env.OVERLAY_TLS_CERT!, key: env.OVERLAY_TLS_KEY!, serverName: env.OVERLAY_TLS_SERVER_NAME || undefined } : undefined,
    backoffBaseMs,
    backoffMaxMs,
    reconcileIntervalMs: int('OVERLAY_RECONCILE_MS', 10_000, 100, 3_600_000),
    firewall: bool('OVERLAY_FIREWALL', true),
    conntrack,
    migrationAutoCommit: bool('OVERLAY_MIGRATION_AUTO_COMMIT', true),
  };
}
