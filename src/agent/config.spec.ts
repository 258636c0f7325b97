import { ConfigError } from '../common/env';
import { loadAgentConfig } from './config';

const base = { OVERLAY_CONTROLLER: '127.0.0.1:50051', OVERLAY_HOST: 'hv1', OVERLAY_GRPC_INSECURE: 'true' };

describe('loadAgentConfig: firewall', () => {
  it('turns the firewall on by default, with the conntrack mode probed at start', () => {
    expect(loadAgentConfig(base)).toMatchObject({ firewall: true, conntrack: 'auto', migrationAutoCommit: true });
    expect(loadAgentConfig({ ...base, OVERLAY_MIGRATION_AUTO_COMMIT: '0' }).migrationAutoCommit).toBe(false);
    expect(loadAgentConfig({ ...base, OVERLAY_FIREWALL: '' })).toMatchObject({ firewall: true });
  });

  it('turns it off with OVERLAY_FIREWALL=0 and refuses anything but 0 or 1', () => {
    expect(loadAgentConfig({ ...base, OVERLAY_FIREWALL: '0' }).firewall).toBe(false);
    expect(loadAgentConfig({ ...base, OVERLAY_FIREWALL: '1' }).firewall).toBe(true);
    expect(() => loadAgentConfig({ ...base, OVERLAY_FIREWALL: 'yes' })).toThrow(ConfigError);
  });

  it('takes OVERLAY_CONNTRACK auto, bridge or br_netfilter and nothing else', () => {
    expect(loadAgentConfig({ ...base, OVERLAY_CONNTRACK: 'bridge' }).conntrack).toBe('bridge');
    expect(loadAgentConfig({ ...base, OVERLAY_CONNTRACK: 'br_netfilter' }).conntrack).toBe('br_netfilter');
    expect(() => loadAgentConfig({ ...base, OVERLAY_CONNTRACK: 'inet' })).toThrow(/OVERLAY_CONNTRACK must be auto, bridge or br_netfilter/);
  });
});

describe('loadAgentConfig: inventory', () => {
  it('collects every five minutes by default from sysfs under /, 0 turns it off, under a second is refused', () => {
    expect(loadAgentConfig(base)).toMatchObject({ inventoryIntervalMs: 300_000, sysfsRoot: '/' });
    expect(loadAgentConfig({ ...base, OVERLAY_INVENTORY_INTERVAL_MS: '0', OVERLAY_SYSFS_ROOT: '/tmp/fake' })).toMatchObject({ inventoryIntervalMs: 0, sysfsRoot: '/tmp/fake' });
    expect(() => loadAgentConfig({ ...base, OVERLAY_INVENTORY_INTERVAL_MS: '500' })).toThrow(/OVERLAY_INVENTORY_INTERVAL_MS must be 0 \(off\) or at least 1000/);
    expect(() => loadAgentConfig({ ...base, OVERLAY_INVENTORY_INTERVAL_MS: 'often' })).toThrow(ConfigError);
  });

  it('asks lldpcli\'s default lldpd unless OVERLAY_LLDPD_SOCKET names another socket, an absolute path a Unix socket can have', () => {
    expect(loadAgentConfig(base).lldpdSocket).toBeUndefined();
    expect(loadAgentConfig({ ...base, OVERLAY_LLDPD_SOCKET: '/run/lldpd/ns-blue.socket' }).lldpdSocket).toBe('/run/lldpd/ns-blue.socket');
    for (const bad of ['lldpd.socket', `/${'s'.repeat(107)}`, '/run/a\0b']) {
      expect(() => loadAgentConfig({ ...base, OVERLAY_LLDPD_SOCKET: bad })).toThrow(/OVERLAY_LLDPD_SOCKET must be an absolute path of at most 107 bytes/);
    }
  });
});

describe('loadAgentConfig: metrics', () => {
  it('serves none unless OVERLAY_METRICS_PORT is set, then on 127.0.0.1 unless OVERLAY_METRICS_HOST says where', () => {
    expect(loadAgentConfig(base).metrics).toBeUndefined();
    expect(loadAgentConfig({ ...base, OVERLAY_METRICS_PORT: '' }).metrics).toBeUndefined();
    expect(loadAgentConfig({ ...base, OVERLAY_METRICS_PORT: '9464' }).metrics).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(loadAgentConfig({ ...base, OVERLAY_METRICS_PORT: '9464', OVERLAY_METRICS_HOST: '::' }).metrics).toEqual({ host: '::', port: 9464 });
  });

  it('refuses a port outside 1-65535, a host that is not an address or name, and a host without a port', () => {
    for (const port of ['0', '65536', 'http', '-1']) {
      expect(() => loadAgentConfig({ ...base, OVERLAY_METRICS_PORT: port })).toThrow(/OVERLAY_METRICS_PORT must be an integer between 1 and 65535/);
    }
    expect(() => loadAgentConfig({ ...base, OVERLAY_METRICS_PORT: '9464', OVERLAY_METRICS_HOST: '[::1]' })).toThrow(/OVERLAY_METRICS_HOST must be an IP address/);
    expect(() => loadAgentConfig({ ...base, OVERLAY_METRICS_HOST: '0.0.0.0' })).toThrow(/OVERLAY_METRICS_HOST is set but OVERLAY_METRICS_PORT is not/);
  });
});
