import { HttpError, type JsonHttpClient } from './http-client';
import { runPool, type PoolResult } from './pool';
import { PortFactory } from './port-factory';

/*
 * The port workload of the REST benchmark (run.ts), which the HA (ha.ts) and OVN peer (ovn.ts)
 * phases run too: its shape and its calls, one definition for all of them.
 */

export const PORT_WORKLOAD = {
  segments: 100,
  hosts: 16,
  /** Ports per POST /v1/ports/batch. */
  batchSize: 1_000,
  batchInFlight: 2,
  singleConcurrency: 64,
  /** A measured round of one-per-call creates: at most this many, or this long. */
  singleRoundMax: 2_000,
  singleRoundMs: 2_500,
} as const;

/** A tenant, `segments` segments with /16 CIDRs (10.<i>.0.0/16) and `hosts` hosts: what the factory's ports need. */
export async function portFixtures(client: JsonHttpClient, opts: { name: string; segments: number; hosts: number }): Promise<PortFactory> {
  const tenant = await client.json<{ id: string }>('POST', '/v1/tenants', { name: `bench-${opts.name}` });
  const segments: { id: string; tenantId: string; index: number }[] = [];
  for (let i = 0; i < opts.segments; i++) {
    const s = await client.json<{ id: string }>('POST', '/v1/segments', { tenantId: tenant.id, name: `${opts.name}-${i}`, cidr: `10.${i}.0.0/16` });
    segments.push({ id: s.id, tenantId: tenant.id, index: i });
  }
  const hostIds: string[] = [];
  for (let i = 0; i < opts.hosts; i++) {
    hostIds.push((await client.json<{ id: string }>('POST', '/v1/hosts', { name: `hv-${i}`, vtepIp: `192.0.2.${i + 1}` })).id);
  }
  return new PortFactory(segments, hostIds);
}

/** `calls` batch bodies of `size` ports each, serialized before the clock starts (the load generator shares the cores). */
export function batchBodies(factory: PortFactory, calls: number, size: number = PORT_WORKLOAD.batchSize): string[] {
  return Array.from({ length: calls }, () => JSON.stringify({ ports: factory.take(size) }));
}

/** `count` single-port bodies, serialized before the clock starts. */
export function singleBodies(factory: PortFactory, count: number): string[] {
  return Array.from({ length: count }, () => JSON.stringify(factory.next()));
}

interface RunOptions {
  maxMs: number;
  shouldStop?: () => boolean;
  maxErrors?: number;
  /** Collects each 2xx answer's text (unparsed: the load generator shares the cores), to learn the created ports' ids after the clock stops. */
  answers?: string[];
}

/** Sends one call; its answer's text goes to `answers` when given. */
async function post(client: JsonHttpClient, path: string, body: string, answers: string[] | undefined): Promise<void> {
  if (!answers) {
    await client.send('POST', path, body);
    return;
  }
  const res = await client.request('POST', path, body, { keepBody: true });
  if (res.status < 200 || res.status >= 300) {
    throw new HttpError(res.status, res.text, `POST ${path}`);
  }
  answers.push(res.text);
}

/** The ids of the ports that answers of POST /v1/ports/batch (`{items: [...]}`) and POST /v1/ports (one port) name. */
export function createdPortIds(answers: string[]): string[] {
  return answers.flatMap((text) => {
    const body = JSON.parse(text) as { id?: string; items?: { id: string }[] };
    return body.items ? body.items.map((p) => p.id) : [body.id!];
  });
}

/** POST /v1/ports/batch of each body (`size` ports each), `batchInFlight` at a time. */
export function createBatches(client: JsonHttpClient, bodies: string[], opts: RunOptions & { size?: number }): Promise<PoolResult> {
  const size = opts.size ?? PORT_WORKLOAD.batchSize;
  return runPool({
    count: bodies.length,
    concurrency: PORT_WORKLOAD.batchInFlight,
    maxMs: opts.maxMs,
    shouldStop: opts.shouldStop,
    maxErrors: opts.maxErrors ?? 3,
    task: async (i) => (await post(client, '/v1/ports/batch', bodies[i], opts.answers), size),
  });
}

/** POST /v1/ports of each body, `singleConcurrency` in flight, until all are sent or `maxMs` has passed. */
export function createSingles(client: JsonHttpClient, bodies: string[], opts: RunOptions): Promise<PoolResult> {
  return runPool({
    count: bodies.length,
    concurrency: PORT_WORKLOAD.singleConcurrency,
    maxMs: opts.maxMs,
    shouldStop: opts.shouldStop,
    maxErrors: opts.maxErrors,
    task: async (i) => (await post(client, '/v1/ports', bodies[i], opts.answers), 1),
  });
}
