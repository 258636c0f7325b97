/**
 * What the hook does on each libvirt qemu hook call (`qemu <guest> <operation> <sub-operation>
 * <extra>`, the domain XML on stdin), following libvirt's live migration (docs/hooks.rst and
 * src/qemu/qemu_migration.c):
 *
 * destination: `migrate begin` (XML filter), then `prepare begin`, `start begin`, and
 *   `started begin` once QEMU runs, *paused, before any memory is copied* (libvirt calls it from
 *   the migration's Prepare phase): nothing on the destination says that the VM resumed there.
 *   If the migration fails or is cancelled, the incoming domain is stopped: `stopped end`,
 *   `release end failed`.
 * source: after a successful migration only, `stopped end` and `release end migrated`
 *   (libvirt >= 10.5.0 passes the shutoff reason; before, `-`). On a failure the source resumes
 *   the VM and calls nothing.
 *
 * So: prepare at `migrate begin` (the earliest point: the destination gets the ports before QEMU
 * starts), commit on the source's `release end migrated`, abort when the incoming domain stops.
 */

export type Step =
  /** Destination: prepare the domain's ports from the host they are bound to to this one; remember the migration. */
  | { kind: 'prepare' }
  /** Destination: the incoming domain stopped; abort the migration remembered at `migrate begin` if it is still open. */
  | { kind: 'abort-incoming' }
  /** Source: the domain stopped here; close the open migrations of its ports away from this host. */
  | { kind: 'close-outgoing'; close: 'commit' | 'abort'; why: string };

/** libvirt before 10.5.0 passes `-` instead of the shutoff reason. */
const NO_REASON = '-';

/**
 * The steps for one hook call, in order. `release end`'s reason decides the source's side: a
 * domain that left by migration (`migrated`) commits; one stopped otherwise (shutdown,
 * destroyed, crashed, saved...) while a migration was open cannot have moved: abort. Without a
 * reason (libvirt < 10.5.0) a stop during an open migration is taken as its success: the common
 * case, and the one where not committing would leave the VM on a host that withdraws its ports
 * when the migration expires.
 */
export function stepsFor(operation: string, subOperation: string, extra: string): Step[] {
  if (operation === 'migrate' && subOperation === 'begin') {
    return [{ kind: 'prepare' }];
  }
  if (operation === 'stopped' && subOperation === 'end') {
    return [{ kind: 'abort-incoming' }];
  }
  if (operation === 'release' && subOperation === 'end') {
    const reason = extra === '' ? NO_REASON : extra;
    const close =
      reason === 'migrated'
        ? ({ close: 'commit', why: 'the domain migrated away' } as const)
        : reason === NO_REASON
          ? ({ close: 'commit', why: 'the domain stopped (libvirt < 10.5.0 gives no reason: taken as migrated)' } as const)
          : ({ close: 'abort', why: `the domain stopped here (${reason}), not by migration` } as const);
    // The stop may have been the incoming domain's (its `stopped end` could not reach the controller): abort it first.
    return [{ kind: 'abort-incoming' }, { kind: 'close-outgoing', ...close }];
  }
  // prepare/start/started begin (also for every ordinary start), reconnect, attach, restore: nothing to do.
  return [];
}
