import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { Agent } from '../../src/agent/agent';
import type { Logger } from '../../src/common/logger';
import type { AgentConfig } from '../../src/agent/config';
import type { InventoryCollector } from '../../src/agent/inventory/collector';
import { MemoryDataplane } from '../../src/agent/dataplane/memory/memory.dataplane';
import { desiredDataplane } from '../../src/agent/reconcile/plan';
import type { RuleResource } from '../../src/controller/desired-state/resources/policy.resource';
import type { SpanResource } from '../../src/controller/desired-state/resources/span-resource';
import { SpanIndex } from '../../src/controller/desired-state/span-index';
import { memberKind } from '../../src/common/span/member.kind';
import { MaterializedView } from '../../src/controller/store/materialized-view';
import type { RedisStore } from '../../src/controller/store/redis-store';

export const quietLogger: Logger = { info: () => undefined, warn: () => undefined };

/** An agent logger that keeps what it is told, for tests that check what an agent says (and how often). */
export function recordingLogger(): Logger & { lines: { level: 'info' | 'warn'; message: string }[] } {
  const lines: { level: 'info' | 'warn'; message: string }[] = [];
  return { lines, info: (message) => lines.push({ level: 'info', message }), warn: (message) => lines.push({ level: 'warn', message }) };
}

export interface TestAgent {
  agent: Agent;
  dataplane: MemoryDataplane;
  stateDir: string;
  cleanup(): Promise<void>;
}

/** An in-process overlay-agent on the in-memory dataplane, with a state directory of its own. */
export function makeAgent(
  hostName: string,
  controller: string | string[],
  overrides: Partial<AgentConfig> = {},
  stateDir?: string,
  opts: { logger?: Logger; random?: () => number; dataplane?: MemoryDataplane; inventory?: Pick<InventoryCollector, 'collect'> & Partial<Pick<InventoryCollector, 'watchLinks'>> } = {},
): TestAgent {
  const dir = stateDir ?? mkdtempSync(join(tmpdir(), `overlay-agent-${hostName}-`));
  const dataplane = opts.dataplane ?? new MemoryDataplane();
  const agent = new Agent(
    { controllers: Array.isArray(controller) ? controller : [controller], hostName, dataplane: 'memory', stateDir: dir, backoffBaseMs: 20, backoffMaxMs: 300, reconcileIntervalMs: 60_000, ...overrides },
    dataplane,
    opts.logger ?? quietLogger,
    opts.random,
    opts.inventory,
  );
  return {
    agent,
    dataplane,
    stateDir: dir,
    async cleanup() {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `condition` until it holds or the deadline passes (then throws with `describe()`). */
export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, describe: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms ${describe()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `work`, or a rejection saying `describe()` did not finish once `timeoutMs` passed (its timer cleared either way). */
export async function finishesWithin<T>(work: Promise<T>, timeoutMs: number, describe: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${describe()} did not finish within ${timeoutMs} ms`)), timeoutMs)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

const rule = (r: RuleResource): unknown[] => [r.ethertype, r.protocol, r.portMin, r.portMax, r.icmpType, r.icmpCode, r.remoteCidr, r.remoteGroupId];

/** Normal form of a span, for comparison: sorted resources as plain objects. */
export function normalizeResources(resources: SpanResource[]): string[] {
  return resources
    .map((r) => {
      switch (r.kind) {
        case 'segment':
          return JSON.stringify({ s: r.segment.id, t: r.segment.tenantId, v: r.segment.vni, f: r.segment.vteps });
        case 'port':
          return JSON.stringify({ p: r.port.id, s: r.port.segmentId, m: r.port.mac, i: r.port.ips, h: r.port.hostId, e: r.port.vtepIp, vm: r.port.vmId, ph: r.port.preparedHostId, mi: r.port.migrationId, pv: r.port.preparedVtepIp, an: r.port.analyzer });
        case 'policy': {
          const p = r.policy;
          return JSON.stringify({ policy: p.portId, ps: p.portSecurity, m: p.mac, i: p.ips, a: p.allowedAddressPairs.map((x) => [x.ip, x.mac]), in: p.ingress.map(rule), eg: p.egress.map(rule) });
        }
        case 'member':
          return JSON.stringify({ member: r.member.groupId, f: r.member.family, c: r.member.cidr });
        case 'mirror':
          return JSON.stringify({ mirror: r.id, ...r.mirror });
        case 'mirrorSink':
          return JSON.stringify({ mirrorSink: r.id, ...r.mirrorSink });
      }
    })
    .sort();
}

export function agentResources(agent: Agent): string[] {
  const state = agent.state;
  const toRule = (x: RuleResource): RuleResource => ({ ...x });
  const resources: SpanResource[] = [
    ...[...state.segments.values()].map((s) => ({ kind: 'segment' as const, id: s.id, segment: { id: s.id, tenantId: s.tenantId, vni: s.vni, vteps: [...s.vteps] } })),
    ...[...state.ports.values()].map((p) => ({ kind: 'port' as const, id: p.id, port: { id: p.id, segmentId: p.segmentId, mac: p.mac, ips: [...p.ips], hostId: p.hostId, vtepIp: p.vtepIp, vmId: p.vmId, preparedHostId: p.preparedHostId, migrationId: p.migrationId, preparedVtepIp: p.preparedVtepIp, analyzer: p.analyzer, tapName: p.tapName ?? '' } })),
    ...[...state.policies.values()].map((p) => ({
      kind: 'policy' as const,
      id: p.portId,
      policy: {
        portId: p.portId,
        portSecurity: p.portSecurity,
        mac: p.mac,
        ips: [...p.ips],
        allowedAddressPairs: p.allowedAddressPairs.map((x) => ({ ip: x.ip, mac: x.mac })),
        ingress: p.ingress.map((x) => toRule(x)),
        egress: p.egress.map((x) => toRule(x)),
      },
    })),
    ...[...state.members.values()].map((m) => ({ kind: 'member' as const, id: memberKind.idOf(m), member: { groupId: m.groupId, family: m.family as 'IPv4' | 'IPv6', cidr: m.cidr } })),
    ...[...state.mirrors.entries()].map(([id, m]) => ({ kind: 'mirror' as const, id, mirror: { ...m } })),
    ...[...state.mirrorSinks.entries()].map(([id, s]) => ({ kind: 'mirrorSink' as const, id, mirrorSink: { ...s } })),
  ];
  return normalizeResources(resources);
}

/** Every host's span computed from scratch from a fresh snapshot of Redis. */
export async function spansFromScratch(redis: Redis, store: RedisStore): Promise<{ revision: number; spans: Map<string, string[]>; hostsByName: Map<string, string> }> {
  const state = await MaterializedView.readSnapshot(redis, store);
  const index = new SpanIndex(state);
  const spans = new Map<string, string[]>();
  for (const hostId of state.hosts.keys()) {
    spans.set(hostId, normalizeResources(index.spanOf(hostId).map((k) => index.resource(k, hostId)!)));
  }
  return { revision: state.revision, spans, hostsByName: new Map([...state.hosts.values()].map((h) => [h.name, h.id])) };
}

/** The agent's dataplane equals what its desired state asks for. */
export function dataplaneMatchesDesired(test: TestAgent): boolean {
  const want = desiredDataplane(test.agent.state);
  const have = test.dataplane.dump();
  return JSON.stringify([...want.segments].sort()) === JSON.stringify([...have.segments].sort()) && JSON.stringify([...want.fdb].sort()) === JSON.stringify([...have.fdb].sort()) && JSON.stringify([...want.ports].sort()) === JSON.stringify([...have.ports].sort());
}
