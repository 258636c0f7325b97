import { Logger } from '@nestjs/common';
import { Writable } from 'node:stream';
import { createLog, type LogSettings } from '../../common/logger';
import { NestPinoLogger } from './nest-logger';

function captured(level: LogSettings['logLevel'] = 'verbose') {
  const lines: Record<string, unknown>[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>));
      done();
    },
  });
  return { lines, nest: new NestPinoLogger(createLog({ logFormat: 'json', logLevel: level }, 'overlayd', out)) };
}

describe('NestPinoLogger', () => {
  it("maps Nest's levels onto pino's, the Logger's name as the component", () => {
    const { lines, nest } = captured();
    nest.log('a', 'sync');
    nest.warn('b', 'auth');
    nest.debug('c', 'http');
    nest.verbose('d', 'http');
    nest.fatal('e', 'overlayd');
    expect(lines.map((l) => [l.level, l.component, l.msg])).toEqual([
      ['info', 'sync', 'a'],
      ['warn', 'auth', 'b'],
      ['debug', 'http', 'c'],
      ['trace', 'http', 'd'],
      ['fatal', 'overlayd', 'e'],
    ]);
  });

  it("takes fields from a plain object after the message, and error()'s stack", () => {
    const { lines, nest } = captured();
    nest.log('host hv1 connected', { host: 'hv1', event: 'connect' }, 'sync');
    nest.error('boom', 'Error: boom\n    at x', 'http');
    nest.error('no stack', undefined, 'http');
    expect(lines[0]).toMatchObject({ level: 'info', component: 'sync', msg: 'host hv1 connected', host: 'hv1', event: 'connect' });
    expect(lines[1]).toMatchObject({ level: 'error', component: 'http', msg: 'boom', stack: 'Error: boom\n    at x' });
    expect(lines[2]).toMatchObject({ level: 'error', component: 'http', msg: 'no stack' });
    expect(lines[2]).not.toHaveProperty('stack');
  });

  it("writes Nest's start-up lines (modules, routes) at debug", () => {
    const { lines, nest } = captured();
    nest.log('Mapped {/v1/ports, POST} route', 'RouterExplorer');
    nest.log('Nest application successfully started', 'NestApplication');
    nest.warn('a warning of Nest stays one', 'NestApplication');
    expect(lines.map((l) => l.level)).toEqual(['debug', 'debug', 'warn']);
  });

  it('filters by OVERLAY_LOG_LEVEL', () => {
    const { lines, nest } = captured('warn');
    nest.log('not written', 'sync');
    nest.debug('not written', 'sync');
    nest.warn('written', 'sync');
    expect(lines.map((l) => l.msg)).toEqual(['written']);
  });

  it("is what every `new Logger('…')` of the controller writes through", () => {
    const { lines, nest } = captured();
    Logger.overrideLogger(nest);
    try {
      new Logger('migrations').log('migration m1 committed', { migration: 'm1', step: 'commit' });
      new Logger('http').error('failed');
    } finally {
      Logger.overrideLogger(false);
    }
    expect(lines).toEqual([
      expect.objectContaining({ level: 'info', component: 'migrations', msg: 'migration m1 committed', migration: 'm1', step: 'commit' }),
      expect.objectContaining({ level: 'error', component: 'http', msg: 'failed' }),
    ]);
  });
});
