#!/usr/bin/env node
import { accessSync, constants, mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
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

/** overlay-agent: configuration from the environment (bad config exits 1), then sync until SIGTERM. */
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

async function main(): Promise<void> {
  let config: AgentConfig;
  let dataplane: Dataplane;
  let log: ProcessLog;
  try {
    config = loadAgentConfig();
    log = createLog({ logFormat: config.logFormat ?? 'json', logLevel: config.logLevel ?? 'log' }, 'overlay-agent').child({ host: config.hostName });
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
