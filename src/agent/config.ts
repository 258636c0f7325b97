import { ConfigError, EnvReader } from '../common/env';
import { readLogSettings, type LogSettings } from '../common/logger';

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
  /**
   * How often the agent compares the kernel with desired state and repairs drift (default 60 s:
   * a pass reads the whole kernel back, ~1 CPU-second at 1,000 ports and 10,000 remote entries;
   * at 10 s that was 8-9 % of a core on an idle hypervisor, docs/benchmarks.md).
   */
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
  /**
   * How often the agent collects the host's inventory (links, bonds and teams, NICs, LLDP
   * neighbours, the VTEP's devices; see inventory/) and sends it with its host observation
   * (OVERLAY_INVENTORY_INTERVAL_MS, default 300000: five minutes; also once at start). 0 turns
   * collection off: the controller then shows the host's observed inventory as null. Absent
   * (configs built by tests) means off.
   */
  inventoryIntervalMs?: number;
  /**
   * The root the inventory reads sysfs under, and the start's prerequisites check its files
   * (prerequisites.ts: sys/module, proc/config.gz, proc/sys/net/bridge...) (OVERLAY_SYSFS_ROOT,
   * default `/`): tests point it at a fake tree.
   */
  sysfsRoot?: string;
  /**
   * The control socket of the lldpd the inventory asks for LLDP neighbours (OVERLAY_LLDPD_SOCKET,
   * given to `lldpcli -u`), for an lldpd started with `-u` elsewhere than lldpcli's default
   * (`/run/lldpd.socket`): one lldpd per network namespace of a host, or lldpd in a container
   * with its socket mounted at another path. Unset: lldpcli's default.
   */
  lldpdSocket?: string;
  /**
   * Where GET /metrics (Prometheus) is served: OVERLAY_METRICS_PORT (off unless set) on
   * OVERLAY_METRICS_HOST (default 127.0.0.1: the endpoint has no authentication, and a
   * hypervisor's other addresses may be reachable from networks that have no business reading
   * it; a scraper elsewhere needs the management address set explicitly). Absent: not served.
   */
  metrics?: { host: string; port: number };
  /** OVERLAY_LOG_FORMAT and OVERLAY_LOG_LEVEL, as the controller reads them (common/logger.ts). Absent (tests): json at `log`. */
  logFormat?: LogSettings['logFormat'];
  logLevel?: LogSettings['logLevel'];
}

export type ConntrackSetting = 'auto' | 'bridge' | 'br_netfilter';

export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const read = new EnvReader(env);
  const controllers = read.required('OVERLAY_CONTROLLER').split(',').map((c) => c.trim());
  for (const controller of controllers) {
    if (!/^[^\s:,]+:\d{1,5}$/.test(controller) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(controller)) {
      throw new ConfigError(`OVERLAY_CONTROLLER must be host:port[,host:port...], got ${JSON.stringify(controller)}`);
    }
  }
  const hostName = read.required('OVERLAY_HOST');
  // linux by default: an agent on a hypervisor that programmed only memory would ack what the kernel lacks.
  const dataplane = read.oneOf('OVERLAY_DATAPLANE', ['memory', 'linux'], 'linux');
  const tls = read.tlsFiles('set OVERLAY_TLS_CA, OVERLAY_TLS_CERT and OVERLAY_TLS_KEY (the certificate CN is the host name), or OVERLAY_GRPC_INSECURE=true for development');
  const backoffBaseMs = read.int('OVERLAY_BACKOFF_BASE_MS', 200, 1, 60_000);
  const backoffMaxMs = read.int('OVERLAY_BACKOFF_MAX_MS', 10_000, 1, 600_000);
  if (backoffBaseMs > backoffMaxMs) {
    throw new ConfigError(`OVERLAY_BACKOFF_BASE_MS (${backoffBaseMs}) must not exceed OVERLAY_BACKOFF_MAX_MS (${backoffMaxMs})`);
  }
  const inventoryIntervalMs = read.int('OVERLAY_INVENTORY_INTERVAL_MS', 300_000, 0, 86_400_000);
  if (inventoryIntervalMs > 0 && inventoryIntervalMs < 1_000) {
    throw new ConfigError(`OVERLAY_INVENTORY_INTERVAL_MS must be 0 (off) or at least 1000, got ${inventoryIntervalMs}`);
  }
  const lldpdSocket = read.get('OVERLAY_LLDPD_SOCKET');
  // 107: a Unix socket path's limit (sun_path is 108 bytes with its NUL).
  if (lldpdSocket !== undefined && (!lldpdSocket.startsWith('/') || Buffer.byteLength(lldpdSocket) > 107 || lldpdSocket.includes('\0'))) {
    throw new ConfigError(`OVERLAY_LLDPD_SOCKET must be an absolute path of at most 107 bytes (a Unix socket), got ${JSON.stringify(lldpdSocket)}`);
  }
  const metricsPort = read.get('OVERLAY_METRICS_PORT') === undefined ? undefined : read.int('OVERLAY_METRICS_PORT', 0, 1, 65_535);
  if (metricsPort === undefined && read.get('OVERLAY_METRICS_HOST') !== undefined) {
    throw new ConfigError('OVERLAY_METRICS_HOST is set but OVERLAY_METRICS_PORT is not: set the port to serve /metrics');
  }
  return {
    controllers,
    hostName,
    vtepIp: read.get('OVERLAY_VTEP_IP'),
    dataplane,
    stateDir: env.OVERLAY_STATE_DIR ?? '/var/lib/overlay-agent',
    tls: tls && { ...tls, serverName: read.get('OVERLAY_TLS_SERVER_NAME') },
    backoffBaseMs,
    backoffMaxMs,
    reconcileIntervalMs: read.int('OVERLAY_RECONCILE_MS', 60_000, 100, 3_600_000),
    firewall: read.bool('OVERLAY_FIREWALL', true),
    conntrack: read.oneOf<ConntrackSetting>('OVERLAY_CONNTRACK', ['auto', 'bridge', 'br_netfilter'], 'auto'),
    migrationAutoCommit: read.bool('OVERLAY_MIGRATION_AUTO_COMMIT', true),
    inventoryIntervalMs,
    sysfsRoot: env.OVERLAY_SYSFS_ROOT || '/',
    lldpdSocket,
    metrics: metricsPort === undefined ? undefined : { host: read.listenHost('OVERLAY_METRICS_HOST', '127.0.0.1'), port: metricsPort },
    ...readLogSettings(read),
  };
}
