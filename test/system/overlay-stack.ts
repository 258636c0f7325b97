import { SessionRegistry } from '../../src/controller/distribution/session-registry';
import { finishesWithin, waitUntil } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { AgentProcess, ensureAgentBuilt, type AgentUser } from './agent-process';
import { Topology, trackRedisPrefix, type Hypervisor, type TopologyOptions } from './topology';

/**
 * What every system test starts from: a topology of hypervisors in network namespaces, the
 * controller in this process under a key prefix of its own, each hypervisor registered as a host
 * and running a real overlay-agent, all connected. `start` in beforeAll, `stop` in afterAll:
 * `stop` undoes whatever `start` got to, also when it failed half way. As in a deployment, the
 * first admin token (the harness's, OVERLAY_BOOTSTRAP_TOKEN) only makes an operator token, and
 * `client` works with that.
 */
/** Every wait inside a controller's close is short; this bounds them all, so a hang fails with what was left. */
const CLOSE_DEADLINE_MS = 20_000;

export class OverlayStack {
  readonly prefix: string;
  readonly hostIds = new Map<string, string>();
  readonly agents = new Map<string, AgentProcess>();
  topology!: Topology;
  ctl!: Harness;
  /** Every call of the tests' API client carries it: an operator's token, made at start. */
  client!: ReturnType<typeof api>;
  /** Whether ensureAgentBuilt had to build the agent (for the tests' timings). */
  built = false;
  private untrackRedis = (): void => undefined;
  private controllerClosed = false;

  constructor(name: string) {
    this.prefix = uniquePrefix(name);
  }

  /**
   * `agentEnv` goes to every agent; `agentEnvOf(hv)` adds to (or overrides) it per hypervisor,
   * with the topology's scratch directory at hand (a wrapper earlier in one agent's PATH, say).
   * `topology` shapes the hypervisors' network (routed ones, see Topology). `controllerEnv`: the
   * controller's configuration beyond the harness's (OVERLAY_AUDIT_INTERVAL_MS, say). `agentUserOf(hv)`:
   * the user a hypervisor's agent runs as (root when undefined).
   */
  async start(
    opts: {
      hypervisors?: number;
      topology?: TopologyOptions;
      agentEnv?: Record<string, string>;
      agentEnvOf?: (hv: Hypervisor, topology: Topology) => Record<string, string>;
      agentUserOf?: (hv: Hypervisor) => AgentUser | undefined;
      controllerEnv?: Record<string, string>;
    } = {},
  ): Promise<void> {
    this.built = ensureAgentBuilt();
    this.topology = await Topology.create(opts.hypervisors ?? 3, opts.topology);
    this.ctl = await startController({ prefix: this.prefix, env: opts.controllerEnv });
    this.untrackRedis = trackRedisPrefix(this.ctl.config.redisUrl, this.prefix);
    const operator = await api(this.ctl.url).post('/v1/tokens', { name: 'system-tests', role: 'operator' });
    if (operator.status !== 201) {
      throw new Error(`POST /v1/tokens: ${operator.status} ${JSON.stringify(operator.body)}`);
    }
    this.client = api(this.ctl.url, operator.body.token);
    const target = await this.topology.exposeController(this.ctl.grpcTarget);
    for (const hv of this.topology.hypervisors) {
      const host = await this.client.post('/v1/hosts', { name: hv.name, vtepIp: hv.vtepIp });
      if (host.status !== 201) {
        throw new Error(`POST /v1/hosts ${hv.name}: ${host.status} ${JSON.stringify(host.body)}`);
      }
      this.hostIds.set(hv.name, host.body.id);
      const agent = new AgentProcess(this.topology, hv, target, { ...opts.agentEnv, ...opts.agentEnvOf?.(hv, this.topology) }, opts.agentUserOf?.(hv));
      this.agents.set(hv.name, agent);
      agent.start();
    }
    const server = this.ctl.app.get(SessionRegistry);
    await waitUntil(() => [...this.hostIds.values()].every((id) => server.session(id) !== undefined), 20_000, () => `agents did not connect${this.agentLogs()}`);
  }

  /** The last lines of every agent's output, for failure messages. */
  agentLogs(lines = 15): string {
    return '\n' + [...this.agents.values()].flatMap((a) => a.log.slice(-lines)).join('\n');
  }

  /** Stops the controller for good (agents go headless); `stop` then leaves it alone. */
  async closeController(): Promise<void> {
    this.controllerClosed = true;
    await finishesWithin(this.ctl.close(), CLOSE_DEADLINE_MS, () => `the controller's close (still active: ${JSON.stringify(process.getActiveResourcesInfo())})`);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.stop()));
    await this.topology?.destroy();
    if (this.ctl) {
      if (!this.controllerClosed) {
        await this.ctl.close();
      }
      await dropPrefix(this.ctl.config.redisUrl, this.prefix);
      this.untrackRedis();
    }
  }
}
