import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hookConfigOf, loadHookConfig, parseEnvFile } from './config';

const HOST = '0193a1b2-7c4d-7e5f-8a6b-1c2d3e4f5a6b';
const base = { OVERLAY_URL: 'https://overlayd.example:8080/', OVERLAY_TOKEN: 'ovl_abc', OVERLAY_HOOK_HOST_ID: HOST };

describe('the hook configuration', () => {
  it('parses KEY=value lines, quotes and comments, expanding nothing', () => {
    expect(parseEnvFile(`# hook\nOVERLAY_URL="http://a:1"\n\nOVERLAY_TOKEN='ovl_$x'\n  OVERLAY_HOOK_HOST_ID=${HOST}  \n`)).toEqual({
      OVERLAY_URL: 'http://a:1',
      OVERLAY_TOKEN: 'ovl_$x',
      OVERLAY_HOOK_HOST_ID: HOST,
    });
  });

  it('reads deploy/libvirt/hook.env.example', () => {
    const example = readFileSync(join(__dirname, '..', '..', 'deploy', 'libvirt', 'hook.env.example'), 'utf8');
    expect(hookConfigOf(parseEnvFile(example))).toMatchObject({ url: 'https://overlayd.example.net:8080', hostId: HOST, refusedPrepare: 'fail' });
  });

  it('refuses an unknown setting (a typo) and a line that is not KEY=value, naming the line', () => {
    expect(() => parseEnvFile('OVERLAY_HOOK_TIMEOUT=5\n')).toThrow(/line 1: unknown setting OVERLAY_HOOK_TIMEOUT/);
    expect(() => parseEnvFile('\nexport OVERLAY_URL=x\n')).toThrow(/line 2 is not KEY=value/);
  });

  it('has defaults for the bounds, the refused-prepare policy, the state directory and the log', () => {
    expect(hookConfigOf(base)).toEqual({
      url: 'https://overlayd.example:8080',
      token: 'ovl_abc',
      hostId: HOST,
      callTimeoutMs: 4000,
      totalTimeoutMs: 10000,
      refusedPrepare: 'fail',
      migrationTtlMs: undefined,
      stateDir: '/run/overlay-libvirt-hook',
      log: 'syslog',
    });
  });

  it.each([
    [{ OVERLAY_URL: undefined }, /OVERLAY_URL is required/],
    [{ OVERLAY_URL: 'ftp://x' }, /OVERLAY_URL must be an http/],
    [{ OVERLAY_HOOK_HOST_ID: 'hv1' }, /OVERLAY_HOOK_HOST_ID must be the host's id/],
    [{ OVERLAY_HOOK_TIMEOUT_MS: '500' }, /OVERLAY_HOOK_TIMEOUT_MS must be an integer between 1000 and 120000/],
    [{ OVERLAY_HOOK_TIMEOUT_MS: '2000', OVERLAY_HOOK_CALL_TIMEOUT_MS: '3000' }, /OVERLAY_HOOK_CALL_TIMEOUT_MS must be an integer between 200 and 2000/],
    [{ OVERLAY_HOOK_REFUSED_PREPARE: 'ignore' }, /OVERLAY_HOOK_REFUSED_PREPARE must be fail or proceed/],
    [{ OVERLAY_HOOK_STATE_DIR: 'state' }, /OVERLAY_HOOK_STATE_DIR must be an absolute path/],
    [{ OVERLAY_HOOK_LOG: 'hook.log' }, /OVERLAY_HOOK_LOG must be an absolute path or syslog/],
  ])('refuses %j', (change, message) => {
    const values: Record<string, string> = { ...base };
    for (const [k, v] of Object.entries(change)) {
      if (v === undefined) {
        delete values[k];
      } else {
        values[k] = v;
      }
    }
    expect(() => hookConfigOf(values)).toThrow(message);
  });

  it('refuses a file others can read: it holds a token', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'hook-config-')), 'hook.env');
    writeFileSync(path, Object.entries(base).map(([k, v]) => `${k}=${v}`).join('\n'));
    chmodSync(path, 0o644);
    expect(() => loadHookConfig(path)).toThrow(/readable by others \(mode 644\).*chmod 600/);
    chmodSync(path, 0o600);
    expect(loadHookConfig(path).hostId).toBe(HOST);
  });
});
