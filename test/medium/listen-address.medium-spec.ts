import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { GRPC_LISTEN_BACKLOG } from '../../src/controller/distribution/sync.server';
import { api, dropPrefix, uniquePrefix } from '../support/controller-harness';
import { ControllerChild, ensureControllerBuilt } from '../support/controller-process';
import { waitUntil } from '../support/agents';
import { freePort } from '../support/private-redis';
import { RawAgent } from '../support/raw-agent';

/** Resolves with the error code of a GET that cannot connect, or 'answered'. */
function connectError(url: string): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve('answered');
    });
    req.setTimeout(5_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/**
 * OVERLAY_HTTP_HOST and OVERLAY_GRPC_HOST on a real overlayd process (the built main.js): each
 * server listens where it is told and nowhere else, an IPv6 address included, and the startup
 * line says where.
 */
describe('listen addresses', () => {
  const prefix = uniquePrefix('listen');
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  let ctl: ControllerChild | undefined;
  const agents: RawAgent[] = [];

  beforeAll(() => {
    ensureControllerBuilt();
  }, 120_000);

  afterAll(async () => {
    agents.forEach((agent) => agent.close());
    ctl?.kill();
    await dropPrefix(redisUrl, prefix);
  });

  it('serves the REST API on OVERLAY_HTTP_HOST and gRPC on OVERLAY_GRPC_HOST (IPv6 ::1)', async () => {
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    ctl = await ControllerChild.start(
      { REDIS_URL: redisUrl, OVERLAY_KEY_PREFIX: prefix, OVERLAY_GRPC_INSECURE: 'true', OVERLAY_LOG_FORMAT: 'text', OVERLAY_HTTP_HOST: '127.0.0.1', OVERLAY_GRPC_HOST: '::1', OVERLAY_GRPC_PORT: String(grpcPort) },
      httpPort,
    );
    const started = `listening on http://127.0.0.1:${httpPort} (REST API) and [::1]:${grpcPort} (agents' gRPC, insecure)`;
    await waitUntil(() => ctl!.output.some((line) => line.includes(started)), 5_000, () => `no line with ${JSON.stringify(started)} in:\n${ctl!.output.slice(-10).join('\n')}`);

    // The REST API is on 127.0.0.1 only.
    expect(await connectError(`http://[::1]:${httpPort}/healthz`)).toBe('ECONNREFUSED');

    // gRPC is on [::1] only: an agent there syncs, one dialing 127.0.0.1 does not get through.
    expect((await api(`http://127.0.0.1:${httpPort}`).post('/v1/hosts', { name: 'hv-v6', vtepIp: '192.0.2.31' })).status).toBe(201);
    const v6 = new RawAgent(`[::1]:${grpcPort}`, 'hv-v6', 'v6');
    agents.push(v6);
    await waitUntil(() => v6.delivered || v6.ended !== undefined, 10_000, () => 'no snapshot over [::1]');
    expect(v6.ended).toBeUndefined();
    const v4 = new RawAgent(`127.0.0.1:${grpcPort}`, 'hv-v6', 'v4');
    agents.push(v4);
    await waitUntil(() => v4.ended !== undefined, 10_000, () => 'a stream to 127.0.0.1 neither failed nor ended');
    expect(v4.ended).toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(v4.delivered).toBe(false);

    // The gRPC listener's backlog (a LISTEN socket's Send-Q) is ours, not Node's default of 511:
    // a reconnect storm of thousands of agents must not overflow it. The kernel caps it at somaxconn.
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    const listen = execFileSync('ss', ['-ltnH', `sport = :${grpcPort}`], { encoding: 'utf8' }).trim().split(/\s+/);
    expect({ state: listen[0], backlog: Number(listen[2]) }).toEqual({ state: 'LISTEN', backlog: Math.min(GRPC_LISTEN_BACKLOG, somaxconn) });
  });
});
