/**
 * The name a port may give its tap (`tapName` on the port): one the kernel accepts (1-15
 * characters), restricted to letters, digits, `_`, `.` and `-` so it is safe in iproute2 batch
 * lines and nftables strings, never `.` or `..`, and never a name of the agent's own devices
 * (`vx<n>`, `br<n>`, `mx<n>`, `ms<n>`, see agent/dataplane/names.ts). Shared by the controller
 * (which refuses the others) and the agent (which checks again what it receives).
 */
export const TAP_NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const AGENT_DEVICE_RE = /^(vx|br|mx|ms)[0-9]+$/;

/** Why `name` cannot name a port's tap; undefined when it can. */
export function tapNameProblem(name: string): string | undefined {
  if (!TAP_NAME_RE.test(name) || name === '.' || name === '..') {
    return 'must be a Linux interface name: 1-15 letters, digits, "_", "." or "-"';
  }
  if (AGENT_DEVICE_RE.test(name)) {
    return 'is a name the agent gives its own devices (vx<n>, br<n>, mx<n>, ms<n>)';
  }
  return undefined;
}
