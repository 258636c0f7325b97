import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The status page's files (the folder `ui/` at the package's top) and their media types: nothing else is served. */
export const STATUS_PAGE_FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'status.css': 'text/css; charset=utf-8',
  'status.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

/**
 * The headers of every answer under /ui. The page runs only its own script and style (no inline
 * code: a value that slipped into the markup still could not run), talks only to this origin,
 * submits no form anywhere (the token form is handled by the script, so a token can never end
 * up in a URL), and may not be framed.
 */
export const STATUS_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  // Revalidated on every load: a new version of the controller serves its own page at once.
  'cache-control': 'no-cache',
};

export interface StatusPageAsset {
  body: Buffer;
  contentType: string;
}

/** The `ui/` folder above this module: the repository's top in a checkout (src/ or dist/src/), the package's when installed. */
export function findStatusPageRoot(from = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'ui', 'index.html'))) {
      return join(dir, 'ui');
    }
    if (dirname(dir) === dir) {
      throw new Error(`ui/index.html (the status page) not found above ${from}`);
    }
  }
}

/** Reads the page's files once, at start: a missing one stops the start instead of a 404 later. */
export function loadStatusPage(root = findStatusPageRoot()): Map<string, StatusPageAsset> {
  return new Map(Object.entries(STATUS_PAGE_FILES).map(([name, contentType]) => [name, { body: readFileSync(join(root, name)), contentType }]));
}
