import pino, { type DestinationStream, type Level, type Logger as Pino } from 'pino';
import pretty from 'pino-pretty';
import { ConfigError, type EnvReader } from './env';

/**
 * The log of both processes (overlayd and overlay-agent): pino, one JSON object a line on stdout
 * (`level`, `time`, `name`, `component`, `msg` and the event's own fields), or the same lines
 * made readable for a terminal (OVERLAY_LOG_FORMAT=text, through pino-pretty).
 */
export type ProcessLog = Pino;

/** OVERLAY_LOG_LEVEL's values: Nest's names, which the controller has always taken. */
export const LOG_LEVELS = ['error', 'warn', 'log', 'debug', 'verbose'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogSettings {
  /** `json` (one object per line, for log pipelines) or `text` (for a terminal). */
  logFormat: LogFormat;
  /** The least severe level logged: `error`, `warn`, `log`, `debug` or `verbose` (fatal is always logged). */
  logLevel: LogLevelName;
}

/** Each OVERLAY_LOG_LEVEL onto pino's level of the same severity: `log` is info, `verbose` is trace. */
export const PINO_LEVEL: Record<LogLevelName, Level> = { error: 'error', warn: 'warn', log: 'info', debug: 'debug', verbose: 'trace' };

/** OVERLAY_LOG_LEVEL (default `log`) and OVERLAY_LOG_FORMAT (default `json`), read alike by both processes. */
export function readLogSettings(read: EnvReader): LogSettings {
  const logLevel = read.get('OVERLAY_LOG_LEVEL') ?? 'log';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`OVERLAY_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }
  return { logLevel: logLevel as LogLevelName, logFormat: read.oneOf('OVERLAY_LOG_FORMAT', LOG_FORMATS, 'json') };
}

/**
 * Fields never written, whoever passes them: credentials and bodies (which may carry a token or
 * a key), wherever they sit in the first three levels of a line's fields (`token`,
 * `req.headers.authorization`, `created.secret`...). The request line names none of them; this
 * is the net under every other call.
 */
export const REDACTED_KEYS: ReadonlySet<string> = new Set(['authorization', 'token', 'secret', 'password', 'body', 'cookie']);
export const REDACTED = '[redacted]';
const REDACT_DEPTH = 3;

/**
 * `fields` with every REDACTED_KEYS value replaced, copied only where something is replaced (the
 * caller's object is never changed). Written here rather than pino's `redact` option: its
 * wildcard paths (`*.token`) cost 50-55 µs a line (measured on this machine with @pinojs/redact
 * 0.4.0, against 18 µs for the whole line without them), which every request's log line paid;
 * this walk costs under 1 µs.
 */
export function redactSecrets<T extends Record<string, unknown>>(fields: T, depth = REDACT_DEPTH): T {
  let out: Record<string, unknown> | undefined;
  for (const key in fields) {
    const value = fields[key];
    let replaced: unknown = value;
    if (REDACTED_KEYS.has(key.toLowerCase())) {
      replaced = REDACTED;
    } else if (depth > 1 && value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Error)) {
      replaced = redactSecrets(value as Record<string, unknown>, depth - 1);
    }
    if (replaced !== value) {
      out ??= { ...fields };
      out[key] = replaced;
    }
  }
  return (out ?? fields) as T;
}

/** What the text format leaves out of a line's trailing fields: said in its head, or in a request line's message. */
const TEXT_HIDDEN = 'pid,hostname,name,component,method,route,path,status,durationMs';

/** Lines are written to stdout once this many bytes wait, or LOG_FLUSH_MS after the first of them. */
export const LOG_BUFFER_BYTES = 12 * 1024;
export const LOG_FLUSH_MS = 250;
/** Past this backlog (a reader that stopped: a stuck pipe) new lines are dropped: memory is bounded and the process never stalls on its log. */
export const LOG_BACKLOG_BYTES = 16 * 1024 * 1024;

/**
 * Stdout for JSON lines, buffered: one write per LOG_BUFFER_BYTES (about 45 request lines; under
 * SonicBoom's largest write, 16 KiB) or LOG_FLUSH_MS, and whatever waits is written synchronously
 * when the process exits (process.exit, an uncaught exception, the end of the event loop); a
 * SIGKILL loses at most LOG_FLUSH_MS of lines. A write per line cost every request about 6 µs of the event loop (a system call), and an
 * asynchronous write per line (SonicBoom's `sync: false` alone) cost more than that
 * (docs/benchmarks.md). Gathered in an array and joined at the write: 0.27 µs a line, against
 * 1.47 µs in SonicBoom's own buffer.
 */
export function bufferedStdout(fd = 1): DestinationStream {
  // One per file descriptor and process: every log of the process (an app rebuilt in a test) shares its buffer, timer and exit hook.
  let stream = bufferedStreams.get(fd);
  if (stream === undefined) {
    stream = newBufferedStream(fd);
    bufferedStreams.set(fd, stream);
  }
  return stream;
}
const bufferedStreams = new Map<number, DestinationStream>();

function newBufferedStream(fd: number): DestinationStream {
  // minLength 0: every write below is one system call. The lines are gathered here rather than in
  // SonicBoom's own buffer (`minLength`): each of its writes measures the whole buffer so far
  // (Buffer.byteLength of a string growing to 12 KiB), about 2 µs of every request's line.
  const out = pino.destination({ dest: fd, sync: true, minLength: 0, maxLength: LOG_BACKLOG_BYTES });
  let lines: string[] = [];
  // Characters, not bytes: a threshold for when to write, which UTF-8 only makes come sooner.
  let waitingChars = 0;
  // A log that cannot be written (stdout closed) must not end the process: said once on stderr, then lines are dropped.
  let failed = false;
  out.on('error', (err: Error) => {
    if (!failed) {
      failed = true;
      lines = [];
      waitingChars = 0;
      process.stderr.write(`log lines can no longer be written to file descriptor ${fd} (${err.message}); they are dropped\n`);
    }
  });
  const writeWaiting = (): void => {
    const text = lines.length === 1 ? lines[0] : lines.join('');
    lines = [];
    waitingChars = 0;
    out.write(text);
  };
  const flushTimer = setInterval(() => {
    if (lines.length > 0 && !failed) {
      writeWaiting();
    }
  }, LOG_FLUSH_MS);
  flushTimer.unref();
  process.once('exit', () => {
    if (!failed) {
      try {
        if (lines.length > 0) {
          writeWaiting();
        }
        // flushSync also fsyncs: once, at exit, what a reader must see.
        out.flushSync();
      } catch {
        // exiting anyway: nothing left to tell it to
      }
    }
  });
  return {
    write(line: string) {
      if (failed) {
        return;
      }
      lines.push(line);
      waitingChars += line.length;
      if (waitingChars >= LOG_BUFFER_BYTES) {
        writeWaiting();
      }
    },
  };
}

/** The second isoTime last made the head of, and that head. */
let isoSecond = NaN;
let isoHead = '';
/**
 * pino's `isoTime` (`,"time":"2026-12-05T19:51:22.042Z"`), the same text, with its part up to the
 * second made once a second instead of a Date and its ISO string per line (about 1 µs of every
 * request, whose line this is).
 */
export function isoTime(now = Date.now()): string {
  const second = Math.floor(now / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    // "2026-12-05T19:51:22." (years 0-9999, which is what toISOString makes 24 characters of)
    isoHead = `,"time":"${new Date(second * 1000).toISOString().slice(0, 20)}`;
  }
  const ms = now - second * 1000;
  return `${isoHead}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
}
/**
 * The process's log at `settings`. `destination`: where the lines go (default stdout, a write per
 * line, as the agent's few lines are best followed; overlayd, a line per API call, gives
 * bufferedStdout()).
 */
export function createLog(settings: LogSettings, name: string, destination?: DestinationStream): ProcessLog {
  const options: pino.LoggerOptions = {
    name,
    level: PINO_LEVEL[settings.logLevel],
    timestamp: isoTime,
    // The level's name, not its number: lines are read by people and matched by pipelines.
    formatters: { level: (label) => ({ level: label }), log: redactSecrets },
  };
  if (settings.logFormat === 'text') {
    const out = pretty({
      destination: destination ?? 1,
      sync: true,
      colorize: destination === undefined && process.stdout.isTTY,
      translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
      ignore: TEXT_HIDDEN,
      singleLine: true,
      messageFormat: '{if component}[{component}] {end}{msg}',
    });
    return pino(options, out);
  }
  return pino(options, destination ?? pino.destination({ dest: 1, sync: true }));
}

/** A log that writes nothing (tests that do not read it). */
export function silentLog(): ProcessLog {
  return pino({ level: 'silent' });
}

/** Where a part of the agent reports what it does: one line an event, info or warn, with the event's fields. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** `log` as a Logger, its lines marked `component` when given. */
export function loggerOf(log: ProcessLog, component?: string): Logger {
  const target = component ? log.child({ component }) : log;
  return {
    info: (message, fields) => (fields ? target.info(fields, message) : target.info(message)),
    warn: (message, fields) => (fields ? target.warn(fields, message) : target.warn(message)),
  };
}
