import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_BUNDLE } from '../support/agent-bundle';
import type { Hypervisor, Topology } from './topology';

export { ensureAgentBuilt } from '../support/agent-bundle';

/**
 * An agent run as another user than root, through setpriv, as deploy/systemd/overlay-agent.service
 * runs it: `capabilities` `net_admin` is that unit's (CAP_NET_ADMIN ambient, nothing else in the
 * bounding set, no new privileges); `none` drops every capability.
 */
export interface AgentUser {
  uid: number;
  gid: number;
  capabilities: 'net_admin' | 'none';
}

/**
 * A real overlay-agent process (the bundle, dist/agent/overlay-agent.js: what a hypervisor
 * runs) inside its hypervisor's network namespace on the Linux dataplane, with a state directory
 * that outlives restarts, as root unless `user` is given. Its output is kept for diagnostics.
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
    private readonly user?: AgentUser,
  ) {
    this.stateDir = join(topology.dir, `agent-${hv.name}`);
    mkdirSync(this.stateDir, { recursive: true });
    if (user) {
      // The user reaches its state directory through the topology's (mode 0700 from mkdtemp).
      chmodSync(topology.dir, 0o711);
      chownSync(this.stateDir, user.uid, user.gid);
    }
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
    const asUser = this.user ? setprivArgs(this.user) : [];
    const [cmd, ...args] = [...asUser, process.execPath, AGENT_BUNDLE];
    const child = this.topology.spawnIn(this.hv.ns, cmd, args, {
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

/**
 * The setpriv command line that runs the rest as `user` (util-linux's setpriv). By its absolute
 * path, found on this process's PATH: the agent's own PATH may be a test's (one without nft).
 */
function setprivArgs(user: AgentUser): string[] {
  const setpriv = execFileSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).trim();
  const caps = user.capabilities === 'net_admin' ? ['--inh-caps=-all,+net_admin', '--ambient-caps=+net_admin', '--bounding-set=-all,+net_admin'] : ['--inh-caps=-all', '--bounding-set=-all'];
  return [setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', ...caps, '--no-new-privs', '--'];
}
