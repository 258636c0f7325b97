import type { LoggerService } from '@nestjs/common';
import type { Level } from 'pino';
import type { ProcessLog } from '../../common/logger';

/** Nest's own start-up chatter (a line per module and per route): debug, so the log starts with what overlayd says. */
const FRAMEWORK_CONTEXTS = new Set(['NestFactory', 'InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestApplication']);

function isFields(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Error);
}

/**
 * Nest's LoggerService onto the process's pino log, so that every `new Logger('sync')` of the
 * controller writes the same lines as the rest: Nest's `log` is pino's info, `verbose` its trace,
 * the Logger's name is the line's `component`. A plain object passed after the message adds
 * fields to the line (`logger.log('host hv1 connected', { host: 'hv1' })`); a string between
 * message and context is an error's stack. The level filter is pino's (OVERLAY_LOG_LEVEL).
 * Nest's own info lines (its modules and routes at start) are written at debug.
 */
export class NestPinoLogger implements LoggerService {
  constructor(private readonly out: ProcessLog) {}

  log(message: unknown, ...params: unknown[]): void {
    const context = params[params.length - 1];
    this.write(typeof context === 'string' && FRAMEWORK_CONTEXTS.has(context) ? 'debug' : 'info', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(level: Level, message: unknown, params: unknown[]): void {
    if (!this.out.isLevelEnabled(level)) {
      return;
    }
    // Nest's Logger appends its name last (after an `undefined` stack for error()).
    const rest = [...params];
    const component = rest.length > 0 && typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    const fields: Record<string, unknown> = component ? { component } : {};
    for (const param of rest) {
      if (isFields(param)) {
        Object.assign(fields, param);
      } else if (typeof param === 'string') {
        fields.stack = param;
      } else if (param instanceof Error) {
        fields.err = param;
      }
    }
    let msg: string;
    if (message instanceof Error) {
      fields.err = message;
      msg = message.message;
    } else if (isFields(message)) {
      const { msg: inner, message: text, ...own } = message;
      Object.assign(fields, own);
      const said = inner ?? text;
      msg = typeof said === 'string' ? said : said === undefined ? '' : JSON.stringify(said);
    } else {
      msg = String(message);
    }
    this.out[level](fields, msg);
  }
}
