import { setTimeout as sleep } from 'node:timers/promises';
import { stepsFor, type Step } from './actions';
import type { HookConfig } from './config';
import { ControllerClient, type Answer } from './controller-client';
import { DomainXmlError, parseDomainXml, PORT_ALIAS_PREFIX, type Domain, type DomainInterface } from './domain-xml';
import type { HookLog } from './log';
import { HookState } from './state';

/** One libvirt call: `qemu <guest> <operation> <sub-operation> <extra>`, the domain XML on stdin. */
export interface HookCall {
  guest: string;
  operation: string;
  subOperation: string;
  extra: string;
  xml: string;
}

/** What the hook reads of a port. */
interface PortView {
  id: string;
  mac: string;
  hostId: string | null;
  migration?: { id: string; destinationHostId: string } | null;
}

/** Exit codes for libvirt: 0 lets it go on; 1 fails the operation (only a refused prepare, with OVERLAY_HOOK_REFUSED_PREPARE=fail). */
export const PROCEED = 0;
export const FAIL = 1;

/** How often a commit refused as not ready (the destination has not acknowledged the prepare yet) is tried again. */
const NOT_READY_RETRY_MS = 200;

/**
 * Runs the steps of one hook call (see actions.ts) and returns the exit code. Never throws for
 * anything the controller or the XML does: every outcome is a log line.
 */
export async function runHook(call: HookCall, config: HookConfig, log: HookLog, deadline: AbortSignal): Promise<number> {
  const steps = stepsFor(call.operation, call.subOperation, call.extra);
  if (!steps.length) {
    return PROCEED;
  }
  const say: HookLog = (level, message) => log(level, `${call.guest} ${call.operation} ${call.subOperation}: ${message}`);
  let domain: Domain;
  try {
    domain = parseDomainXml(call.xml);
  } catch (err) {
    if (!(err instanceof DomainXmlError)) {
      throw err;
    }
    say('error', `the domain XML on stdin was not used (${err.message}): nothing done`);
    return PROCEED;
  }
  const hook = new Hook(config, say, new ControllerClient(config.url, config.token, config.callTimeoutMs, deadline), new HookState(config.stateDir), deadline);
  hook.state.prune();
  let code = PROCEED;
  for (const step of steps) {
    code = Math.max(code, await hook.run(step, domain));
  }
  return code;
}

class Hook {
  constructor(
    private readonly config: HookConfig,
    private readonly say: HookLog,
    private readonly api: ControllerClient,
    readonly state: HookState,
    private readonly deadline: AbortSignal,
  ) {}

  run(step: Step, domain: Domain): Promise<number> {
    switch (step.kind) {
      case 'prepare':
        return this.prepare(domain);
      case 'abort-incoming':
        return this.abortIncoming(domain);
      case 'close-outgoing':
        return this.closeOutgoing(domain, step.close, step.why);
    }
  }

  /** Destination, `migrate begin`: one migration of every port the domain's interfaces map to, from the host they are bound to. */
  private async prepare(domain: Domain): Promise<number> {
    const chosen = new Map<string, PortView>();
    for (const iface of domain.interfaces) {
      const found = await this.portsOf(iface);
      if (!Array.isArray(found)) {
        if (found.status === 0 || found.status >= 500) {
          this.say('warning', `port lookup failed (${found.summary}): nothing prepared; the migration proceeds, its ports are not prepared here`);
          return PROCEED;
        }
        return this.refused(`the controller refused the port lookup: ${found.summary}`);
      }
      const elsewhere = found.filter((p) => p.hostId !== null && p.hostId !== this.config.hostId);
      if (elsewhere.length === 1) {
        chosen.set(elsewhere[0].id, elsewhere[0]);
      } else if (elsewhere.length > 1) {
        this.say('warning', `${describe(iface)}: ${elsewhere.length} ports have this MAC (${elsewhere.map((p) => p.id).join(', ')}): ignored; name its port with <alias name="${PORT_ALIAS_PREFIX}<port id>"/>`);
      } else if (found.some((p) => p.hostId === this.config.hostId)) {
        this.say('info', `${describe(iface)}: its port ${found.find((p) => p.hostId === this.config.hostId)!.id} is bound to this host already: ignored`);
      } else {
        this.say('info', `${describe(iface)}: no port of the overlay bound to another host: ignored`);
      }
    }
    if (!chosen.size) {
      this.say('info', `no interface of domain ${domain.uuid} maps to a port: nothing to prepare`);
      return PROCEED;
    }
    const ports = [...chosen.values()];
    const sources = [...new Set(ports.map((p) => p.hostId!))];
    if (sources.length > 1) {
      return this.refused(`the domain's ports are bound to different hosts (${sources.join(', ')}): nothing prepared`);
    }
    const body = {
      portIds: ports.map((p) => p.id),
      sourceHostId: sources[0],
      destinationHostId: this.config.hostId,
      ...(this.config.migrationTtlMs !== undefined && { ttlMs: this.config.migrationTtlMs }),
    };
    // The controller answers before this call times out, with 202 `preparing` if the destination has not acknowledged by then.
    const answer = await this.api.post(`/v1/migrations?timeout=${Math.floor(this.config.callTimeoutMs * 0.75)}`, body);
    if (answer.status === 200 || answer.status === 201 || answer.status === 202) {
      const migration = answer.body as { id: string; state: string };
      const retry = answer.status === 200 ? ', already open: a retry' : '';
      this.say('info', `prepared migration ${migration.id} (${migration.state}${retry}): ${ports.length} port(s) (${body.portIds.join(', ')}) from host ${body.sourceHostId} to this host`);
      try {
        this.state.save(domain.uuid, { migrationId: migration.id, domain: domain.uuid, portIds: body.portIds, sourceHostId: body.sourceHostId, preparedAt: new Date().toISOString() });
      } catch (err) {
        this.say('warning', `could not keep migration ${migration.id} in ${this.config.stateDir} (${(err as Error).message}): if the migration fails here, it is not aborted but expires at its TTL`);
      }
      return PROCEED;
    }
    if (answer.status === 0 || answer.status >= 500) {
      this.say('warning', `prepare failed (${answer.summary}): the migration proceeds, its ports are not prepared here`);
      return PROCEED;
    }
    return this.refused(`the controller refused the prepare: ${answer.summary}`);
  }

  /** A prepare that cannot be done as asked: the VM would land where its ports are not prepared. */
  private refused(why: string): number {
    const fail = this.config.refusedPrepare === 'fail';
    this.say('error', `${why}; ${fail ? 'the incoming migration is refused (OVERLAY_HOOK_REFUSED_PREPARE=fail)' : 'the migration proceeds (OVERLAY_HOOK_REFUSED_PREPARE=proceed)'}`);
    if (fail) {
      // libvirt logs a failed hook's stderr with the migration's error.
      process.stderr.write(`overlay: ${why}\n`);
    }
    return fail ? FAIL : PROCEED;
  }

  /** Destination: the incoming domain stopped. Its migration, if still open, cannot succeed: abort it. */
  private async abortIncoming(domain: Domain): Promise<number> {
    const incoming = this.state.load(domain.uuid);
    if (!incoming) {
      return PROCEED;
    }
    const id = incoming.migrationId;
    const answer = await this.api.post(`/v1/migrations/${id}/abort`);
    if (answer.status === 200) {
      this.state.forget(domain.uuid);
      const state = (answer.body as { state?: string } | null)?.state;
      this.say('info', `migration ${id} ${state === 'aborted' ? 'aborted' : `is ${state}`}: the incoming domain stopped before the migration finished`);
    } else if (answer.status === 409 && answer.code === 'MIGRATION_COMMITTED') {
      this.state.forget(domain.uuid);
      this.say('info', `migration ${id} was committed (the domain ran here): nothing to abort`);
    } else if (answer.status === 404) {
      this.state.forget(domain.uuid);
      this.say('info', `migration ${id} is no longer kept by the controller: nothing to abort`);
    } else {
      this.say('warning', `could not abort migration ${id} (${answer.summary}): it expires at its TTL`);
    }
    return PROCEED;
  }

  /** Source: the domain stopped here; the open migrations of its ports away from this host are committed or aborted. */
  private async closeOutgoing(domain: Domain, close: 'commit' | 'abort', why: string): Promise<number> {
    const migrations = new Map<string, string>();
    for (const iface of domain.interfaces) {
      const found = await this.portsOf(iface);
      if (!Array.isArray(found)) {
        this.say('warning', `port lookup failed (${found.summary}): no migration closed (${why}); an open one expires at its TTL`);
        return PROCEED;
      }
      for (const port of found) {
        if (port.hostId === this.config.hostId && port.migration && port.migration.destinationHostId !== this.config.hostId) {
          migrations.set(port.migration.id, port.migration.destinationHostId);
        }
      }
    }
    for (const [id, destination] of migrations) {
      const answer = close === 'commit' ? await this.commit(id) : await this.api.post(`/v1/migrations/${id}/abort`);
      if (answer.status === 200) {
        const done = close === 'commit' ? `committed: its ports are bound to host ${destination}` : 'aborted';
        this.say('info', `migration ${id} ${done} (${why})`);
      } else {
        this.say(answer.status === 0 || answer.status >= 500 ? 'warning' : 'error', `could not ${close} migration ${id} (${why}): ${answer.summary}`);
      }
    }
    return PROCEED;
  }

  /** A commit, tried again while the destination has not acknowledged the prepare (409 MIGRATION_NOT_READY), until the hook's deadline. */
  private async commit(id: string): Promise<Answer> {
    for (;;) {
      const answer = await this.api.post(`/v1/migrations/${id}/commit`);
      if (answer.status !== 409 || answer.code !== 'MIGRATION_NOT_READY' || this.deadline.aborted) {
        return answer;
      }
      try {
        await sleep(NOT_READY_RETRY_MS, undefined, { signal: this.deadline });
      } catch {
        return answer;
      }
    }
  }

  /** The ports an interface may be: the one its alias names, else those with its MAC. An Answer when the controller did not answer. */
  private async portsOf(iface: DomainInterface): Promise<PortView[] | Answer> {
    if (iface.portId === null && iface.mac === null) {
      return [];
    }
    const answer = iface.portId !== null ? await this.api.get(`/v1/ports/${iface.portId}`) : await this.api.get(`/v1/ports?mac=${iface.mac}&limit=16`);
    if (answer.status === 200) {
      return iface.portId !== null ? [answer.body as PortView] : ((answer.body as { items?: PortView[] } | null)?.items ?? []);
    }
    if (answer.status === 404) {
      return [];
    }
    return answer;
  }
}

function describe(iface: DomainInterface): string {
  return `interface ${iface.index} (${iface.portId !== null ? `alias port ${iface.portId}` : iface.mac !== null ? `mac ${iface.mac}` : 'no MAC'})`;
}
