/**
 * Every link in the repository's Markdown resolves: a relative link names a file that exists
 * inside the repository, and its #anchor a heading of that file (GitHub's anchors). No link may
 * leave the repository (`../shared`, an absolute path, `file://`): the docs ship with the code.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';

const ROOT = resolve(__dirname, '..');
/** Build output, dependencies and tool state: not documentation. */
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'dist-demo', 'coverage', '.bench-out', '.git']);

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      return SKIPPED_DIRS.has(name) ? [] : markdownFiles(path);
    }
    return extname(name) === '.md' ? [path] : [];
  });
}

/** The lines outside fenced code blocks. */
function outsideFences(text: string): string[] {
  const lines: string[] = [];
  let fence: string | null = null;
  for (const line of text.split('\n')) {
    const opener = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (opener) {
      const mark = opener[1];
      if (fence === null) {
        fence = mark;
      } else if (mark[0] === fence[0] && mark.length >= fence.length) {
        fence = null;
      }
      continue;
    }
    if (fence === null) {
      lines.push(line);
    }
  }
  return lines;
}

/** GitHub's anchor of a heading: its text as rendered, lower case, punctuation removed, spaces to -. */
export function anchorOf(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-');
}

/** Every anchor a Markdown text defines: its headings (repeats get -1, -2, ...) and <a name/id>. */
export function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of outsideFences(text)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const base = anchorOf(heading[1]);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const m of line.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) {
      anchors.add(m[1]);
    }
  }
  return anchors;
}

/** The link targets of a Markdown text: inline links and images, reference definitions, href/src. */
export function linksOf(text: string): string[] {
  const targets: string[] = [];
  // An inline code span is text, not a link.
  for (const line of outsideFences(text).map((l) => l.replace(/(`+)[^`]*?\1/g, (span) => ' '.repeat(span.length)))) {
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      targets.push(m[1]);
    }
    const definition = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(line);
    if (definition) {
      targets.push(definition[1]);
    }
    for (const m of line.matchAll(/\b(?:href|src)="([^"]+)"/g)) {
      targets.push(m[1]);
    }
  }
  return targets;
}

/** What is wrong with one link of `file` (absolute path), or null when it resolves. */
export function brokenLink(file: string, target: string, root: string, read: (path: string) => string): string | null {
  if (/^(https?:|mailto:)/i.test(target)) {
    return null;
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
    return `${target}: only http(s) and mailto links may leave the repository`;
  }
  const hash = target.indexOf('#');
  const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
  const anchor = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
  if (pathPart.startsWith('/')) {
    return `${target}: an absolute path; link relative to the file`;
  }
  const dest = pathPart === '' ? file : resolve(dirname(file), pathPart);
  const inside = relative(root, dest);
  if (inside === '..' || inside.startsWith(`..${sep}`)) {
    return `${target}: outside the repository`;
  }
  if (!existsSync(dest)) {
    return `${target}: no such file`;
  }
  if (anchor !== null && extname(dest) === '.md' && !anchorsOf(read(dest)).has(anchor)) {
    return `${target}: no heading with the anchor #${anchor} in ${relative(root, dest)}`;
  }
  return null;
}

describe('Markdown links', () => {
  it('anchors as GitHub makes them', () => {
    expect(anchorOf('overlayd (`src/controller/config.ts`)')).toBe('overlayd-srccontrollerconfigts');
    expect(anchorOf('Audit: NIST SP 800-125B')).toBe('audit-nist-sp-800-125b');
    expect(anchorOf('Port `realized`, two questions')).toBe('port-realized-two-questions');
    expect([...anchorsOf('# A\n```sh\n# not a heading\n```\n## A\n')]).toEqual(['a', 'a-1']);
  });

  it('finds links in prose, not in code', () => {
    const text = '[a](x.md#y) `[b](not.md)` ![c](img.png)\n```\n[d](code.md)\n```\n[e]: ref.md\n<img src="p.png">';
    expect(linksOf(text)).toEqual(['x.md#y', 'img.png', 'ref.md', 'p.png']);
  });

  it('refuses what does not resolve or leaves the repository', () => {
    const file = join(ROOT, 'README.md');
    const read = (path: string) => readFileSync(path, 'utf8');
    expect(brokenLink(file, 'LICENSE', ROOT, read)).toBeNull();
    expect(brokenLink(file, 'docs/nothing-here.md', ROOT, read)).toMatch(/no such file/);
    expect(brokenLink(file, '#no-such-heading-anywhere', ROOT, read)).toMatch(/no heading/);
    expect(brokenLink(file, '../shared/notes.md', ROOT, read)).toMatch(/outside the repository/);
    expect(brokenLink(file, '/etc/passwd', ROOT, read)).toMatch(/absolute path/);
    expect(brokenLink(file, 'file:///opt/overlay/README.md', ROOT, read)).toMatch(/may leave/);
  });

  it('every link of every Markdown file in the repository resolves', () => {
    const files = markdownFiles(ROOT);
    expect(files.map((f) => relative(ROOT, f))).toEqual(expect.arrayContaining(['README.md', join('docs', 'api.md'), join('deploy', 'README.md')]));
    const cache = new Map<string, string>();
    const read = (path: string) => cache.get(path) ?? cache.set(path, readFileSync(path, 'utf8')).get(path)!;
    const broken = files.flatMap((file) =>
      linksOf(read(file)).flatMap((target) => {
        const problem = brokenLink(file, target, ROOT, read);
        return problem === null ? [] : [`${relative(ROOT, file)}: ${problem}`];
      }),
    );
    expect(broken).toEqual([]);
  });
});
