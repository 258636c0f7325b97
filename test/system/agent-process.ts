import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildWhenStale, ROOT } from '../support/build-when-stale';
import type { Hypervisor, Topology } from './topology';

const AGENT_MAIN = join(ROOT, 'dist', 'src', 'agent', 'main.js');

/**
 * Builds dist/src/agent/main.js (tsconfig.agent.json: the agent's own import closure) when it is
 * older than any of its sources. Returns whether it built.
 */
export function ensureAgentBuilt(): boolean {
  return buildWhenStale(AGENT_MAIN, ['src/agent', 'src/common', 'src/generated', 'proto'], 'test/system/tsconfig.agent.json');
}

/**
 * A real overlay-agent process (the built dist/src/agent/main.js) running inside its
 * hypervisor's network namespace on the Linux dataplane, with a state directory that outlives
 * restarts. Its output is kept for diagnostics.
 */
export class AgentProcess {
  private child?: ChildProcess;
  readonly stateDir: string;
  /** Everything it printed, across restarts. */
  readonly log: string[] = [];

  constructor(
    private readonly topology: Topology,
    readonly hv: Hypervisor,
    private readonly controller: string,
    private readonly env: Record<string, string> = {},
  ) {
    this.stateDir = join(topology.dir, `agent-${hv.name}`);
    mkdirSync(this.stateDir, { recursive: true });
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the process (it then restores its state and connects on its own). */
  start(): void {
    if (this.running) {
      throw new Error(`agent ${this.hv.name} is already running`);
    }
    const child = this.topology.spawnIn(this.hv.ns, process.execPath, [AGENT_MAIN], {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      OVERLAY_CONTROLLER: this.controller,
      OVERLAY_HOST: this.hv.name,
      OVERLAY_VTEP_IP: this.hv.vtepIp,
      OVERLAY_DATAPLANE: 'linux',
      OVERLAY_STATE_DIR: this.stateDir,
      OVERLAY_GRPC_INSECURE: 'true',
      OVERLAY_RECONCILE_MS: '500',
      OVERLAY_BACKOFF_BASE_MS: '50',
      OVERLAY_BACKOFF_MAX_MS: '500',
      ...this.env,
    });
    const stamp = () => new Date().toISOString().slice(11, 23);
    const keep = (stream: string) => (data: Buffer) => {
      for (const line of data.toString().split('\n').filter(Boolean)) {
        this.log.push(`${stamp()} ${this.hv.name} ${stream} ${line}`);
      }
    };
    child.stdout!.on('data', keep('out'));
    child.stderr!.on('data', keep('err'));
    child.once('exit', (code, signal) => this.log.push(`${stamp()} ${this.hv.name} exited code=${code} signal=${signal}`));
    this.child = child;
  }

  /** Sends `signal` and resolves with the exit code once the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    const child = this.child;
    if (!child || !this.running) {
      return child?.exitCode ?? null;
    }
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
