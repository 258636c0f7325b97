import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

/**
 * The Linux dataplane's one seam to the kernel: every `ip`, `bridge`, `tc`, `nft` and
 * `conntrack` invocation goes through `run`, so unit specs replace it with a fake kernel
 * (fake-kernel.ts) that keeps state and answers from it. Commands run in the caller's network
 * namespace: the agent runs inside its hypervisor's namespace, so no `ip netns exec` prefix is
 * needed.
 */
export interface CommandRunner {
  /**
   * Runs `cmd args...` (no shell), writes `stdin` to it when given, and resolves with its
   * stdout. Rejects when the command cannot start, exits non-zero or is killed; the message
   * names the command and carries its stderr.
   */
  run(cmd: string, args: string[], stdin?: string): Promise<string>;
  /**
   * As `run`, but once the command exited successfully its output is given to `each` in pieces
   * (of about OUTPUT_PIECE_BYTES, whole characters), in order, rather than as one string: a
   * listing of megabytes then never exists whole, as a string nor as a buffer. What `each` throws
   * rejects the call as it is. Optional: a runner without it gives the whole output as one piece
   * (see KernelReader).
   */
  runInPieces?(cmd: string, args: string[], each: (piece: string) => void): Promise<void>;
  /**
   * Starts a long-running command (a monitor) and calls `onLine` with each line of its output
   * until `stop()`; restarted a second after it exits on its own. Optional: runners without it
   * cannot watch.
   */
  watch?(cmd: string, args: string[], onLine: (line: string) => void): { stop(): void };
}

export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
  }
}

/**
 * The environment the agent's commands run with: its own, without the agent's allocator
 * (deploy/overlay-agent-runtime.conf's LD_PRELOAD and MALLOC_CONF): `ip`, `nft` and the others
 * bring their own, and a preload that is missing would make each of them print an ld.so warning.
 */
export function commandEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const rest = { ...env };
  delete rest.LD_PRELOAD;
  delete rest.MALLOC_CONF;
  return rest;
}

/** The longest line a watched command may write (`ip monitor`'s are under 1 kB); a longer one is dropped whole. */
export const MAX_WATCHED_LINE = 64 * 1024;

let outputFiles = 0;

/**
 * A file for a command's output, opened and already unlinked (private: O_EXCL, mode 0600, in the
 * agent's own /tmp under systemd's PrivateTmp); undefined when none can be made, and the output
 * is read from a pipe. iproute2 writes each entry it lists on its own (14,000 writes for
 * `bridge fdb show` at 10,000 remote entries), and read from a pipe each wakes the agent: a
 * listing read from a file after the command exits costs 15 instead of 60 ms of the agent's CPU.
 */
function outputFile(): number | undefined {
  const path = join(tmpdir(), `overlay-agent-${process.pid}-${++outputFiles}.out`);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'wx+', 0o600);
    unlinkSync(path);
    return fd;
  } catch {
    if (fd !== undefined) {
      closeSync(fd);
    }
    return undefined;
  }
}

/** The most bytes of a command's output `runInPieces` decodes at once. */
export const OUTPUT_PIECE_BYTES = 64 * 1024;

/** What a command printed: the file it wrote (read from its start), or what came through its pipe. */
type Printed = { file: number } | { chunks: Buffer[] };

/** What a command printed, as one string. */
function wholeText(printed: Printed): string {
  return 'file' in printed ? readWhole(printed.file).toString('utf8') : Buffer.concat(printed.chunks).toString('utf8');
}

/** What a command printed, decoded (a character split between two reads comes out whole) and given to `each` in pieces. */
function eachPiece(printed: Printed, each: (piece: string) => void): void {
  const decoder = new StringDecoder('utf8');
  const give = (piece: string): void => {
    if (piece !== '') {
      each(piece);
    }
  };
  if ('chunks' in printed) {
    printed.chunks.forEach((chunk) => give(decoder.write(chunk)));
  } else {
    const buf = Buffer.allocUnsafe(OUTPUT_PIECE_BYTES);
    for (let at = 0, n = readSync(printed.file, buf, 0, buf.length, at); n > 0; at += n, n = readSync(printed.file, buf, 0, buf.length, at)) {
      give(decoder.write(buf.subarray(0, n)));
    }
  }
  give(decoder.end());
}

/** Everything written to the file `fd`, from its start. */
function readWhole(fd: number): Buffer {
  const size = fstatSync(fd).size;
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  while (at < size) {
    const n = readSync(fd, buf, at, size - at, at);
    if (n === 0) {
      break;
    }
    at += n;
  }
  return buf.subarray(0, at);
}

/** Runs commands as child processes. Holds no state; a hung command is killed after `timeoutMs`. */
export class ProcessCommandRunner implements CommandRunner {
  private readonly env = commandEnv(process.env);

  constructor(private readonly timeoutMs = 30_000) {}

  watch(cmd: string, args: string[], onLine: (line: string) => void): { stop(): void } {
    let stopped = false;
    let child: ReturnType<typeof spawn> | undefined;
    let restart: NodeJS.Timeout | undefined;
    const start = () => {
      const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], env: this.env });
      child = proc;
      let pending = '';
      // Past MAX_WATCHED_LINE, the rest of that line is skipped up to its end: a line without end
      // (a command gone wrong) must not grow without bound, and no part of it is passed on.
      let skipping = false;
      // Decoded as a stream: a character whose bytes two reads split comes out whole.
      proc.stdout.setEncoding('utf8');
      proc.stdout.on('data', (chunk: string) => {
        const lines = (pending + chunk).split('\n');
        pending = lines.pop()!;
        if (skipping && lines.length > 0) {
          lines.shift();
          skipping = false;
        }
        if (pending.length > MAX_WATCHED_LINE) {
          pending = '';
          skipping = true;
        }
        if (skipping && lines.length === 0) {
          pending = '';
        }
        lines.forEach((line) => onLine(line));
      });
      proc.once('error', () => undefined);
      proc.once('close', () => {
        if (!stopped) {
          restart = setTimeout(start, 1_000);
        }
      });
    };
    start();
    return {
      stop() {
        stopped = true;
        clearTimeout(restart);
        child?.kill();
      },
    };
  }

  run(cmd: string, args: string[], stdin?: string): Promise<string> {
    return this.exec(cmd, args, stdin, wholeText);
  }

  runInPieces(cmd: string, args: string[], each: (piece: string) => void): Promise<void> {
    return this.exec(cmd, args, undefined, (printed) => eachPiece(printed, each));
  }

  /**
   * Runs `cmd args...` with `stdin`, then, once it exited successfully, resolves with what `take`
   * makes of what it printed (read once, then the file closed). A failure to read the output is
   * a CommandError; whatever else `take` throws rejects as it is.
   */
  private exec<T>(cmd: string, args: string[], stdin: string | undefined, take: (printed: Printed) => T): Promise<T> {
    return new Promise((resolve, reject) => {
      let file = outputFile();
      const release = (): void => {
        if (file !== undefined) {
          closeSync(file);
          file = undefined;
        }
      };
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(cmd, args, { stdio: ['pipe', file ?? 'pipe', 'pipe'], timeout: this.timeoutMs, env: this.env });
      } catch (e) {
        release();
        throw e;
      }
      child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr!.on('data', (chunk: Buffer) => err.push(chunk));
      // A command that exits before reading its input makes the write fail with EPIPE; the exit
      // status is what tells whether it worked.
      child.stdin!.on('error', () => undefined);
      child.once('error', (e) => {
        release();
        reject(new CommandError(`${cmd}: ${e.message}`, null, ''));
      });
      child.once('close', (code, signal) => {
        const stderr = Buffer.concat(err).toString('utf8').trim();
        if (code !== 0) {
          release();
          const how = signal ? `killed by ${signal}` : `exited with status ${code}`;
          reject(new CommandError(`${[cmd, ...args].join(' ')} ${how}${stderr ? `: ${stderr}` : ''}`, code, stderr));
          return;
        }
        try {
          resolve(take(file === undefined ? { chunks: out } : { file }));
        } catch (e) {
          // A failed read of the output file names its system call; the rest is `take`'s own.
          const error = e instanceof Error ? e : new Error(String(e));
          reject('syscall' in error ? new CommandError(`${[cmd, ...args].join(' ')}: its output could not be read: ${error.message}`, code, stderr) : error);
        } finally {
          release();
        }
      });
      child.stdin!.end(stdin ?? '');
    });
  }
}
