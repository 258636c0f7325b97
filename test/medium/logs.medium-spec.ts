import { Writable } from 'node:stream';
import { createLog, loggerOf } from '../../src/common/logger';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { api, dropPrefix, startController, TEST_ADMIN_TOKEN, uniquePrefix, type Harness } from '../support/controller-harness';
import { created } from '../support/factories';

type Line = Record<string, any>;

/** A pino destination that keeps every line, raw (to look for secrets) and parsed. */
function capture(): Writable & { raw: string[]; lines: Line[] } {
  const raw: string[] = [];
  const lines: Line[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) {
        raw.push(l);
        lines.push(JSON.parse(l) as Line);
      }
      done();
    },
  });
  return Object.assign(out, { raw, lines });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/*
 * The log of a real controller (and of two in-process agents), in the JSON format at the default
 * level: a line per API call with its route, status, duration, caller and request id, lines for
 * the agents' streams and each migration step, and no secret anywhere.
 */
describe('the log: one line per API call, per stream event and per migration step', () => {
  const prefix = uniquePrefix('logs');
  const controllerLog = capture();
  const agentLog = capture();
  let ctl: Harness;
  let operatorToken: string;
  let operatorTokenId: string;
  const agents: TestAgent[] = [];
  const hostIds: Record<'src' | 'dst', string> = { src: '', dst: '' };
  let segmentId: string;

  /** A call with its answer's x-request-id. */
  async function call(method: string, path: string, opts: { token?: string | null; body?: unknown; requestId?: string } = {}): Promise<{ status: number; body: any; requestId: string | null }> {
    const token = opts.token === undefined ? operatorToken : opts.token;
    const res = await fetch(ctl.url + path, {
      method,
      headers: {
        ...(token !== null && { authorization: `Bearer ${token}` }),
        ...(opts.body !== undefined && { 'content-type': 'application/json' }),
        ...(opts.requestId !== undefined && { 'x-request-id': opts.requestId }),
      },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, requestId: res.headers.get('x-request-id') };
  }

  /** The request line of the call that got `requestId` (it is written once the answer is sent: waited for). */
  async function requestLine(requestId: string): Promise<Line> {
    await waitUntil(() => controllerLog.lines.some((l) => l.reqId === requestId), 5_000, () => `no request line with reqId ${requestId}`);
    const lines = controllerLog.lines.filter((l) => l.reqId === requestId);
    expect(lines).toHaveLength(1);
    return lines[0];
  }

  const stepLines = (migrationId: string) => controllerLog.lines.filter((l) => l.component === 'migrations' && l.migration === migrationId).map((l) => l.step as string);

  beforeAll(async () => {
    ctl = await startController({ prefix, log: createLog({ logFormat: 'json', logLevel: 'log' }, 'overlayd', controllerLog) });
    const admin = api(ctl.url);
    const operator = await created(admin.post('/v1/tokens', { name: 'ops-alice', role: 'operator' }));
    operatorToken = operator.token;
    operatorTokenId = operator.id;
    const tenantId = (await created(admin.post('/v1/tenants', { name: 'acme' }))).id;
    segmentId = (await created(admin.post('/v1/segments', { tenantId, name: 'app', cidr: '10.1.0.0/16' }))).id;
    for (const [name, vtepIp] of [['src', '192.0.2.11'], ['dst', '192.0.2.12']] as const) {
      hostIds[name] = (await created(admin.post('/v1/hosts', { name: `logs-${name}`, vtepIp }))).id;
      const a = makeAgent(`logs-${name}`, ctl.grpcTarget, { vtepIp }, undefined, { logger: loggerOf(createLog({ logFormat: 'json', logLevel: 'log' }, 'overlay-agent', agentLog).child({ host: `logs-${name}` })) });
      agents.push(a);
      await a.agent.start();
    }
    await waitUntil(() => agents.every((a) => a.agent.synced), 10_000, () => 'agents synced');
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it('writes a request line for each call: route template, status, duration, the caller, the request id it answers in x-request-id', async () => {
    const port = await call('POST', '/v1/ports', { body: { segmentId, hostId: hostIds.src, vmId: 'vm-1', ips: ['10.1.0.5'] } });
    expect(port.status).toBe(201);
    expect(port.requestId).toMatch(UUID);
    const line = await requestLine(port.requestId!);
    expect(line).toMatchObject({
      level: 'info',
      name: 'overlayd',
      component: 'http',
      method: 'POST',
      route: '/v1/ports',
      status: 201,
      actor: { tokenId: operatorTokenId, name: 'ops-alice', role: 'operator' },
      msg: expect.stringMatching(/^POST \/v1\/ports 201 [\d.]+ ms$/),
    });
    expect(line.durationMs).toEqual(expect.any(Number));
    expect(line.durationMs).toBeGreaterThanOrEqual(0);

    // A route with an id is logged by its template, not its URL.
    const read = await call('GET', `/v1/ports/${port.body.id}`);
    expect(await requestLine(read.requestId!)).toMatchObject({ method: 'GET', route: '/v1/ports/:id', status: 200, actor: { name: 'ops-alice' } });
  });

  it("echoes a client's well-formed x-request-id, and replaces one that is not", async () => {
    const mine = await call('GET', '/v1/hosts', { requestId: 'trace-4bf92f3577b34da6' });
    expect(mine.requestId).toBe('trace-4bf92f3577b34da6');
    expect(await requestLine('trace-4bf92f3577b34da6')).toMatchObject({ route: '/v1/hosts', status: 200 });

    const hostile = await call('GET', '/v1/hosts', { requestId: 'x", "level": "fatal' });
    expect(hostile.requestId).toMatch(UUID);
    expect(await requestLine(hostile.requestId!)).toMatchObject({ route: '/v1/hosts', status: 200 });
    const long = await call('GET', '/v1/hosts', { requestId: 'x'.repeat(129) });
    expect(long.requestId).toMatch(UUID);
  });

  it('logs refused and unknown calls too: no actor before authentication, the path when no route matched', async () => {
    const refused = await call('GET', '/v1/tenants', { token: 'not-a-token-but-long-enough-to-look-like-one-0123456789' });
    expect(refused.status).toBe(401);
    expect(refused.requestId).toMatch(UUID);
    const line = await requestLine(refused.requestId!);
    expect(line).toMatchObject({ method: 'GET', route: '/v1/tenants', status: 401 });
    expect(line).not.toHaveProperty('actor');

    const unknown = await call('GET', '/v1/nothing-here?token=abc');
    expect(unknown.status).toBe(404);
    expect(await requestLine(unknown.requestId!)).toMatchObject({ route: null, path: '/v1/nothing-here', status: 404 });
  });

  it('writes a line for each migration step, and a request line for the prepare and the commit', async () => {
    const port = await call('POST', '/v1/ports', { body: { segmentId, hostId: hostIds.src, vmId: 'vm-2', ips: ['10.1.0.6'] } });
    expect(port.status).toBe(201);
    const prepare = await call('POST', '/v1/migrations', { body: { vmId: 'vm-2', sourceHostId: hostIds.src, destinationHostId: hostIds.dst } });
    expect(prepare.status).toBe(201);
    expect(await requestLine(prepare.requestId!)).toMatchObject({ method: 'POST', route: '/v1/migrations', status: 201, actor: { name: 'ops-alice', role: 'operator' } });

    const commit = await call('POST', `/v1/migrations/${prepare.body.id}/commit?wait=realized&timeout=10000`, { requestId: 'commit-1' });
    expect(commit.status).toBe(200);
    expect(commit.requestId).toBe('commit-1');
    expect(await requestLine('commit-1')).toMatchObject({ method: 'POST', route: '/v1/migrations/:id/commit', status: 200, actor: { tokenId: operatorTokenId, name: 'ops-alice', role: 'operator' } });

    const id = prepare.body.id as string;
    await waitUntil(() => stepLines(id).includes('source-cleaned') && stepLines(id).includes('peers-acked'), 10_000, () => `steps logged: ${stepLines(id).join(', ')}`);
    // Each step once, whichever replica or pass observed it.
    expect([...stepLines(id)].sort()).toEqual(['commit', 'destination-acked', 'peers-acked', 'prepare', 'source-cleaned'].sort());
    const commitLine = controllerLog.lines.find((l) => l.migration === id && l.step === 'commit')!;
    expect(commitLine).toMatchObject({ level: 'info', component: 'migrations', revision: expect.any(Number), destinationHostId: hostIds.dst, msg: expect.stringContaining('committed by operator token ops-alice') });
    expect(controllerLog.lines.filter((l) => l.migration === id && l.state === 'completed')).toHaveLength(1);
  });

  it("writes a line for each agent's connect (snapshot or resume), disconnect and NACK, on both sides", async () => {
    const connects = () => controllerLog.lines.filter((l) => l.component === 'sync' && l.event === 'connect' && l.host === 'logs-src');
    expect(connects()).toEqual([expect.objectContaining({ level: 'info', start: 'snapshot', revision: expect.any(Number) })]);
    expect(agentLog.lines.filter((l) => l.host === 'logs-src' && l.event === 'connect')).toEqual([expect.objectContaining({ name: 'overlay-agent', level: 'info', start: 'snapshot' })]);
    expect(agentLog.lines.filter((l) => l.host === 'logs-src' && l.event === 'snapshot')).toEqual([expect.objectContaining({ revision: expect.any(Number), resources: expect.any(Number) })]);

    // A NACK: the next apply fails on the source.
    const src = agents[0];
    src.dataplane.failNext('simulated apply failure');
    const port = await call('POST', '/v1/ports', { body: { segmentId, hostId: hostIds.src, ips: ['10.1.0.7'] } });
    expect(port.status).toBe(201);
    await waitUntil(() => controllerLog.lines.some((l) => l.event === 'nack' && l.host === 'logs-src'), 10_000, () => 'no nack line');
    expect(controllerLog.lines.find((l) => l.event === 'nack')).toMatchObject({ level: 'warn', component: 'sync', revision: expect.any(Number), error: expect.stringContaining('simulated apply failure') });
    expect(agentLog.lines.find((l) => l.event === 'nack')).toMatchObject({ level: 'warn', host: 'logs-src', error: expect.stringContaining('simulated apply failure') });

    // The stream ends, and comes back resumed from where the agent was.
    await src.agent.stop();
    await waitUntil(() => controllerLog.lines.some((l) => l.event === 'disconnect' && l.host === 'logs-src'), 10_000, () => 'no disconnect line');
    const again = makeAgent('logs-src', ctl.grpcTarget, { vtepIp: '192.0.2.11' }, src.stateDir, { logger: loggerOf(createLog({ logFormat: 'json', logLevel: 'log' }, 'overlay-agent', agentLog).child({ host: 'logs-src' })) });
    agents[0] = again;
    await again.agent.start();
    await waitUntil(() => connects().length === 2, 10_000, () => 'no second connect line');
    expect(connects()[1]).toMatchObject({ start: 'resume', resumedFrom: expect.any(Number) });
  });

  it('never writes a token: not the bootstrap admin token, not a created one, not a refused one', () => {
    const all = controllerLog.raw.join('\n') + agentLog.raw.join('\n');
    expect(controllerLog.raw.length).toBeGreaterThan(20);
    for (const secret of [TEST_ADMIN_TOKEN, operatorToken, 'not-a-token-but-long-enough-to-look-like-one-0123456789']) {
      expect(all).not.toContain(secret);
    }
    expect(all).not.toMatch(/bearer/i);
  });
});
