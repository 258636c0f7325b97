import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATUS_PAGE_HEADERS } from '../../src/controller/status-page/status-page.assets';
import { dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';

/**
 * The status page's files from a real overlayd: public (no token needed, a bad one ignored: the
 * page holds no data), each with the page's CSP and security headers, exactly the files of ui/;
 * any other name under /ui is 404 and nothing is read from the file system for it. What the page
 * shows is tested in a browser (test/system/status-page.system-spec.ts).
 */
describe('the status page at /ui', () => {
  const prefix = uniquePrefix('status-page');
  let h: Harness;

  beforeAll(async () => {
    h = await startController({ prefix });
  });

  afterAll(async () => {
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  const ui = (name: string) => readFileSync(join(__dirname, '..', '..', 'ui', name));

  it.each([
    ['/ui', 'index.html', 'text/html; charset=utf-8'],
    ['/ui/', 'index.html', 'text/html; charset=utf-8'],
    ['/ui/index.html', 'index.html', 'text/html; charset=utf-8'],
    ['/ui/status.js', 'status.js', 'text/javascript; charset=utf-8'],
    ['/ui/status.css', 'status.css', 'text/css; charset=utf-8'],
    ['/ui/favicon.svg', 'favicon.svg', 'image/svg+xml'],
  ])('serves %s (ui/%s) without a token, with the CSP', async (path, file, type) => {
    for (const headers of [{}, { authorization: 'Bearer not-a-token' }] as Record<string, string>[]) {
      const res = await fetch(h.url + path, { headers });
      expect({ status: res.status, type: res.headers.get('content-type') }).toEqual({ status: 200, type });
      for (const [name, value] of Object.entries(STATUS_PAGE_HEADERS)) {
        expect(res.headers.get(name)).toBe(value);
      }
      expect(Buffer.from(await res.arrayBuffer()).equals(ui(file))).toBe(true);
    }
  });

  it.each(['/ui/nope.js', '/ui/..%2Fpackage.json', '/ui/%2e%2e/package.json', '/ui/constructor', '/ui/status.js/x'])('answers %s with 404 NOT_FOUND', async (path) => {
    const res = await fetch(h.url + path);
    expect({ status: res.status, body: await res.json() }).toEqual({ status: 404, body: { code: 'NOT_FOUND', message: 'no such route' } });
  });

  it('is read-only and takes no query', async () => {
    expect((await fetch(`${h.url}/ui`, { method: 'POST' })).status).toBe(404);
    const res = await fetch(`${h.url}/ui?token=x`);
    expect({ status: res.status, body: await res.json() }).toMatchObject({ status: 400, body: { code: 'UNKNOWN_PARAMETER', field: 'token' } });
  });
});
