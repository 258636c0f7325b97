import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort, startPrivateRedis, type PrivateRedis } from './private-redis';

/**
 * A Redis deployment of a test's own run by Sentinel: one master, `replicas` replicas (each a
 * private redis-server, AOF with appendfsync always) and `sentinels` redis-sentinel processes,
 * all on free ports of 127.0.0.1 with temp directories. Fast failure detection
 * (`downAfterMs`), so that a failover takes seconds.
 */
export interface SentinelDeployment {
  masterName: string;
  /** The data nodes, the initial master first. */
  nodes: PrivateRedis[];
  sentinelPorts: number[];
  /** `host:port,...` for REDIS_SENTINELS. */
  sentinelList: string;
  /** The data node the sentinels name as master now (asks one that answers). */
  currentMaster(): Promise<PrivateRedis | undefined>;
  /** What the sentinels logged of their judgements and failovers (sdown, odown, switch-master...), for a failing test's message. */
  events(): string[];
  destroy(): Promise<void>;
}

/** Polls `probe` every 50 ms until it answers true; past the deadline, throws naming `what` (and the last error). */
export async function waitFor(what: string, deadlineMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      if (await probe()) {
        return;
      }
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${deadlineMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A short-lived client that never reconnects: a probe. */
export async function withClient<T>(port: number, fn: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

export async function startSentinelDeployment(opts: { replicas?: number; sentinels?: number; downAfterMs?: number; failoverTimeoutMs?: number } = {}): Promise<SentinelDeployment> {
  const masterName = 'overlay-test';
  const replicaCount = opts.replicas ?? 2;
  const sentinelCount = opts.sentinels ?? 3;
  const nodes: PrivateRedis[] = [];
  const sentinels: { port: number; dir: string; child: ChildProcess }[] = [];
  const destroy = async () => {
    for (const s of sentinels) {
      if (s.child.exitCode === null && s.child.signalCode === null) {
        const exited = new Promise((r) => s.child.once('exit', r));
        s.child.kill('SIGKILL');
        await exited;
      }
      rmSync(s.dir, { recursive: true, force: true });
    }
    await Promise.all(nodes.map((n) => n.destroy()));
  };
  try {
    const master = await startPrivateRedis();
    nodes.push(master);
    for (let i = 0; i < replicaCount; i++) {
      nodes.push(await startPrivateRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] }));
    }
    await waitFor(`the ${replicaCount} replicas to be in sync`, 20_000, () =>
      withClient(master.port, async (c) => ((await c.info('replication')).match(/state=online/g) ?? []).length === replicaCount),
    );

    for (let i = 0; i < sentinelCount; i++) {
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'overlay-sentinel-'));
      const conf = join(dir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `logfile ${join(dir, 'sentinel.log')}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} ${Math.floor(sentinelCount / 2) + 1}`,
          `sentinel down-after-milliseconds ${masterName} ${opts.downAfterMs ?? 1_000}`,
          `sentinel failover-timeout ${masterName} ${opts.failoverTimeoutMs ?? 5_000}`,
          `sentinel parallel-syncs ${masterName} 1`,
          '',
        ].join('\n'),
      );
      // redis-sentinel rewrites its configuration file (what it learnt): it must be writable, in the temp dir.
      const child = spawn('redis-sentinel', [conf], { stdio: 'ignore' });
      sentinels.push({ port, dir, child });
    }
    // A failover needs a quorum that knows the replicas and the other sentinels (learnt through the master's hello channel).
    await waitFor('the sentinels to know every replica and each other', 30_000, async () => {
      for (const s of sentinels) {
        const known = await withClient(s.port, async (c) => [(await c.call('SENTINEL', 'REPLICAS', masterName)) as unknown[], (await c.call('SENTINEL', 'SENTINELS', masterName)) as unknown[]]);
        if (known[0].length !== replicaCount || known[1].length !== sentinelCount - 1) {
          return false;
        }
      }
      return true;
    });
  } catch (err) {
    await destroy();
    throw err;
  }

  return {
    masterName,
    nodes,
    sentinelPorts: sentinels.map((s) => s.port),
    sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
    async currentMaster() {
      for (const s of sentinels) {
        try {
          const [, port] = (await withClient(s.port, (c) => c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName))) as [string, string];
          return nodes.find((n) => n.port === Number(port));
        } catch {
          // that sentinel is not answering: ask the next
        }
      }
      return undefined;
    },
    events() {
      return sentinels.flatMap((s, i) => {
        const log = join(s.dir, 'sentinel.log');
        return existsSync(log)
          ? readFileSync(log, 'utf8')
              .split('\n')
              .filter((line) => /[+-](sdown|odown|switch-master|failover-abort|promoted-slave|elected-leader|try-failover)/.test(line))
              .map((line) => `sentinel ${i}: ${line}`)
          : [];
      });
    },
    destroy,
  };
}
