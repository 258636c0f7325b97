import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { api } from '../support/controller-harness';

/**
 * A stand-in for one of the agent's tools (`ip`, `nft`) on one hypervisor: `script` written as
 * `<dir>/<tool>`, executable, with the empty file `<dir>/<flag>` the script reads to misbehave
 * (the test writes or removes it meanwhile). Returns the agent's environment with `dir` first on
 * its PATH.
 */
export function wrapTool(dir: string, tool: string, script: string, flag: string): Record<string, string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, tool), script);
  chmodSync(join(dir, tool), 0o755);
  writeFileSync(join(dir, flag), '');
  return { PATH: `${dir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
}

/**
 * Tenant `t` with one segment on `cidr` and two groups: `open` (ICMP in, everything out) and
 * `open2` (the same and TCP 22 in), for tests that switch a port between two open policies.
 */
export async function openTenant(client: ReturnType<typeof api>, cidr: string): Promise<{ segment: { id: string; vni: number }; openGroup: string; openGroup2: string }> {
  const tenant = await client.post('/v1/tenants', { name: 't' });
  const seg = await client.post('/v1/segments', { tenantId: tenant.body.id, name: 'net', cidr });
  expect([tenant.status, seg.status]).toEqual([201, 201]);
  const rules = [
    { direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp' },
    { direction: 'egress', ethertype: 'IPv4', protocol: 'any' },
  ];
  const open = await client.post('/v1/security-groups', { tenantId: tenant.body.id, name: 'open', rules });
  const open2 = await client.post('/v1/security-groups', { tenantId: tenant.body.id, name: 'open2', rules: [...rules, { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22 }] });
  expect([open.status, open2.status]).toEqual([201, 201]);
  return { segment: seg.body, openGroup: open.body.id, openGroup2: open2.body.id };
}
