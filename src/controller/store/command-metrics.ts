import type Redis from 'ioredis';
import { ReplyError, type Command } from 'ioredis';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Counter, Histogram } from 'prom-client';

/** A command's name as the metrics label it: the script's name for our Lua scripts, else the Redis command. */
type CommandLabel = 'command';

/**
 * How long each Redis command of a connection takes, from the moment ioredis sends it (auto-
 * pipelined commands included) to its answer, and which fail: `reply` (Redis refused it; a
 * script's own refusal, `OVERLAY\t...`, is an answer, not an error) or `unavailable` (the
 * connection failed or the command timed out). Scripts are named by their registered name
 * (`overlayPortCreate`), not `evalsha`: the label stays bounded (a fixed set of commands and
 * scripts) and says which write was slow. The instruments belong to no registry; the controller's
 * metrics (metrics/) register them.
 */
export class CommandMetrics {
  readonly duration = new Histogram<CommandLabel>({
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

  /** Names a Lua script (the source exactly as given to ioredis' defineCommand, which sends its SHA-1). */
  script(name: string, lua: string): void {
    this.scripts.set(createHash('sha1').update(lua).digest('hex'), name);
  }

  /** Times every command `client` sends from now on (wraps its sendCommand: ioredis has no hook for it). */
  instrument(client: Redis): void {
    const send = client.sendCommand.bind(client) as (command: Command, ...rest: unknown[]) => unknown;
    (client as unknown as { sendCommand: typeof send }).sendCommand = (command, ...rest) => {
      // Named before it is sent: ioredis rewrites a script's first EVALSHA on a connection into an EVAL of its source as it writes it.
      const labels = { command: this.nameOf(command) };
      const start = performance.now();
      const result = send(command, ...rest);
      command.promise.then(
        () => this.duration.observe(labels, (performance.now() - start) / 1000),
        (err: unknown) => {
          if (err instanceof ReplyError && (err as Error).message.startsWith('OVERLAY\t')) {
            this.duration.observe(labels, (performance.now() - start) / 1000);
          } else {
            this.errors.inc({ ...labels, error: err instanceof ReplyError ? 'reply' : 'unavailable' });
          }
        },
      );
      return result;
    };
  }

  private nameOf(command: Command): string {
    if (command.name === 'evalsha') {
      const sha = command.args[0];
      return (typeof sha === 'string' && this.scripts.get(sha)) || command.name;
    }
    return command.name;
  }
}
