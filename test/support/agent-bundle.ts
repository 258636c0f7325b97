import { join } from 'node:path';
import { buildWhenStale, ROOT } from './build-when-stale';

/** The agent as it is installed on a hypervisor: the bundle `npm run build:agent` makes (scripts/build-agent.sh). */
export const AGENT_BUNDLE = join(ROOT, 'dist', 'agent', 'overlay-agent.js');

/**
 * Builds the agent bundle (dist/agent/overlay-agent.js and its proto/) when it is older than any
 * of its sources, its build script or the locked dependencies. Returns whether it built. Every
 * test that runs an agent process runs this bundle, so what is tested is what is shipped.
 */
export function ensureAgentBuilt(): boolean {
  return buildWhenStale(AGENT_BUNDLE, ['src/agent', 'src/common', 'proto', 'scripts/build-agent.sh', 'package-lock.json'], { script: 'scripts/build-agent.sh' });
}
