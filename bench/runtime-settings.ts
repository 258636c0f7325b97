import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** What deploy/overlayd-runtime.conf (or the agent's deploy/overlay-agent-runtime.conf) sets: node flags, and environment variables. */
export interface RuntimeSettings {
  nodeFlags: string[];
  env: Record<string, string>;
}

/** Reads deploy/overlayd-runtime.conf (or `file`, another in deploy/) under `root` (the repository). */
export function readRuntimeSettings(root: string, file = 'overlayd-runtime.conf'): RuntimeSettings {
  const text = readFileSync(path.join(root, 'deploy', file), 'utf8');
  const settings: RuntimeSettings = { nodeFlags: [], env: {} };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) {
      continue;
    }
    if (line.startsWith('--')) {
      settings.nodeFlags.push(line);
    } else {
      const eq = line.indexOf('=');
      if (eq <= 0) {
        throw new Error(`deploy/${file}: neither a --flag nor NAME=value: ${line}`);
      }
      settings.env[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return settings;
}

/**
 * The settings a benchmark's controller runs with: the deployment's (deploy/overlayd-runtime.conf),
 * so that its figures are the deployed controller's; none with BENCH_CONTROLLER_RUNTIME=none (node's
 * defaults, for comparison).
 */
export function benchControllerRuntime(root: string): RuntimeSettings {
  return process.env.BENCH_CONTROLLER_RUNTIME === 'none' ? { nodeFlags: [], env: {} } : readRuntimeSettings(root);
}

/** The agent's: deploy/overlay-agent-runtime.conf; none when there is no such file. */
export function readAgentRuntimeSettings(root: string): RuntimeSettings {
  return existsSync(path.join(root, 'deploy', 'overlay-agent-runtime.conf')) ? readRuntimeSettings(root, 'overlay-agent-runtime.conf') : { nodeFlags: [], env: {} };
}
