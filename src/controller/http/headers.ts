import type { IncomingMessage } from 'node:http';

/**
 * How many times a request carries a header. Node keeps only the first of several Authorization
 * or Content-Type headers and drops the rest without a word, while a proxy in front may act on
 * another one: a header the controller reads is refused when it is given twice, never resolved.
 * One pass over the raw header list, no allocation (`headersDistinct` would build every header's
 * list on every request).
 */
export function headerCount(raw: Pick<IncomingMessage, 'rawHeaders'>, lowerCaseName: string): number {
  let count = 0;
  const headers = raw.rawHeaders;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].length === lowerCaseName.length && headers[i].toLowerCase() === lowerCaseName) {
      count++;
    }
  }
  return count;
}
