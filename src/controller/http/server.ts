import { Logger } from '@nestjs/common';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readFileSync } from 'node:fs';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Server, Socket } from 'node:net';
import { ErrorCode, OverlayError } from '../errors';
import type { ControllerConfig } from '../config';
import { MAX_WAIT_TIMEOUT_MS } from '../ports/port.schemas';
import { httpStatusOf } from './http-status';
import { parseQueryString } from './query';

/**
 * The HTTP server's own limits, so that no client can hold the process's sockets or memory:
 * a request must arrive whole within OVERLAY_HTTP_REQUEST_TIMEOUT_MS (its headers within
 * OVERLAY_HTTP_HEADERS_TIMEOUT_MS), an idle keep-alive connection closes after
 * OVERLAY_HTTP_KEEP_ALIVE_TIMEOUT_MS, at most OVERLAY_HTTP_MAX_CONNECTIONS are open. What the
 * server refuses before a route runs (a timeout, oversized headers, bytes that are not HTTP, a
 * URL whose percent-encoding is not UTF-8) is answered like any other error, `{code, message}`,
 * and logged once at debug level: a client going away is not an error of the controller.
 */
const logger = new Logger('http');

/** Set on a socket this module has answered and closed, so the abort that follows is not logged again. */
const ANSWERED = Symbol('overlay.answered');

function errorResponse(error: OverlayError): string {
  const status = httpStatusOf(error.code);
  const body = JSON.stringify(error);
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/** The answer to an error of the connection, before (or instead of) any route; undefined = nothing to answer. */
export function clientErrorAnswer(code: string | undefined, config: Pick<ControllerConfig, 'httpRequestTimeoutMs' | 'httpHeadersTimeoutMs'>): OverlayError | undefined {
  switch (code) {
    case 'ECONNRESET':
    case 'EPIPE':
    case 'HPE_INVALID_EOF_STATE': // the client closed its side in the middle of a request
      return undefined;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new OverlayError(
        ErrorCode.RequestTimeout,
        `the request did not arrive in time: headers are due within ${config.httpHeadersTimeoutMs} ms (OVERLAY_HTTP_HEADERS_TIMEOUT_MS), the whole request within ${config.httpRequestTimeoutMs} ms (OVERLAY_HTTP_REQUEST_TIMEOUT_MS)`,
      );
    case 'HPE_HEADER_OVERFLOW':
      return new OverlayError(ErrorCode.HeadersTooLarge, 'the request line and headers are larger than the server accepts (16 KiB)');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new OverlayError(ErrorCode.BodyTooLarge, 'the chunk extensions of the body are larger than the server accepts');
    default:
      return new OverlayError(ErrorCode.MalformedRequest, `the request is not valid HTTP/1.1 (${code ?? 'unparsable'})`);
  }
}

/**
 * A connection on which nothing moves, either way, for this long is closed: a client that never
 * reads its answer must not hold its socket. Above the longest `?wait=realized` (120 s), which
 * is the longest a request may legitimately sit silent.
 */
export const SOCKET_IDLE_TIMEOUT_MS = MAX_WAIT_TIMEOUT_MS + 30_000;

/**
 * The longest path parameter the router matches: Node's limit on the request line and headers
 * (16 KiB), so that no parameter is too long to reach its route. Fastify's default (100
 * characters) made a longer `:id` match no route: 404 "no such route", without a token, instead of
 * the route's own refusal (INVALID_ID naming `id`).
 */
export const MAX_PATH_PARAM_LENGTH = 16 * 1024;

/**
 * Options for Fastify (through Nest's adapter). With OVERLAY_HTTP_TLS_CERT and _KEY the server
 * is HTTPS: Fastify then builds it from `https` alone and ignores `http`, so the node server's
 * own limits go in both.
 */
export function httpServerOptions(config: ControllerConfig) {
  const serverLimits = {
    requestTimeout: config.httpRequestTimeoutMs,
    headersTimeout: config.httpHeadersTimeoutMs,
    // Node checks both timeouts on this period (30 s by default, which would stretch a 10 s timeout to 40 s).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(config.httpHeadersTimeoutMs / 4))),
  };
  return {
    bodyLimit: config.maxBodyBytes,
    maxParamLength: MAX_PATH_PARAM_LENGTH,
    connectionTimeout: SOCKET_IDLE_TIMEOUT_MS,
    querystringParser: parseQueryString,
    requestTimeout: config.httpRequestTimeoutMs,
    keepAliveTimeout: config.httpKeepAliveTimeoutMs,
    http: serverLimits,
    ...(config.httpTls && { https: { ...serverLimits, cert: readFileSync(config.httpTls.cert), key: readFileSync(config.httpTls.key) } }),
    /** Errors of the connection: Node's own answers (408, 431, 400) carry no code; ours do. */
    clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
      const answer = clientErrorAnswer(err.code, config);
      const response = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
      if (answer && socket.writable && !response?.headersSent) {
        socket.write(errorResponse(answer));
      }
      (socket as Socket & { [ANSWERED]?: boolean })[ANSWERED] = true;
      const from = socket.remoteAddress ? ` from ${socket.remoteAddress}` : '';
      logger.debug(`${answer ? `${httpStatusOf(answer.code)} ${answer.code}` : 'request aborted by the client'} (${err.code ?? err.message})${from}`);
      socket.destroy();
    },
    /** Errors Fastify meets before routing: a URL whose percent-encoding is not UTF-8. */
    frameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
      const error =
        err.code === 'FST_ERR_BAD_URL'
          ? new OverlayError(ErrorCode.MalformedRequest, 'the URL path is not valid percent-encoded UTF-8')
          : new OverlayError(ErrorCode.Internal, 'internal error; see the controller log');
      if (error.code === ErrorCode.Internal) {
        logger.error(err.stack ?? err.message);
      }
      void reply.status(httpStatusOf(error.code)).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(error));
    },
  };
}

/** At most `max` connections at once: Node closes the ones beyond at once. Logged at most every 10 s. HTTP or HTTPS (both are net servers). */
export function limitConnections(server: Server, max: number): void {
  server.maxConnections = max;
  let dropped = 0;
  let lastReport = 0;
  server.on('drop', () => {
    dropped++;
    if (Date.now() - lastReport >= 10_000) {
      logger.warn(`${dropped} connection(s) closed at once: ${max} are open (OVERLAY_HTTP_MAX_CONNECTIONS)`);
      lastReport = Date.now();
      dropped = 0;
    }
  });
}

/**
 * Whether an error only says that the client went away in the middle of its request (Node
 * aborts the body stream with ECONNRESET "aborted"), or closed it while it was being read.
 * Such a request is logged once, at debug level, without a stack: a flood of them must not
 * flood the log.
 */
export function isClientAbort(exception: unknown): boolean {
  const code = (exception as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'ECONNABORTED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/** Logs an aborted request once, at debug level; not at all when the connection error was already logged. */
export function logClientAbort(request: FastifyRequest): void {
  if (!(request.raw.socket as (Socket & { [ANSWERED]?: boolean }) | undefined)?.[ANSWERED]) {
    logger.debug(`request aborted by the client: ${request.method} ${request.url.slice(0, 200)}`);
  }
}

/**
 * What a server's shutdown must know: its connections as accepted (the TCP sockets, under any
 * TLS), and how many requests each is answering. A connection is known by the client's address
 * and port, which its TLS socket and the TCP socket under it share (public API both, where their
 * objects differ).
 */
class ConnectionTracking {
  closing = false;
  /** Every open connection, with its client's address and port. */
  readonly connections = new Map<Socket, string>();
  /** By client address and port: the requests received whole or in part (their route's hooks ran) and not yet answered. */
  readonly answering = new Map<string, number>();
  /** The requests whose body is still arriving. */
  readonly arriving = new Set<IncomingMessage>();

  accept(socket: Socket): void {
    const endpoint = endpointOf(socket);
    this.connections.set(socket, endpoint);
    socket.once('close', () => {
      this.connections.delete(socket);
      this.answering.delete(endpoint);
    });
  }

  requestArrived(socket: Socket): void {
    const endpoint = endpointOf(socket);
    this.answering.set(endpoint, (this.answering.get(endpoint) ?? 0) + 1);
  }

  requestAnswered(socket: Socket): void {
    const endpoint = endpointOf(socket);
    const left = (this.answering.get(endpoint) ?? 0) - 1;
    if (left > 0) {
      this.answering.set(endpoint, left);
    } else {
      this.answering.delete(endpoint);
    }
  }

  /**
   * From now on every answer closes its connection. Closed now: every connection with no request
   * to answer (idle between requests, or connected and silent, or its request line or headers
   * still arriving), and every request whose body is still arriving (nothing of it has run).
   * Node's own `closeIdleConnections` leaves a connection that never sent a whole request, and
   * the server's close stops the timer that would end it (headersTimeout): a browser's
   * preconnected socket held a close for 20 s and more.
   */
  shutDown(): void {
    this.closing = true;
    for (const [socket, endpoint] of this.connections) {
      if (!this.answering.has(endpoint)) {
        socket.destroy();
      }
    }
    for (const request of this.arriving) {
      if (!request.complete) {
        request.socket.destroy();
      }
    }
  }
}

/** The client's address and port: the same for a TLS socket and the TCP socket it runs on. */
function endpointOf(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

const tracking = new WeakMap<FastifyInstance, ConnectionTracking>();

/**
 * Prepares the server's shutdown (`beginHttpShutdown`, and Fastify's close in any case): it
 * tracks the connections and the requests each is answering, and once the shutdown has begun
 * every response carries `Connection: close`, so a connection does not outlive its last answer
 * (the server's close would otherwise wait for it to sit idle for
 * OVERLAY_HTTP_KEEP_ALIVE_TIMEOUT_MS). Connections of the main server only: with a host name
 * that resolves to several addresses Fastify listens on more than one, and those are Node's.
 */
export function closeConnectionsOnShutdown(fastify: FastifyInstance): void {
  const state = new ConnectionTracking();
  tracking.set(fastify, state);
  fastify.server.on('connection', (socket: Socket) => state.accept(socket));
  fastify.addHook('onRequest', (request, _reply, done) => {
    const raw = request.raw;
    state.requestArrived(raw.socket);
    if (!raw.complete) {
      state.arriving.add(raw);
      // 'close' alone (a request emits it once, when answered or cut off): one listener, not two
      // `once` wrappers per request; one whose body has arrived and which waits for its answer is
      // skipped by its `complete` at the shutdown.
      raw.on('close', () => state.arriving.delete(raw));
    }
    done();
  });
  fastify.addHook('onResponse', (request, _reply, done) => {
    state.requestAnswered(request.raw.socket);
    done();
  });
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (state.closing) {
      void reply.header('connection', 'close');
    }
    done(null, payload);
  });
  // Right before the server's close (which stops the listener, in the same turn): what was
  // accepted since `beginHttpShutdown`, or everything when the app is closed without it.
  fastify.addHook('preClose', (done) => {
    state.shutDown();
    done();
  });
}

/** How many requests of `fastify` this module holds as still receiving their body (its tests: none stays once answered). */
export function bodiesArriving(fastify: FastifyInstance): number {
  return tracking.get(fastify)?.arriving.size ?? 0;
}

/** How many connections of `fastify` this module holds as open (its tests: none once the server closed). */
export function connectionsOpen(fastify: FastifyInstance): number {
  return tracking.get(fastify)?.connections.size ?? 0;
}

/**
 * The start of a shutdown, before the app's modules stop (main.ts, on SIGTERM): from now on
 * responses close their connection, and the connections with nothing to answer close now, so
 * that no client (a browser's spare connection, one trickling a request) holds the shutdown.
 */
export function beginHttpShutdown(fastify: FastifyInstance): void {
  tracking.get(fastify)?.shutDown();
}
