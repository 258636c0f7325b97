import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findStatusPageRoot, loadStatusPage, STATUS_PAGE_FILES, STATUS_PAGE_HEADERS } from './status-page.assets';

describe('the status page', () => {
  const root = findStatusPageRoot();
  const read = (name: string) => readFileSync(join(root, name), 'utf8');

  it('loads every file it serves, each with its media type', () => {
    const files = loadStatusPage(root);
    expect([...files.keys()].sort()).toEqual(Object.keys(STATUS_PAGE_FILES).sort());
    expect(files.get('status.js')!.contentType).toBe('text/javascript; charset=utf-8');
    expect(files.get('index.html')!.body.toString('utf8')).toContain('<title>overlayd status</title>');
  });

  it('refuses to start without its files, naming what is missing', () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-ui-'));
    expect(() => loadStatusPage(empty)).toThrow(/index\.html/);
    expect(() => findStatusPageRoot('/')).toThrow('ui/index.html (the status page) not found above /');
  });

  it('links only files it serves, and has no inline script or style (the CSP would refuse them)', () => {
    const html = read('index.html');
    const linked = [...html.matchAll(/(?:href|src)="([^"]+)"/g)].map((m) => m[1]);
    expect(linked.filter((url) => !Object.keys(STATUS_PAGE_FILES).some((name) => url === `/ui/${name}`))).toEqual([]);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
  });

  it('allows no inline code, no other origin and no framing', () => {
    const csp = STATUS_PAGE_HEADERS['content-security-policy'];
    expect(csp).not.toMatch(/unsafe-|data:|\*|https?:/);
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(csp).toMatch(/form-action 'none'/);
  });

  // What the API returns is shown as text only: none of the DOM's markup or code sinks appears in the script.
  it('turns no value into markup or code', () => {
    const script = read('status.js');
    expect(script.match(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|DOMParser|\beval\(|new Function|setTimeout\(['"`]/g)).toBeNull();
  });
});
