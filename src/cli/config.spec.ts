import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPrivate, DEFAULT_URL, resolveConnection } from './config';
import { CliError, ExitCode } from './exit-codes';

describe('overlayctl config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'overlayctl-config-spec-'));
  const file = (name: string, content: unknown, mode = 0o600): string => {
    const path = join(dir, name);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    chmodSync(path, mode);
    return path;
  };
  const noDefault = { XDG_CONFIG_HOME: join(dir, 'nowhere') };

  it('refuses a file group or others may read or write, and one of another user, like ssh', () => {
    for (const mode of [0o640, 0o604, 0o620, 0o602, 0o660, 0o644]) {
      expect(() => checkPrivate('/c', { mode: 0o100000 | mode, uid: 1000 }, 1000)).toThrow(`mode 0${mode.toString(8)}`);
    }
    expect(() => checkPrivate('/c', { mode: 0o100600, uid: 1000 }, 1000)).not.toThrow();
    expect(() => checkPrivate('/c', { mode: 0o100400, uid: 1000 }, 1000)).not.toThrow();
    expect(() => checkPrivate('/c', { mode: 0o100600, uid: 1001 }, 1000)).toThrow('belongs to another user');
  });

  it('takes --url over OVERLAY_URL over the file over the default; OVERLAY_TOKEN over the file', () => {
    const path = file('both.json', { url: 'http://file:1', token: 'from-file' });
    expect(resolveConnection({ config: path }, noDefault)).toEqual({ url: 'http://file:1', token: 'from-file', tokenSource: `config file ${path}` });
    expect(resolveConnection({ config: path }, { ...noDefault, OVERLAY_URL: 'http://env:2/', OVERLAY_TOKEN: 'from-env' })).toEqual({ url: 'http://env:2', token: 'from-env', tokenSource: 'OVERLAY_TOKEN' });
    expect(resolveConnection({ url: 'https://flag:3', config: path }, { ...noDefault, OVERLAY_URL: 'http://env:2' }).url).toBe('https://flag:3');
    expect(resolveConnection({}, { ...noDefault, OVERLAY_CONFIG: path }).token).toBe('from-file');
    expect(resolveConnection({}, noDefault)).toEqual({ url: DEFAULT_URL, token: null, tokenSource: null });
  });

  it('refuses a config file that is not what it should be, without echoing its content', () => {
    const refused = (content: string, message: string) => {
      const path = file('bad.json', content);
      let error: unknown;
      try {
        resolveConnection({ config: path }, noDefault);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(CliError);
      expect((error as CliError).exitCode).toBe(ExitCode.Usage);
      expect((error as CliError).message).toContain(message);
      expect((error as CliError).message).not.toContain('s3cret');
    };
    refused('{"token": "s3cret"', 'not valid JSON');
    refused('["s3cret"]', 'must hold a JSON object');
    refused('{"token": "s3cret", "tokn": "s3cret"}', 'unknown key "tokn"');
    refused('{"token": 5}', 'token must be a non-empty string');
    refused('{"url": "ftp://x", "token": "s3cret"}', 'must start with http:// or https://');
    refused('{"url": "http://u:s3cret@x"}', 'not in the URL');
    expect(() => resolveConnection({ config: join(dir, 'absent.json') }, noDefault)).toThrow('cannot read config file');
  });
});
