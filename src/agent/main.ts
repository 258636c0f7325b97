#!/usr/bin/env node
import { accessSync, constants, mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { release } from 'node:os';
import { Agent } from './agent';
import { createLog, loggerOf, type ProcessLog } from '../common/logger';
import { ConfigError } from '../common/env';
import { loadAgentConfig, type AgentConfig } from './config';
import type { Dataplane } from './dataplane/dataplane';
import { ProcessCommandRunner } from './dataplane/linux/command-runner';
import { InventoryCollector } from './inventory/collector';
import { LinuxDataplane } from './dataplane/linux/linux.dataplane';
import { MemoryDataplane } from './dataplane/memory/memory.dataplane';
import { agentMetrics } from './metrics/agent-metrics';
import { serveMetrics } from './metrics/metrics-server';
import { checkPrerequisites, PREREQUISITES_EXIT_CODE } from './prerequisites';

/**
 * overlay-agent: configuration from the environment (bad config exits 1), the host's
 * prerequisites (missing ones exit PREREQUISITES_EXIT_CODE), then sync until SIGTERM.
 */
async function createDataplane(config: AgentConfig, log: ProcessLog): Promise<Dataplane> {
  switch (config.dataplane) {
    case 'memory':
      return new MemoryDataplane();
    case 'linux': {
      const linux = new LinuxDataplane(new ProcessCommandRunner(), loggerOf(log, 'dataplane'));
      // Fail at start, not at the first apply, when iproute2 is missing or the kernel cannot be read.
      await linux.observe().catch((err: unknown) => {
        throw new ConfigError(`OVERLAY_DATAPLANE=linux cannot read the kernel state: ${(err as Error).message}`);
      });
      if (config.firewall) {
        // Likewise when the firewall cannot track connections here: better not to start than to
        // run with ports that stay closed (or open).
        config.conntrack = await linux.prepareFirewall(config.conntrack ?? 'auto').catch((err: unknown) => {
          throw new ConfigError(`OVERLAY_FIREWALL=1 (the default) with OVERLAY_CONNTRACK=${config.conntrack ?? 'auto'}: ${(err as Error).message}`);
        });
      }
      return linux;
    }
  }
}

/** Exits, one line per missing piece, when the host lacks what the Linux dataplane needs (see prerequisites.ts). */
function requirePrerequisites(config: AgentConfig, log: ProcessLog): void {
  const report = checkPrerequisites(
    { firewall: config.firewall ?? false, conntrack: config.conntrack ?? 'auto' },
    // Without PATH, spawn searches /usr/bin:/bin (libuv's default), so the check does too.
    { path: process.env.PATH ?? '/usr/bin:/bin', root: config.sysfsRoot ?? '/', release: release(), euid: process.geteuid?.() ?? 0 },
  );
  if (report.missing.length > 0) {
    for (const line of report.missing) {
      console.error(`overlay-agent: missing prerequisite: ${line}`);
    }
    process.exit(PREREQUISITES_EXIT_CODE);
  }
  if (report.unknown.length > 0) {
    log.warn(`cannot tell from /sys/module or the kernel's config whether the kernel has ${report.unknown.join(', ')}: starting anyway (a failed apply will say)`);
  }
}

async function main(): Promise<void> {
  let config: AgentConfig;
  let dataplane: Dataplane;
  let log: ProcessLog;
  try {
    config = loadAgentConfig();
    log = createLog({ logFormat: config.logFormat ?? 'json', logLevel: config.logLevel ?? 'log' }, 'overlay-agent').child({ host: config.hostName });
    if (config.dataplane === 'linux') {
      requirePrerequisites(config, log);
    }
    try {
      mkdirSync(config.stateDir, { recursive: true });
      accessSync(config.stateDir, constants.W_OK);
    } catch (err) {
      throw new ConfigError(`OVERLAY_STATE_DIR ${config.stateDir} is not a writable directory: ${(err as Error).message}`);
    }
    dataplane = await createDataplane(config, log);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`overlay-agent: bad configuration: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
  if (!config.tls) {
    log.warn('gRPC without TLS (OVERLAY_GRPC_INSECURE=true): for development only');
  }
  // The inventory reads Linux (ip, sysfs, teamdctl, lldpcli): collected with the linux dataplane only.
  const logger = loggerOf(log);
  const inventory = config.dataplane === 'linux' ? new InventoryCollector({ runner: new ProcessCommandRunner(), sysRoot: config.sysfsRoot ?? '/', lldpdSocket: config.lldpdSocket, logger }) : undefined;
  const agent = new Agent(config, dataplane, logger, Math.random, inventory);
  let metrics: Server | undefined;
  if (config.metrics) {
    const { host, port } = config.metrics;
    metrics = await serveMetrics(agentMetrics(agent), host, port).catch((err: unknown) => {
      console.error(`overlay-agent: bad configuration: OVERLAY_METRICS_PORT ${port} on ${host} cannot be served: ${(err as Error).message}`);
      process.exit(1);
    });
    logger.info(`metrics at http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`);
  }
  const shutdown = () => {
    metrics?.close();
    void agent
      .stop()
      .then(() => dataplane.close())
      .then(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  await agent.start();
}

main().catch((err: unknown) => {
  console.error('overlay-agent: failed:', err);
  process.exit(1);
});
