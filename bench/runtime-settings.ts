import { readFileSync } from 'node:fs';
import path from 'node:path';

/** What deploy/overlayd-runtime.conf sets: node flags, and environment variables. */
export interface RuntimeSettings {
  nodeFlags: string[];
  env: Record<string, string>;
}

/** Reads deploy/overlayd-runtime.conf under `root` (the repository). */
export function readRuntimeSettings(root: string): RuntimeSettings {
  const text = readFileSync(path.join(root, 'deploy', 'overlayd-runtime.conf'), 'utf8');
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
        throw new Error(`deploy/overlayd-runtime.conf: neither a --flag nor NAME=value: ${line}`);
      }
      settings.env[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return settings;
}
