import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { overlayProto } from '../../src/common/proto';
import type { SyncResponse__Output } from '../../src/generated/overlay/v1/SyncResponse';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';

/** Opens a raw Sync stream and resolves with how it ended (first message, or the error status). */
function helloAs(target: string, credentials: grpc.ChannelCredentials, hostName: string): Promise<{ ok: true } | { ok: false; code: grpc.status; details: string }> {
  const client = new overlayProto.SyncService(target, credentials);
  return new Promise((resolve) => {
    const stream = client.Sync();
    const finish = (result: { ok: true } | { ok: false; code: grpc.status; details: string }) => {
      stream.cancel();
      client.close();
      resolve(result);
    };
    stream.on('data', (_m: SyncResponse__Output) => finish({ ok: true }));
    stream.on('error', (err: grpc.ServiceError) => finish({ ok: false, code: err.code, details: err.details }));
    stream.write({ hello: { hostName, agentVersion: 'test' } });
  });
}

describe('agent authentication (TLS client certificates)', () => {
  const prefix = uniquePrefix('tls');
  const dir = mkdtempSync(join(tmpdir(), 'overlay-ca-'));
  let ctl: Harness;
  let agent: TestAgent | undefined;
  const file = (name: string) => join(dir, name);

  beforeAll(async () => {
    execFileSync('bash', [join(__dirname, '../../scripts/dev-ca.sh'), dir, '--', 'hv-a', 'hv-b', 'hv-unregistered']);
    ctl = await startController({
      prefix,
      env: { OVERLAY_GRPC_INSECURE: '', OVERLAY_TLS_CA: file('ca.pem'), OVERLAY_TLS_CERT: file('controller.pem'), OVERLAY_TLS_KEY: file('controller-key.pem') },
    });
    const client = api(ctl.url);
    await client.post('/v1/hosts', { name: 'hv-a', vtepIp: '192.0.2.10' });
    await client.post('/v1/hosts', { name: 'hv-b', vtepIp: '192.0.2.11' });
  });

  afterAll(async () => {
    await agent?.cleanup();
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  const credentialsFor = (host: string) =>
    grpc.credentials.createSsl(readFileSync(file('ca.pem')), readFileSync(file(`agent-${host}-key.pem`)), readFileSync(file(`agent-${host}.pem`)));

  it('lets an agent with its own certificate sync', async () => {
    agent = makeAgent('hv-a', ctl.grpcTarget.replace('127.0.0.1', 'localhost'), {
      tls: { ca: file('ca.pem'), cert: file('agent-hv-a.pem'), key: file('agent-hv-a-key.pem') },
    });
    await agent.agent.start();
    await waitUntil(() => agent!.agent.synced, 10_000, () => 'agent hv-a never synced over TLS');
    expect(agent.agent.state.hostId).not.toBe('');
  });

  it('refuses a certificate for host A subscribing as host B', async () => {
    const result = await helloAs(ctl.grpcTarget.replace('127.0.0.1', 'localhost'), credentialsFor('hv-a'), 'hv-b');
    expect(result).toMatchObject({ ok: false, code: grpc.status.PERMISSION_DENIED });
  });

  it('refuses a valid certificate for a host that is not registered: NOT_FOUND at the Hello', async () => {
    const result = await helloAs(ctl.grpcTarget.replace('127.0.0.1', 'localhost'), credentialsFor('hv-unregistered'), 'hv-unregistered');
    expect(result).toEqual({ ok: false, code: grpc.status.NOT_FOUND, details: 'no host named hv-unregistered is registered' });
  });

  it('refuses a client without a certificate', async () => {
    const result = await helloAs(ctl.grpcTarget.replace('127.0.0.1', 'localhost'), grpc.credentials.createSsl(readFileSync(file('ca.pem'))), 'hv-a');
    expect(result.ok).toBe(false);
    expect([grpc.status.UNAVAILABLE, grpc.status.UNAUTHENTICATED]).toContain((result as { code: grpc.status }).code);
  });

  it('refuses a plaintext client', async () => {
    const result = await helloAs(ctl.grpcTarget, grpc.credentials.createInsecure(), 'hv-a');
    expect(result).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
  });
});
