import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';

/** A configuration value that cannot be used: the process says which and exits 1. */
export class ConfigError extends Error {}

/**
 * Reads settings from an environment, for both processes' configuration: each getter returns
 * the value or its default, or throws a ConfigError naming the variable and what it accepts.
 * An empty variable counts as unset.
 */
export class EnvReader {
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  /** The raw value; undefined when unset or empty. */
  get(name: string): string | undefined {
    const raw = this.env[name];
    return raw === undefined || raw === '' ? undefined : raw;
  }

  required(name: string): string {
    const value = this.get(name);
    if (value === undefined) {
      throw new ConfigError(`${name} is required`);
    }
    return value;
  }

  /** A decimal integer within [min, max]. */
  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.get(name);
    if (raw === undefined) {
      return fallback;
    }
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
    }
    return Number(raw);
  }

  /** `0` or `1`. */
  bool(name: string, fallback: boolean): boolean {
    const raw = this.get(name);
    if (raw === undefined) {
      return fallback;
    }
    if (raw !== '0' && raw !== '1') {
      throw new ConfigError(`${name} must be 0 or 1, got ${JSON.stringify(raw)}`);
    }
    return raw === '1';
  }

  /** One of `allowed`. */
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.get(name) ?? fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      const list = allowed.length > 1 ? `${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]}` : allowed[0];
      throw new ConfigError(`${name} must be ${list}, got ${JSON.stringify(raw)}`);
    }
    return raw as T;
  }

  /**
   * The gRPC stream's TLS files (OVERLAY_TLS_CA, _CERT, _KEY): all three, each an existing file,
   * or none, which only OVERLAY_GRPC_INSECURE=true allows (`insecureHint` says what to do).
   */
  tlsFiles(insecureHint: string): { ca: string; cert: string; key: string } | undefined {
    const names = ['OVERLAY_TLS_CA', 'OVERLAY_TLS_CERT', 'OVERLAY_TLS_KEY'] as const;
    const given = names.filter((name) => this.get(name) !== undefined);
    if (given.length > 0 && given.length < names.length) {
      throw new ConfigError(`set all of ${names.join(', ')} (only ${given.join(', ')} given)`);
    }
    for (const name of given) {
      if (!existsSync(this.env[name]!)) {
        throw new ConfigError(`${name}: no such file ${this.env[name]}`);
      }
    }
    if (given.length === 0) {
      if (this.env.OVERLAY_GRPC_INSECURE !== 'true') {
        throw new ConfigError(insecureHint);
      }
      return undefined;
    }
    return { ca: this.env.OVERLAY_TLS_CA!, cert: this.env.OVERLAY_TLS_CERT!, key: this.env.OVERLAY_TLS_KEY! };
  }

  /**
   * An address to listen on: an IP address (v4, or v6 without brackets) or a host name (RFC 1123
   * labels, dot-separated; not all digits in the last label, which would be a mistyped IPv4).
   */
  listenHost(name: string, fallback: string): string {
    const raw = this.get(name) ?? fallback;
    if (isIP(raw) === 0 && !isHostName(raw)) {
      throw new ConfigError(`${name} must be an IP address (IPv4, or IPv6 without brackets) or a host name, got ${JSON.stringify(raw)}`);
    }
    return raw;
  }

  /**
   * A certificate and its private key (PEM files) named by `certName` and `keyName`: both or
   * neither (undefined). Each must be readable, and the two must make a usable pair (the
   * certificate's key); the message names the variable that is wrong.
   */
  tlsKeyPair(certName: string, keyName: string): { cert: string; key: string } | undefined {
    const certPath = this.get(certName);
    const keyPath = this.get(keyName);
    if (certPath === undefined && keyPath === undefined) {
      return undefined;
    }
    if (certPath === undefined || keyPath === undefined) {
      throw new ConfigError(`set both ${certName} and ${keyName} or neither (only ${certPath === undefined ? keyName : certName} given)`);
    }
    const read = (name: string, path: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new ConfigError(`${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    };
    const cert = read(certName, certPath);
    const key = read(keyName, keyPath);
    try {
      createSecureContext({ cert });
    } catch (err) {
      throw new ConfigError(`${certName}: ${certPath} is not a PEM certificate (${(err as Error).message})`);
    }
    try {
      createSecureContext({ cert, key });
    } catch (err) {
      throw new ConfigError(`${keyName}: ${keyPath} is not the PEM private key of ${certName} (${(err as Error).message})`);
    }
    return { cert: certPath, key: keyPath };
  }
}

const HOST_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** A DNS host name: labels of letters, digits and inner hyphens; the last one not all digits. */
function isHostName(text: string): boolean {
  const labels = text.split('.');
  return text.length <= 253 && labels.every((label) => HOST_LABEL.test(label)) && !/^\d+$/.test(labels[labels.length - 1]);
}
