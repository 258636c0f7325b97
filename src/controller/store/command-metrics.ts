import type Redis from 'ioredis';
import { ReplyError, type Command } from 'ioredis';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Counter } from 'prom-client';
import { KeyedHistogram } from '../metrics/keyed-histogram';

/** A command's name as the metrics label it: the script's name for our Lua scripts, else the Redis command. */
type CommandLabel = 'command';

/**
 * How long each Redis command of a connection takes, from the moment ioredis sends it (auto-
 * pipelined commands included) to its answer, and which fail: `reply` (Redis refused it; a
 * script's own refusal, `OVERLAY\t...`, and NOSCRIPT are answers, not errors) or `unavailable` (the
 * connection failed or the command timed out). Scripts are named by their registered name
 * (`overlayPortCreate`), not `evalsha`: the label stays bounded (a fixed set of commands and
 * scripts) and says which write was slow. The instruments belong to no registry; the controller's
 * metrics (metrics/) register them.
 */
export class CommandMetrics {
  readonly duration = new KeyedHistogram<CommandLabel>({
    name: 'overlay_redis_command_duration_seconds',
    help: 'Latency of the Redis commands answered, as this replica sees it (sent to answered), by command; Lua scripts by their name',
    labelNames: ['command'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [],
  });
  readonly errors = new Counter<CommandLabel | 'error'>({
    name: 'overlay_redis_command_errors_total',
    help: 'Redis commands that failed, by command and error: reply (Redis refused it) or unavailable (connection lost, timeout)',
    labelNames: ['command', 'error'],
    registers: [],
  });
  /** SHA-1 of a script's source -> its name. */
  private readonly scripts = new Map<string, string>();

  /** Names a Lua script by the SHA-1 of its source, which EVALSHA sends. */
  script(name: string, sha: string): void {
    this.scripts.set(sha, name);
  }

  /** Times every command `client` sends from now on (wraps its sendCommand: ioredis has no hook for it). */
  instrument(client: Redis): void {
    const send = client.sendCommand.bind(client) as (command: Command, ...rest: unknown[]) => unknown;
    (client as unknown as { sendCommand: typeof send }).sendCommand = (command, ...rest) => {
      const name = this.nameOf(command);
      const start = performance.now();
      const result = send(command, ...rest);
      // The series found by the command's name: no labels object per command (KeyedHistogram).
      const answered = (): void => this.duration.observeAs(name, () => ({ command: name }), (performance.now() - start) / 1000);
      command.promise.then(answered, (err: unknown) => {
        // A script's refusal is its answer; NOSCRIPT asks for the source, which RedisStore then sends (no failure either).
        if (err instanceof ReplyError && /^(OVERLAY\t|NOSCRIPT )/.test((err as Error).message)) {
          answered();
        } else {
          this.errors.inc({ command: name, error: err instanceof ReplyError ? 'reply' : 'unavailable' });
        }
      });
      return result;
    };
  }

  private nameOf(command: Command): string {
    const first = command.args[0];
    if (command.name === 'evalsha') {
      return (typeof first === 'string' && this.scripts.get(first)) || command.name;
    }
    // A script's source, sent after Redis answered NOSCRIPT (rare: after a restart or a failover).
    if (command.name === 'eval' && typeof first === 'string') {
      return this.scripts.get(createHash('sha1').update(first).digest('hex')) ?? command.name;
    }
    return command.name;
  }
}
