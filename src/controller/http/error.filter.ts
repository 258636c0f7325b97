import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Authenticator } from '../auth/authenticator';
import { confineError } from '../auth/tenant-scope';
import { ErrorCode, OverlayError } from '../errors';
import { httpStatusOf } from './http-status';
import { isClientAbort, logClientAbort } from './server';

/** Fastify's own refusals, before a route runs, mapped to our codes. */
function fromFastify(err: { code?: string; message: string; statusCode?: number }): OverlayError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new OverlayError(ErrorCode.BodyTooLarge, 'request body is larger than the configured limit (OVERLAY_MAX_BODY_BYTES)');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new OverlayError(ErrorCode.UnsupportedMediaType, 'send the body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new OverlayError(ErrorCode.InvalidJson, 'the body is empty; send a JSON document');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new OverlayError(ErrorCode.InvalidJson, 'Content-Length does not match the body');
    default:
      if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
        return new OverlayError(ErrorCode.InvalidJson, `the body is not valid JSON: ${err.message}`);
      }
      return undefined;
  }
}

/**
 * An HTTP error a Fastify plugin raises (http-errors: a 4xx `status`, `expose`), which only the
 * file server of /docs does: a path out of its directory (403), a NUL in a file name (400), a
 * condition or a Range it cannot meet (412, 416). A file it does not serve is no route; the rest
 * is a request it cannot answer as asked. Neither is a bug of the controller's.
 */
function fromPlugin(err: { status?: unknown; expose?: unknown; message: string }): OverlayError | undefined {
  if (err.expose !== true || typeof err.status !== 'number' || err.status < 400 || err.status > 499) {
    return undefined;
  }
  return err.status === 403 || err.status === 404
    ? new OverlayError(ErrorCode.NotFound, 'no such route')
    : new OverlayError(ErrorCode.MalformedRequest, `the request cannot be answered as asked (${err.message})`);
}

/**
 * Every error leaves the API as `{ code, message, field? }`. Domain errors carry their code;
 * Nest's routing errors become NOT_FOUND; a client that went away in the middle of its request
 * is logged once at debug level (nobody is left to answer); anything else is a bug, logged, and
 * answered INTERNAL without leaking its text.
 */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('http');

  constructor(private readonly authenticator: Authenticator) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (isClientAbort(exception)) {
      logClientAbort(host.switchToHttp().getRequest<FastifyRequest>());
      // Answered for Fastify's bookkeeping; the socket is gone, nothing is written.
      void reply.status(400).send();
      return;
    }
    const request = host.switchToHttp().getRequest<FastifyRequest>();
    // A tenant caller's errors never name another tenant's objects (see confineError).
    const error = confineError(request.principal, this.toOverlayError(exception));
    if (error.code === ErrorCode.Forbidden) {
      // Every refusal of a role or scope, from the guard or a handler, is logged and recorded once, here.
      this.authenticator.denied(request, error);
    }
    void reply.status(httpStatusOf(error.code)).header('content-type', 'application/json').send(JSON.stringify(error));
  }

  private toOverlayError(exception: unknown): OverlayError {
    if (exception instanceof OverlayError) {
      return exception;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      if (status === 404) {
        return new OverlayError(ErrorCode.NotFound, 'no such route');
      }
      if (status === 413) {
        return new OverlayError(ErrorCode.BodyTooLarge, 'request body is larger than the configured limit (OVERLAY_MAX_BODY_BYTES)');
      }
      if (status === 415) {
        return new OverlayError(ErrorCode.UnsupportedMediaType, 'send the body as application/json');
      }
      if (status === 400) {
        return new OverlayError(ErrorCode.InvalidJson, exception.message);
      }
    }
    if (exception instanceof Error) {
      const known = fromFastify(exception) ?? fromPlugin(exception);
      if (known) {
        return known;
      }
    }
    this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    return new OverlayError(ErrorCode.Internal, 'internal error; see the controller log');
  }
}
