import { ConfigError } from '../common/env';
import { DEFAULT_CONFIG_FILE, loadHookConfig, type HookConfig } from './config';
import { stepsFor } from './actions';
import { MAX_DOMAIN_XML_BYTES } from './domain-xml';
import { runHook, PROCEED } from './hook';
import { hookLog } from './log';

/**
 * The libvirt qemu hook (deploy/libvirt/README.md): `node main.js <guest> <operation>
 * <sub-operation> <extra>`, the domain XML on stdin. Prints nothing on stdout: for `migrate
 * begin` libvirt reads stdout as a rewritten domain XML, and empty output keeps the original
 * (any output, even the same XML, would be parsed and mark the domain as changed by a hook).
 */

/** Bound on a run whose configuration could not be read (only stdin is drained). */
const UNCONFIGURED_BOUND_MS = 10_000;

/** Reads stdin to its end (libvirt writes the whole XML before it waits for the hook), keeping at most one byte over the limit. */
async function readStdin(signal: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of process.stdin.iterator({ destroyOnReturn: true })) {
      if (signal.aborted) {
        break;
      }
      if (size <= MAX_DOMAIN_XML_BYTES) {
        chunks.push(chunk as Buffer);
      }
      size += (chunk as Buffer).length;
    }
  } catch {
    // stdin closed or unreadable: what was read is all there is
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<number> {
  const [guest = '-', operation = '-', subOperation = '-', extra = '-'] = process.argv.slice(2);
  const path = process.env.OVERLAY_HOOK_CONFIG || DEFAULT_CONFIG_FILE;
  let config: HookConfig | undefined;
  let configError: string | undefined;
  if (stepsFor(operation, subOperation, extra).length) {
    try {
      config = loadHookConfig(path);
    } catch (err) {
      configError = err instanceof ConfigError ? err.message : String(err);
    }
  }
  const boundMs = config?.totalTimeoutMs ?? UNCONFIGURED_BOUND_MS;
  const log = hookLog(config?.log ?? 'syslog');
  // The last resort: whatever is still running at the bound, libvirt goes on.
  setTimeout(() => {
    log('warning', `${guest} ${operation} ${subOperation}: gave up after ${boundMs} ms (OVERLAY_HOOK_TIMEOUT_MS); libvirt proceeds`);
    process.exit(PROCEED);
  }, boundMs).unref();
  // Calls stop a little before it, so that what they did is logged.
  const deadline = AbortSignal.timeout(Math.max(100, boundMs - 250));
  const xml = await readStdin(deadline);
  if (configError !== undefined) {
    log('error', `${guest} ${operation} ${subOperation}: not configured (${configError}): nothing done`);
    return PROCEED;
  }
  if (!config) {
    return PROCEED;
  }
  return runHook({ guest, operation, subOperation, extra, xml }, config, log, deadline);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    // A bug, not an outcome: logged, and libvirt still goes on.
    process.stderr.write(`overlay-libvirt-hook: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(PROCEED);
  },
);
