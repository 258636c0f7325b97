import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { EnvReader } from './env';
import { bufferedStdout, createLog, isoTime, LOG_BUFFER_BYTES, LOG_FLUSH_MS, LOG_LEVELS, loggerOf, PINO_LEVEL, readLogSettings, REDACTED, redactSecrets, type LogSettings } from './logger';

/** A destination that keeps every line written to it. */
function capture(): Writable & { lines: string[] } {
  const lines: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return Object.assign(out, { lines });
}

const json = (level: LogSettings['logLevel'] = 'log') => {
  const out = capture();
  return { out, log: createLog({ logFormat: 'json', logLevel: level }, 'overlayd', out) };
};

describe('OVERLAY_LOG_LEVEL and OVERLAY_LOG_FORMAT', () => {
  it('keeps the five values the controller has always taken, default log and json', () => {
    expect(readLogSettings(new EnvReader({}))).toEqual({ logLevel: 'log', logFormat: 'json' });
    for (const level of LOG_LEVELS) {
      expect(readLogSettings(new EnvReader({ OVERLAY_LOG_LEVEL: level, OVERLAY_LOG_FORMAT: 'text' }))).toEqual({ logLevel: level, logFormat: 'text' });
    }
  });

  it('refuses a level or a format it does not know, naming the variable', () => {
    expect(() => readLogSettings(new EnvReader({ OVERLAY_LOG_LEVEL: 'info' }))).toThrow('OVERLAY_LOG_LEVEL must be one of error, warn, log, debug, verbose, got "info"');
    expect(() => readLogSettings(new EnvReader({ OVERLAY_LOG_FORMAT: 'xml' }))).toThrow('OVERLAY_LOG_FORMAT must be json or text, got "xml"');
  });

  it('maps each onto pino: log is info, verbose is trace', () => {
    expect(PINO_LEVEL).toEqual({ error: 'error', warn: 'warn', log: 'info', debug: 'debug', verbose: 'trace' });
  });

  it.each([
    ['error', ['fatal', 'error']],
    ['warn', ['fatal', 'error', 'warn']],
    ['log', ['fatal', 'error', 'warn', 'info']],
    ['debug', ['fatal', 'error', 'warn', 'info', 'debug']],
    ['verbose', ['fatal', 'error', 'warn', 'info', 'debug', 'trace']],
  ] as const)('at %s, writes %j (fatal always)', (level, written) => {
    const { out, log } = json(level);
    for (const l of ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const) {
      log[l](`at ${l}`);
    }
    expect(out.lines.map((l) => (JSON.parse(l) as { level: string }).level)).toEqual(written);
  });
});

describe('the JSON format', () => {
  it('is one object a line: level by name, ISO time, the process name, the message and its fields', () => {
    const { out, log } = json();
    loggerOf(log, 'dataplane').warn('tap tap0 does not exist yet', { tap: 'tap0' });
    expect(out.lines).toHaveLength(1);
    const line = JSON.parse(out.lines[0]) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 'warn', name: 'overlayd', component: 'dataplane', msg: 'tap tap0 does not exist yet', tap: 'tap0' });
    expect(new Date(line.time as string).toISOString()).toBe(line.time);
  });

  it("writes the time as pino's isoTime does, also across seconds and at every millisecond", () => {
    const start = Date.parse('2026-12-05T23:59:58.990Z');
    for (const t of [start, start + 5, start + 10, start + 99, start + 100, start + 1_010, start + 2_000, start + 1_000, Date.parse('1970-01-01T00:00:00.000Z'), Date.now()]) {
      expect(isoTime(t)).toBe(`,"time":"${new Date(t).toISOString()}"`);
    }
  });

  it('writes a message as it is: no printf placeholders filled in', () => {
    const { out, log } = json();
    loggerOf(log).info('100%s of %d hosts', { n: 1 });
    loggerOf(log).info('50%s done');
    expect(out.lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['100%s of %d hosts', '50%s done']);
  });

  it('never writes a token, an Authorization header, a secret or a body, wherever it is passed', () => {
    const { out, log } = json();
    const secret = 'c2VjcmV0LXRva2VuLXRoYXQtbXVzdC1uZXZlci1iZS1sb2dnZWQ';
    log.info({ token: secret, authorization: `Bearer ${secret}`, body: { token: secret }, req: { headers: { authorization: `Bearer ${secret}`, cookie: secret }, body: secret }, created: { secret, password: secret, name: 'kept' } }, 'a line');
    expect(out.lines.join('\n')).not.toContain(secret);
    const line = JSON.parse(out.lines[0]) as Record<string, Record<string, unknown>>;
    expect(line).toMatchObject({ token: REDACTED, authorization: REDACTED, body: REDACTED, req: { headers: { authorization: REDACTED, cookie: REDACTED }, body: REDACTED }, created: { secret: REDACTED, password: REDACTED, name: 'kept' } });
  });
});

describe('the buffered stdout of JSON lines', () => {
  // A buffered stream belongs to its file descriptor for the life of the process (as stdout's
  // does), so each test opens a file of its own and leaves it open; the files go at the end.
  const dirs: string[] = [];
  let dir: string;
  let fd: number;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'log-'));
    dirs.push(dir);
    fd = openSync(path.join(dir, 'out.log'), 'a');
  });
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const written = () => readFileSync(path.join(dir, 'out.log'), 'utf8');

  it('holds a few lines back, then writes them together within the flush period', async () => {
    const out = bufferedStdout(fd);
    out.write('{"msg":"one"}\n');
    out.write('{"msg":"two"}\n');
    expect(written()).toBe('');
    const deadline = Date.now() + LOG_FLUSH_MS * 8;
    while (written() === '' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(written()).toBe('{"msg":"one"}\n{"msg":"two"}\n');
  });

  it('writes at once when a buffer of lines waits', () => {
    const out = bufferedStdout(fd);
    const line = `{"msg":"${'x'.repeat(200)}"}\n`;
    const lines = Math.ceil(LOG_BUFFER_BYTES / line.length);
    for (let i = 0; i < lines; i++) {
      out.write(line);
    }
    expect(written()).toBe(line.repeat(lines));
  });

  // Last: it closes its descriptor, whose number a later open could take.
  it('survives a descriptor it can no longer write to: said once on stderr, later lines dropped', () => {
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const out = bufferedStdout(fd);
      closeSync(fd);
      const line = `{"msg":"${'x'.repeat(LOG_BUFFER_BYTES)}"}\n`;
      out.write(line);
      out.write(line);
      expect(stderr).toHaveBeenCalledTimes(1);
      expect(String(stderr.mock.calls[0][0])).toMatch(/can no longer be written to file descriptor \d+ \(EBADF/);
    } finally {
      stderr.mockRestore();
    }
  });
});

describe('redactSecrets', () => {
  it('replaces secrets down to the third level, whatever their case, and leaves the caller\'s object as it was', () => {
    const fields = { Authorization: 'Bearer x', req: { headers: { Cookie: 'c', accept: '*/*' } }, deep: { a: { b: { token: 'four levels down' } } }, list: [{ token: 'in an array' }], name: 'kept' };
    const copy = structuredClone(fields);
    expect(redactSecrets(fields)).toEqual({ Authorization: REDACTED, req: { headers: { Cookie: REDACTED, accept: '*/*' } }, deep: { a: { b: { token: 'four levels down' } } }, list: [{ token: 'in an array' }], name: 'kept' });
    expect(fields).toEqual(copy);
  });

  it('returns the same object when there is nothing to replace', () => {
    const fields = { reqId: 'r', actor: { tokenId: 't', name: 'n', role: 'admin' } };
    expect(redactSecrets(fields)).toBe(fields);
  });
});

describe('the text format', () => {
  it('reads like a terminal log: time, level, [component], message, then the fields on the same line', () => {
    const out = capture();
    const log = createLog({ logFormat: 'text', logLevel: 'log' }, 'overlayd', out);
    log.child({ component: 'sync' }).info({ host: 'hv1', event: 'connect' }, 'host hv1 connected');
    log.info('no component');
    expect(out.lines).toHaveLength(2);
    expect(out.lines[0]).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: \[sync\] host hv1 connected \{"host":"hv1","event":"connect"\}$/);
    expect(out.lines[1]).toMatch(/^\[[^\]]+\] INFO: no component$/);
    // No colours when the lines do not go to a terminal.
    expect(out.lines.join('')).not.toContain('\u001b[');
  });

  it('redacts as the JSON format does', () => {
    const out = capture();
    const log = createLog({ logFormat: 'text', logLevel: 'log' }, 'overlayd', out);
    log.info({ headers: { authorization: 'Bearer abcdefabcdefabcdefabcdefabcdefabcdef' } }, 'x');
    expect(out.lines.join('\n')).not.toContain('abcdefabcdef');
    expect(out.lines.join('\n')).toContain(REDACTED);
  });
});
