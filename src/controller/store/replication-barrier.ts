import type Redis from 'ioredis';
import { ErrorCode, OverlayError } from '../errors';

interface Waiter {
  /** The connection the write was answered on. */
  connection: number;
  resolve(): void;
  reject(err: unknown): void;
}

/** The wait command a server offers: WAITAOF (Redis >= 7.2: the replicas have fsynced it) or WAIT (they have received it). */
export type WaitCommand = 'waitaof' | 'wait';

/** Which wait command a server has, from its answer to `COMMAND INFO WAITAOF` (`[null]` when it does not know it). */
export function waitCommandOf(commandInfo: unknown): WaitCommand {
  return Array.isArray(commandInfo) && Array.isArray(commandInfo[0]) ? 'waitaof' : 'wait';
}

/**
 * "Acknowledged means replicated": a write answered by Redis is confirmed only once `minReplicas`
 * replicas have it, by WAIT (or WAITAOF, where the server has it), on the connection that made the
 * write: Redis counts the replicas that reached that connection's last write.
 *
 * Group commit: a WAIT covers every write answered on its connection before it was sent, so one
 * WAIT at a time is in flight, and the writes answered meanwhile share the next one.
 *
 * A write whose connection dropped before its WAIT was answered on that same connection is not
 * confirmed: a WAIT on a new connection (perhaps to a new master that never saw the write) would
 * count replicas of nothing. Such a write, and one whose replicas did not confirm within
 * `timeoutMs`, fails with STORE_UNAVAILABLE: it may or may not have survived.
 */
export class ReplicationBarrier {
  /** Counts the client's connections: a write and its WAIT must share one. */
  private connection = 0;
  private waiting: Waiter[] = [];
  private busy = false;
  private command: { connection: number; name: WaitCommand } | undefined;

  constructor(
    private readonly client: Redis,
    private readonly minReplicas: number,
    private readonly timeoutMs: number,
  ) {
    client.on('close', () => this.connection++);
  }

  /** Resolves once the writes answered so far on the client are on `minReplicas` replicas. Call it right after the write's answer. */
  confirm(): Promise<void> {
    if (this.minReplicas === 0) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ connection: this.connection, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.busy || this.waiting.length === 0) {
      return;
    }
    const batch = this.waiting;
    this.waiting = [];
    this.busy = true;
    const sentOn = this.connection;
    this.waitOnce()
      .then(
        (acked) => {
          const same = this.connection === sentOn;
          for (const waiter of batch) {
            if (!same || waiter.connection !== sentOn) {
              waiter.reject(this.unknown('the connection to Redis changed before the replicas confirmed it'));
            } else if (acked < this.minReplicas) {
              waiter.reject(this.unknown(`${acked} of the ${this.minReplicas} replicas required confirmed it within ${this.timeoutMs} ms`));
            } else {
              waiter.resolve();
            }
          }
        },
        (err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          batch.forEach((waiter) => waiter.reject(this.unknown(`waiting for the replicas failed (${message})`)));
        },
      )
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }

  /** How many replicas have this connection's writes. */
  private async waitOnce(): Promise<number> {
    const connection = this.connection;
    if (this.command?.connection !== connection) {
      // Asked again on every connection: after a failover the master may be another version.
      this.command = { connection, name: waitCommandOf(await this.client.call('COMMAND', 'INFO', 'WAITAOF')) };
    }
    if (this.command.name === 'waitaof') {
      const [, replicas] = (await this.client.call('WAITAOF', 0, this.minReplicas, this.timeoutMs)) as [number, number];
      return replicas;
    }
    return Number(await this.client.call('WAIT', this.minReplicas, this.timeoutMs));
  }

  private unknown(why: string): OverlayError {
    return new OverlayError(ErrorCode.StoreUnavailable, `the write was not confirmed as replicated: ${why}; its outcome is unknown, read it back before retrying`);
  }
}
