import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type Redis from 'ioredis';
import { ReplyError } from 'ioredis';
import { createHash } from 'node:crypto';
import { ErrorCode, OverlayError, isErrorCode } from '../errors';
import { ControllerConfig } from '../config';
import { RecordEchoes, RecordNonces, type RecordEcho } from './change-log';
import { CommandMetrics } from './command-metrics';
import { EncodedCommand, encodeArgs, type EncodedArgs, type ScriptArg } from './encoded-command';
import { keysFor, type Keys } from './keys';
import { scriptSource } from './lua-prelude';
import { UNAVAILABLE_REPLY, createRedisClient, describeRedis, type RedisSettings } from './redis-connection';
import { ReplicationBarrier } from './replication-barrier';
import type { Actor } from '../auth/principal';

/**
 * The controller's Redis connections and its mutation scripts. Domain repositories register their
 * Lua scripts here and run them through `mutate`, the one place a write to the desired state
 * commits: it maps a script's refusal to the `OverlayError` it names and a lost connection to
 * STORE_UNAVAILABLE, and, with OVERLAY_REDIS_MIN_REPLICAS > 0, answers only once that many
 * replicas have the write (ReplicationBarrier).
 *
 * Commands are never re-sent after a dropped connection (`autoResendUnfulfilledCommands: false`):
 * a mutation whose reply was lost may have happened, and sending it again could apply it twice.
 */
@Injectable()
export class RedisStore implements OnModuleDestroy {
  private readonly logger = new Logger(RedisStore.name);
  /** Reads, and the bookkeeping writes outside the desired state (agents' observations, counters). */
  readonly redis: Redis;
  /**
   * The mutation scripts' connection: `redis` itself, or with OVERLAY_REDIS_MIN_REPLICAS > 0 a
   * second one, since a WAIT holds its connection until the replicas answer and reads must not
   * queue behind it (WAIT counts the replicas of its own connection's writes).
   */
  private readonly writer: Redis;
  private readonly replicated: ReplicationBarrier;
  readonly keys: Keys;
  /** The latency and errors of this connection's commands (not the change log's blocking reads: they wait by design). */
  readonly commands = new CommandMetrics();
  /** The mutation scripts by name: their source and its SHA-1 (what EVALSHA names). */
  private readonly scripts = new Map<string, { lua: string; sha: string }>();
  /** The nonces of the change records this process's scripts make (one per script run, used or not). */
  private readonly nonces = new RecordNonces();
  /** The ops of records this process's scripts are making, which the view's tail takes rather than parses (`mutate`'s `echo`). */
  readonly echoes = new RecordEchoes();
  /** Whether the writer's socket is corked until the next turn of the event loop (corkUntilNextTurn). */
  private corked = false;

  constructor(@Inject(ControllerConfig) readonly config: ControllerConfig) {
    this.keys = keysFor(config.keyPrefix);
    // Auto-pipelining: concurrent requests share socket writes (one syscall for many commands).
    this.redis = RedisStore.connect(config, { commandTimeout: config.redisCommandTimeoutMs, autoPipelining: true });
    RedisStore.reportOutages(this.redis, describeRedis(config), 'redis', this.logger);
    this.commands.instrument(this.redis);
    if (config.redisMinReplicas > 0) {
      this.writer = RedisStore.connect(config, { commandTimeout: config.redisCommandTimeoutMs, autoPipelining: true });
      RedisStore.reportOutages(this.writer, describeRedis(config), 'redis (writes)', this.logger);
      this.commands.instrument(this.writer);
    } else {
      this.writer = this.redis;
    }
    this.replicated = new ReplicationBarrier(this.writer, config.redisMinReplicas, config.redisReplicaTimeoutMs);
  }

  /**
   * A client with the store's reconnect policy: a command waits at most for one reconnect attempt
   * (`maxRetriesPerRequest: 1`) and its command timeout, so that a write during a failover
   * answers 503 soon rather than hanging.
   */
  static connect(settings: Pick<RedisSettings, 'redisUrl' | 'redisSentinel'>, opts: { commandTimeout?: number; autoPipelining?: boolean } = {}): Redis {
    const client = createRedisClient(settings, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      autoResendUnfulfilledCommands: false,
      connectTimeout: 5_000,
      commandTimeout: opts.commandTimeout,
      enableAutoPipelining: opts.autoPipelining ?? false,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
      lazyConnect: false,
      // ioredis' CLIENT SETINFO on every connect is refused by Redis before 7.2 (and ignored by
      // ioredis): left out, so that every command error the metrics count is one of ours.
      disableClientInfo: true,
    });
    RedisStore.failLostCommands(client);
    RedisStore.neverEnd(client);
    return client;
  }

  /** Clients closed on purpose (closeNow): the only ones allowed to stay closed. */
  private static readonly closed = new WeakSet<Redis>();

  /**
   * Reconnects a client that ioredis gave up on. Under Sentinel, ioredis 5.x ends a client for
   * good ('end', every later command refused) when its connection is closed while it is still
   * asking the sentinels for the master: the failover detector does exactly that when a sentinel
   * announces the new master during a reconnect. A store connection ends only at shutdown.
   */
  private static neverEnd(client: Redis): void {
    client.on('end', () => {
      setTimeout(() => {
        if (client.status === 'end' && !RedisStore.closed.has(client)) {
          client.connect().catch(() => undefined); // failures go on through the retry strategy
        }
      }, 200).unref();
    });
  }

  /**
   * Logs a client's connection errors, one line per outage rather than one per reconnect attempt
   * (every 2 s at most, for as long as Redis is away): the first failure to connect says where
   * (no password), why, and that it retries; the reconnection says how long it took. An error
   * on a working connection is logged as it comes.
   */
  static reportOutages(client: Redis, where: string, label: string, logger: Pick<Logger, 'warn' | 'log'>): void {
    let downSince: number | undefined;
    client.on('error', (err: Error) => {
      if (client.status === 'ready') {
        logger.warn(`${label}: ${err.message}`);
      } else if (downSince === undefined) {
        downSince = Date.now();
        logger.warn(`${label}: cannot reach ${where} (${err.message}); retrying (GET /readyz answers 503 meanwhile)`);
      }
    });
    client.on('ready', () => {
      if (downSince !== undefined) {
        logger.log(`${label}: ${where} reachable again after ${((Date.now() - downSince) / 1000).toFixed(1)} s`);
        downSince = undefined;
      }
    });
  }

  /**
   * Rejects the commands a dropped connection had in flight, so their callers see
   * STORE_UNAVAILABLE. Told not to resend them, ioredis drops them when the first reconnect
   * succeeds without ever settling them (ioredis 5.x, `readyHandler`); a lost command of an
   * auto-pipeline then blocks every later auto-pipelined command of the client until its command
   * timeout. They sit in `prevCommandQueue` from the close until the reconnect: settle them as
   * soon as the client starts reconnecting.
   */
  private static failLostCommands(client: Redis): void {
    type Lost = { length: number; shift(): { command: { reject(err: Error): void } } | undefined };
    client.on('reconnecting', () => {
      const lost = (client as unknown as { prevCommandQueue?: Lost | null }).prevCommandQueue;
      while (lost && lost.length > 0) {
        lost.shift()?.command.reject(new Error('connection lost with the command in flight; its outcome is unknown'));
      }
    });
  }

  /**
   * Closes a client at once, whatever its connection is doing, and rejects every command it
   * holds, so their callers see STORE_UNAVAILABLE now rather than at their command timeout; later
   * commands are rejected at once too. ioredis' `disconnect()` alone ends the socket gracefully
   * and settles the queued commands only on its 'close' event: a stalled Redis never answers the
   * FIN (ioredis then waits its 2 s `disconnectTimeout`), and a client waiting to reconnect has no
   * socket to close, so its queue is never settled (ioredis 5.x). Idempotent.
   */
  static closeNow(client: Redis): void {
    type Internals = { stream?: { destroy(): void }; setStatus(status: string): void; flushQueue(err: Error): void };
    const internals = client as unknown as Internals;
    RedisStore.closed.add(client);
    client.disconnect();
    internals.stream?.destroy();
    if (client.status !== 'end') {
      internals.setStatus('end');
    }
    internals.flushQueue(new Error('Connection is closed.'));
  }

  /**
   * A second connection to the same Redis, for blocking reads of the change log that block at
   * most `maxBlockMs`. Its commands still time out (a margin after that): when a connection drops
   * and the first reconnect attempt succeeds, ioredis, told not to resend, discards the command
   * that was in flight without ever settling it, and a blocked XREAD would then wait for ever.
   */
  duplicateForBlocking(maxBlockMs: number): Redis {
    const client = RedisStore.connect(this.config, { commandTimeout: maxBlockMs + 5_000 });
    RedisStore.reportOutages(client, describeRedis(this.config), 'redis (tail)', this.logger);
    return client;
  }

  /**
   * Registers a mutation script (idempotent per name). Its body follows `luaPrelude`, and, when it
   * can make a revision, the recovery guard (no revision while the store is in recovery).
   *
   * Kept here rather than given to ioredis' defineCommand: ioredis copies every defined script
   * onto each pipeline it makes (an auto-pipeline per turn of the event loop under load), two
   * properties per script, which with 32 scripts made a pipeline 20 µs dearer to build (0 scripts
   * 7.4 µs, 32 scripts 27.9 µs). It also meant a script defined while a pipeline was pending was
   * missing from it (the call failed, and ioredis then threw `results[i] is not iterable`).
   */
  defineScript(name: string, body: string): void {
    if (this.scripts.has(name)) {
      return;
    }
    const lua = scriptSource(body);
    const sha = createHash('sha1').update(lua).digest('hex');
    this.scripts.set(name, { lua, sha });
    this.commands.script(name, sha);
  }

  /**
   * Runs a mutation script for `actor` (the caller of a request, or the controller itself), whom
   * the audit trail and the change record name, and answers once the write is as durable as
   * OVERLAY_REDIS_MIN_REPLICAS asks. A script's refusal (an OverlayError) wrote nothing and waits
   * for no replica. Not idempotent by itself: each script documents its own retry behaviour.
   * `echo`: the ops the script's change record will hold, as the caller has them (RecordEchoes).
   */
  mutate(name: string, args: ScriptArg[], actor: Actor, now = Date.now(), echo?: RecordEcho): Promise<unknown> {
    const script = this.scripts.get(name);
    if (script === undefined) {
      return Promise.reject(new Error(`no script ${name}: defineScript it first`));
    }
    const nonce = this.nextNonce();
    // Without nonces every record's is 0: no echo could be told apart.
    const echoed = echo !== undefined && nonce !== '0';
    if (echoed) {
      this.echoes.add(nonce, echo);
    }
    // Encoded here, before anything waits: nothing of `args` (a batch's are 9,000) is held while
    // Redis runs the script (EncodedCommand).
    return this.commit(script, this.scriptArgs(args, actor, now, nonce), echoed ? nonce : undefined);
  }

  private nextNonce(): string {
    return this.config.changeLogNonces ? this.nonces.next() : '0';
  }

  /** A script call's arguments after its SHA-1 or source: numkeys 1, the prelude's (lua-prelude.ts), then the script's own. */
  private scriptArgs(args: ScriptArg[], actor: Actor, now: number, nonce = this.nextNonce()): EncodedArgs {
    return encodeArgs([1, this.keys.base, now, this.config.changeLogMaxLength, JSON.stringify(actor), this.config.eventsRetentionSeconds * 1000, nonce], args);
  }

  private async commit(script: { lua: string; sha: string }, args: EncodedArgs, echoNonce: string | undefined): Promise<unknown> {
    let result: unknown;
    try {
      result = await this.runScript(script, args);
    } catch (err) {
      if (echoNonce !== undefined) {
        this.echoes.drop(echoNonce);
      }
      throw RedisStore.translate(err);
    }
    if (this.config.redisMinReplicas > 0) {
      await this.replicated.confirm();
    }
    return result;
  }

  /**
   * Runs a script by its SHA-1, or by its source when Redis does not have it.
   *
   * Mutation scripts are written to the connection at once rather than through ioredis'
   * auto-pipeline. The auto-pipeline sends one pipeline at a time and holds every command issued
   * meanwhile until its answers are all in, so this process and Redis took turns instead of
   * working at the same time: behind a batch script that Redis runs for 25 ms, the next batch
   * reached Redis only once the first's answer had come back; under single-port writes, 64 in
   * flight, Redis sat idle while this process answered a pipeline's requests and made the next
   * (docs/benchmarks.md). Written directly, a script goes out ahead of any commands the
   * auto-pipeline still holds; nothing here depends on that order: each script is atomic, a read
   * sent earlier and answered later was concurrent with the write anyway, and a replication WAIT is
   * sent only once the writes it covers are answered (ReplicationBarrier). The scripts of one turn
   * of the event loop still leave in one system call: the socket is corked until the next turn.
   */
  private async runScript(script: { lua: string; sha: string }, args: EncodedArgs): Promise<unknown> {
    const send = (command: 'evalsha' | 'eval', first: string): Promise<unknown> => {
      const call = new EncodedCommand(command, first, args, { replyEncoding: 'utf8' });
      this.corkUntilNextTurn();
      void this.writer.sendCommand(call);
      return call.promise;
    };
    try {
      return await send('evalsha', script.sha);
    } catch (err) {
      if (!(err instanceof ReplyError && (err as Error).message.startsWith('NOSCRIPT'))) {
        throw err;
      }
      // Redis does not have it (it restarted, failed over, or never saw it): the script did not
      // run, so sending its source is no second attempt of a write. EVAL also caches it.
      return send('eval', script.lua);
    }
  }

  /**
   * Holds the writer's socket writes until the next turn of the event loop (setImmediate: after
   * this turn's I/O callbacks, so the scripts of every request read in this turn), then writes
   * them in one system call. A socket that is not connected yet is left alone: ioredis queues
   * commands itself until it is.
   */
  private corkUntilNextTurn(): void {
    const socket = this.writer.status === 'ready' ? this.writer.stream : undefined;
    if (this.corked || socket === undefined) {
      return;
    }
    socket.cork();
    this.corked = true;
    setImmediate(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  /** The store's current revision (0 before the first write). */
  async revision(): Promise<number> {
    return Number((await this.read((r) => r.get(this.keys.revision()))) ?? 0);
  }

  /** Runs a read, mapping connection failures to STORE_UNAVAILABLE. */
  async read<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      return await fn(this.redis);
    } catch (err) {
      throw RedisStore.translate(err);
    }
  }

  static translate(err: unknown): unknown {
    const replyMessage = err instanceof ReplyError ? (err as Error).message : undefined;
    if (replyMessage?.startsWith('OVERLAY\t')) {
      const [, code, field, rawMessage] = replyMessage.split('\t');
      const message = rawMessage.replace(/ script: [0-9a-f]+, on @user_script:\d+\.?$/, '');
      if (isErrorCode(code)) {
        return new OverlayError(code, message, { field: field || undefined });
      }
    }
    if (err instanceof ReplyError && !UNAVAILABLE_REPLY.test(replyMessage!)) {
      return err; // a script bug or an unexpected Redis refusal: a 500, loudly
    }
    const message = err instanceof Error ? err.message : String(err);
    return new OverlayError(ErrorCode.StoreUnavailable, `Redis is unavailable (${message}); the outcome of a write in flight is unknown, read it back before retrying`);
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /** At shutdown nothing waits for Redis: commands in flight fail at once (see closeNow). */
  async onModuleDestroy(): Promise<void> {
    RedisStore.closeNow(this.redis);
    RedisStore.closeNow(this.writer);
  }
}
