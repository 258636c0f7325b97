import type { FastifyInstance } from 'fastify';
import { ErrorCode, OverlayError } from '../errors';
import { certainlyNoDuplicate, duplicateKey } from './duplicate-key';
import { headerCount } from './headers';
import type { Schema } from './schema';

/** Parses a request body with its schema; a missing body is reported as such, not as a type error. */
export function parseBody<T>(schema: Schema<T>, body: unknown): T {
  if (body === undefined || body === null) {
    throw new OverlayError(ErrorCode.InvalidJson, 'a JSON body is required');
  }
  return schema.parse(body, '');
}

const UTF8 = /^utf-?8$/i;

/**
 * The only body parser: `application/json` in UTF-8, not compressed, nothing else (415). The body is read as
 * bytes, within the body limit whatever the transfer encoding, and must be valid UTF-8 before
 * it is parsed as JSON: decoding it as text first would turn invalid bytes into U+FFFD, which
 * would then be stored (chunked bodies) or reported as a length mismatch (bodies with a
 * Content-Length). Prototype-poisoning keys (`__proto__`, `constructor.prototype`) are refused,
 * as Fastify's own JSON parser does, and so is a member given twice in one object (JSON.parse
 * would keep the last one silently): INVALID_JSON naming it.
 */
export function registerJsonBodyParser(fastify: FastifyInstance, bodyLimit: number): void {
  fastify.removeAllContentTypeParsers();
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  const decoder = new TextDecoder('utf-8', { fatal: true });
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit }, (request, body: Buffer, done) => {
    // Node parses the first of several Content-Type headers; a proxy may have read another one.
    if (headerCount(request.raw, 'content-type') > 1) {
      done(new OverlayError(ErrorCode.UnsupportedMediaType, 'send one Content-Type header, application/json'), undefined);
      return;
    }
    // Compressed bodies are not decoded: their bytes would only be reported as invalid UTF-8.
    const encoding = request.headers['content-encoding']?.trim().toLowerCase();
    if (encoding && encoding !== 'identity') {
      done(new OverlayError(ErrorCode.UnsupportedMediaType, `send the body without Content-Encoding (got ${encoding.slice(0, 40)})`), undefined);
      return;
    }
    const charset = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(request.headers['content-type'] ?? '')?.[1];
    if (charset !== undefined && !UTF8.test(charset)) {
      done(new OverlayError(ErrorCode.UnsupportedMediaType, `send the body as application/json in UTF-8, not ${charset}`), undefined);
      return;
    }
    let text: string;
    try {
      text = decoder.decode(body);
    } catch {
      done(new OverlayError(ErrorCode.InvalidJson, 'the body is not valid UTF-8'), undefined);
      return;
    }
    void parseJson(request, text, (err: Error | null, value?: unknown) => {
      const repeated = err || certainlyNoDuplicate(text, value) ? undefined : duplicateKey(text);
      if (repeated !== undefined) {
        done(new OverlayError(ErrorCode.InvalidJson, `${repeated} is given twice in one object; give each field once`, { field: repeated }), undefined);
        return;
      }
      done(err, value);
    });
  });
}
