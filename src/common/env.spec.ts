import { ConfigError, EnvReader } from './env';

describe('EnvReader', () => {
  const read = (env: NodeJS.ProcessEnv) => new EnvReader(env);

  it('treats an empty variable as unset: the default applies', () => {
    expect(read({ N: '' }).int('N', 7, 0, 10)).toBe(7);
    expect(read({ B: '' }).bool('B', true)).toBe(true);
    expect(read({ K: '' }).oneOf('K', ['a', 'b'], 'b')).toBe('b');
    expect(() => read({ R: '' }).required('R')).toThrow(new ConfigError('R is required'));
  });

  it.each([['-1'], ['11'], ['1.5'], ['0x5'], [' 5']])('refuses N=%j outside 0-10 or not decimal, naming the variable', (raw) => {
    expect(() => read({ N: raw }).int('N', 7, 0, 10)).toThrow(`N must be an integer between 0 and 10, got ${JSON.stringify(raw)}`);
  });

  it('lists what a choice accepts', () => {
    expect(() => read({ K: 'c' }).oneOf('K', ['a', 'b', 'x'], 'a')).toThrow('K must be a, b or x, got "c"');
    expect(() => read({ B: 'yes' }).bool('B', false)).toThrow('B must be 0 or 1, got "yes"');
  });

  it('wants all three TLS files or none, and none only with OVERLAY_GRPC_INSECURE=true', () => {
    expect(() => read({ OVERLAY_TLS_CA: __filename }).tlsFiles('hint')).toThrow('set all of OVERLAY_TLS_CA, OVERLAY_TLS_CERT, OVERLAY_TLS_KEY (only OVERLAY_TLS_CA given)');
    expect(() => read({ OVERLAY_TLS_CA: __filename, OVERLAY_TLS_CERT: __filename, OVERLAY_TLS_KEY: '/nonexistent' }).tlsFiles('hint')).toThrow('OVERLAY_TLS_KEY: no such file /nonexistent');
    expect(() => read({}).tlsFiles('hint')).toThrow(new ConfigError('hint'));
    expect(read({ OVERLAY_GRPC_INSECURE: 'true' }).tlsFiles('hint')).toBeUndefined();
    expect(read({ OVERLAY_TLS_CA: __filename, OVERLAY_TLS_CERT: __filename, OVERLAY_TLS_KEY: __filename }).tlsFiles('hint')).toEqual({ ca: __filename, cert: __filename, key: __filename });
  });
});
