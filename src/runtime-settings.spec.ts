import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readAgentRuntimeSettings, readRuntimeSettings } from '../bench/runtime-settings';

/**
 * deploy/overlayd-runtime.conf is the one definition of overlayd's memory settings (node flags,
 * environment); the deployment files that cannot read it carry copies, checked here.
 */
const ROOT = path.resolve(__dirname, '..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

describe('overlayd runtime settings', () => {
  const settings = readRuntimeSettings(ROOT);

  it('defines node flags (and environment variables, if any)', () => {
    expect(settings.nodeFlags.length).toBeGreaterThan(0);
    expect(settings.nodeFlags.every((f) => /^--[a-z-]+(=\S+)?$/.test(f))).toBe(true);
    expect(Object.entries(settings.env).every(([name]) => /^[A-Z_][A-Z0-9_]*$/.test(name))).toBe(true);
  });

  const nodeLine = (flags: string[], script: string, quoted: boolean): string =>
    quoted ? ['node', ...flags, script].map((w) => `"${w}"`).join(', ') : ['node', ...flags, script].join(' ');

  it('the Dockerfile starts node with the flags, and sets the environment', () => {
    const text = read('deploy/Dockerfile');
    expect(text).toContain(`CMD [${nodeLine(settings.nodeFlags, 'dist/src/controller/main.js', true)}]`);
    for (const [name, value] of Object.entries(settings.env)) {
      expect(text).toContain(`ENV ${name}=${value}\n`);
    }
  });

  it('the systemd unit starts node with the flags, and sets the environment', () => {
    const text = read('deploy/systemd/overlayd.service');
    expect(text).toContain(`ExecStart=/usr/bin/${nodeLine(settings.nodeFlags, '/opt/overlay/dist/src/controller/main.js', false)}\n`);
    for (const [name, value] of Object.entries(settings.env)) {
      expect(text).toContain(`Environment=${name}=${value}\n`);
    }
  });

  it('the Kubernetes manifest starts node with the flags, and sets the environment', () => {
    const text = read('deploy/kubernetes/overlayd.yaml');
    expect(text).toContain(`command: [${nodeLine(settings.nodeFlags, 'dist/src/controller/main.js', true)}]`);
    for (const [name, value] of Object.entries(settings.env)) {
      expect(text).toMatch(new RegExp(`- name: ${name}\\n\\s+value: "${value}"\\n`));
    }
  });

  it('npm start reads the file', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start;
    expect(start).toContain("env $(grep '^[A-Z]' deploy/overlayd-runtime.conf) node $(grep '^--' deploy/overlayd-runtime.conf) dist/src/controller/dev/start.js");
  });
});

/** deploy/overlay-agent-runtime.conf, likewise for the agent: the unit (which the Debian package installs) carries a copy. */
describe('overlay-agent runtime settings', () => {
  const settings = readAgentRuntimeSettings(ROOT);

  it('defines node flags and the allocator', () => {
    expect(settings.nodeFlags.length).toBeGreaterThan(0);
    expect(settings.nodeFlags.every((f) => /^--[a-z-]+(=\S+)?$/.test(f))).toBe(true);
    expect(settings.env.LD_PRELOAD).toBe('libjemalloc.so.2');
  });

  it('the systemd unit starts node with the flags, and sets the environment', () => {
    const text = read('deploy/systemd/overlay-agent.service');
    expect(text).toContain(`ExecStart=/usr/bin/${['node', ...settings.nodeFlags, '/opt/overlay-agent/overlay-agent.js'].join(' ')}\n`);
    for (const [name, value] of Object.entries(settings.env)) {
      expect(text).toContain(`Environment=${name}=${value}\n`);
    }
  });

  it('the Debian package installs that unit and depends on the preloaded library', () => {
    const text = read('deploy/debian/build-deb.sh');
    expect(text).toContain('install -m 0644 deploy/systemd/overlay-agent.service');
    expect(text).toMatch(/^Depends: .*\blibjemalloc2\b/m);
  });
});
