import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tapName } from '../../src/agent/dataplane/names';
import { waitUntil } from '../support/agents';
import type { api } from '../support/controller-harness';
import { OverlayStack } from './overlay-stack';
import { systemSuite } from './system-suite';
import { openTenant, wrapTool } from './wrapped-tool';
import { type Topology, type Vm } from './topology';

/**
 * Per-port NACKs with real packets: on hv1 a wrapper earlier in the agent's PATH makes the kernel
 * refuse one tap's attachment (in any `ip -batch`, the line `link set dev <tap> master br<vni>`
 * of the tap named in `<dir>/refuse` asks for `master lo` instead, which the kernel refuses:
 * "RTNETLINK answers: Operation not supported"; the agent's reason names its own line). That port
 * stays closed and the API says why, while the other port on hv1 keeps forwarding and takes a
 * change of its own, realized; emptying the file lets the agent's retry attach the tap, and the
 * port forwards and reads realized.
 *
 * Tenant t, segment 10.71.0.0/24, group `open` (ICMP in, everything out):
 *   a  hv1 10.71.0.10 [open]    c  hv1 10.71.0.11 [open] (its tap refused)
 *   b  hv2 10.71.0.20 (port security off)
 */
const describeSystem = systemSuite('port-nacks', []);

/** `ip` that, in a batch, asks the kernel to enslave the tap named in `<dir>/refuse` to `lo` (refused) instead of its bridge. */
function ipWrapper(dir: string, realIp: string): string {
  return `#!/bin/sh
tap=$(cat "${dir}/refuse" 2>/dev/null)
case " $* " in
  *" -batch "*)
    if [ -n "$tap" ]; then
      sed "s/^link set dev $tap master br[0-9]*$/link set dev $tap master lo/" | ${realIp} "$@"
      exit $?
    fi ;;
esac
exec ${realIp} "$@"
`;
}

interface TestVm extends Vm {
  portId: string;
}

describeSystem('per-port NACKs: one port the kernel refuses stays closed and says why; the others forward', () => {
  const stack = new OverlayStack('system-port-nacks');
  let topology: Topology;
  let client: ReturnType<typeof api>;
  let wrapperDir = '';
  let segment: { id: string; vni: number };
  let openGroup = '';
  let openGroup2 = '';
  const { hostIds } = stack;
  const agentLogs = () => stack.agentLogs(25);

  beforeAll(async () => {
    const realIp = execFileSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).trim();
    await stack.start({
      hypervisors: 2,
      agentEnvOf: (hv, topo): Record<string, string> => {
        if (hv.name !== 'hv1') {
          return {};
        }
        wrapperDir = join(topo.dir, 'ip-wrapper');
        return wrapTool(wrapperDir, 'ip', ipWrapper(wrapperDir, realIp), 'refuse');
      },
    });
    ({ topology, client } = stack);
    ({ segment, openGroup, openGroup2 } = await openTenant(client, '10.71.0.0/24'));
  }, 120_000);

  afterAll(async () => {
    await stack.stop();
  }, 60_000);

  /** A VM behind its tap, then its port bound with wait=realized: the answer. */
  async function addVm(name: string, hvName: string, ip: string, port: Record<string, unknown>, before?: (tap: string) => void): Promise<{ vm: TestVm; bound: { status: number; body: any } }> {
    const created = await client.post('/v1/ports', { segmentId: segment.id, ips: [ip], vmId: name, ...port });
    expect(created.status).toBe(201);
    const made = await topology.addVm(name, topology.hypervisor(hvName), { tap: tapName(created.body.id), mac: created.body.mac, ip, prefixLength: 24 });
    before?.(tapName(created.body.id));
    // A wait longer than this test's deadline: the answer comes when hosts acknowledge, not at the timeout.
    const bound = await client.patch(`/v1/ports/${created.body.id}?wait=realized&timeout=120000`, { hostId: hostIds.get(hvName) });
    return { vm: { ...made, portId: created.body.id }, bound };
  }

  async function ping(from: Vm, to: Vm, count = 3): Promise<boolean> {
    const result = await topology.exec(from.ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '1', '-q', to.ip]);
    return result.code === 0;
  }

  it('answers the refused port at once with its reason, keeps it closed, realizes the host’s other changes meanwhile, and opens it once the kernel takes the tap', async () => {
    const { vm: b, bound: bBound } = await addVm('b', 'hv2', '10.71.0.20', { portSecurity: false });
    const { vm: a, bound: aBound } = await addVm('a', 'hv1', '10.71.0.10', { securityGroupIds: [openGroup] });
    expect([bBound.status, aBound.status]).toEqual([200, 200]);
    expect(await ping(a, b)).toBe(true);

    const { vm: c, bound: cBound } = await addVm('c', 'hv1', '10.71.0.11', { securityGroupIds: [openGroup] }, (tap) => writeFileSync(join(wrapperDir, 'refuse'), tap));
    expect(cBound.status).toBe(202);
    expect(cBound.body.realized).toBe(false);
    expect(cBound.body.realizationError).toMatchObject({ hostId: hostIds.get('hv1'), reason: `ip refused "link set dev ${c.tap} master br${segment.vni}": RTNETLINK answers: Operation not supported` });
    expect((await client.get(`/v1/hosts/${hostIds.get('hv1')}`)).body).toMatchObject({ lag: 0, lastError: null });
    // Closed: its tap in no bridge; nothing crosses either way.
    expect(await ping(c, b)).toBe(false);
    expect(await ping(b, c)).toBe(false);
    // The other port on hv1 forwards, and a change of its own is realized meanwhile.
    expect(await ping(a, b)).toBe(true);
    const changed = await client.patch(`/v1/ports/${a.portId}?wait=realized&timeout=120000`, { securityGroupIds: [openGroup2] });
    expect({ status: changed.status, realized: changed.body.realized }).toEqual({ status: 200, realized: true });
    expect(await ping(b, a)).toBe(true);
    expect((await client.get(`/v1/ports/${c.portId}`)).body).toMatchObject({ realized: false, realizationError: { hostId: hostIds.get('hv1') } });

    // The kernel takes the tap again: the agent's retry attaches it, with no new change.
    writeFileSync(join(wrapperDir, 'refuse'), '');
    await waitUntil(async () => ping(c, b, 1), 30_000, () => `c did not open${agentLogs()}`);
    expect(await ping(b, c)).toBe(true);
    await waitUntil(async () => (await client.get(`/v1/ports/${c.portId}`)).body.realized === true, 10_000, () => 'c not realized');
    expect((await client.get(`/v1/ports/${c.portId}`)).body.realizationError).toBeNull();
  }, 120_000);
});
