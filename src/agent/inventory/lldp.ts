import type { ObservedLldp } from '../../controller/model/observed-inventory';

/**
 * LLDP neighbours come from lldpd (`lldpcli -f json show neighbors details`), not from frames the
 * agent captures and parses itself: lldpd is a maintained daemon that already speaks LLDP and its
 * 802.1/802.3 TLVs, and CDP, EDP, FDP and SONMP too (one parser of ours would know LLDP only),
 * it keeps each neighbour's TTL and ages it out, and the agent stays unprivileged about raw
 * sockets (no AF_PACKET socket per uplink, no BPF filter for 01:80:c2:00:00:0e). The cost is a
 * dependency: without lldpd (no lldpcli, or its daemon down) the agent reports lldp null on every
 * link, which the audit reads as unknown, not as "no switch".
 *
 * lldpcli's `json` format is irregular: a key holding one item holds it bare, several an array
 * (`interface`, `chassis`, `vlan`); the chassis is keyed by the system name when there is one.
 * Both shapes are read.
 */

type Json = Record<string, unknown>;

const asArray = (v: unknown): unknown[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : null);
/** lldpcli prints a value bare or as {value: ...} (`descr`, `id`). */
const value = (v: unknown): string | null => (isObject(v) ? str(v.value) : str(v));

/** Pure: each local interface's neighbour (the first, when several) from lldpcli's JSON; empty when the text is no such output. */
export function parseLldpNeighbors(text: string): Map<string, ObservedLldp> {
  const out = new Map<string, ObservedLldp>();
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return out;
  }
  const lldp = isObject(doc) ? doc.lldp : undefined;
  for (const entry of asArray(isObject(lldp) ? lldp.interface : undefined)) {
    if (!isObject(entry)) {
      continue;
    }
    // {"eth0": {...}} per interface; an entry of several keys holds several interfaces.
    for (const [ifname, neighbour] of Object.entries(entry)) {
      if (isObject(neighbour) && !out.has(ifname)) {
        out.set(ifname, neighbourOf(neighbour));
      }
    }
  }
  return out;
}

function neighbourOf(n: Json): ObservedLldp {
  let chassisId: string | null = null;
  let systemName: string | null = null;
  const chassis = asArray(n.chassis).find(isObject);
  if (chassis) {
    const id = chassis.id;
    if (isObject(id) && ('value' in id || 'type' in id)) {
      // {"id": {...}, "descr": ...}: a neighbour that sent no system name
      chassisId = value(id);
    } else {
      // {"<system name>": {"id": {...}, ...}}
      const [name, body] = Object.entries(chassis).find(([, v]) => isObject(v)) ?? [];
      systemName = name ?? null;
      chassisId = isObject(body) ? value(body.id) : null;
    }
  }
  const port = asArray(n.port).find(isObject);
  const vlans = new Set<number>();
  for (const vlan of asArray(n.vlan)) {
    const id = Number(isObject(vlan) ? vlan['vlan-id'] : undefined);
    if (Number.isInteger(id) && id >= 1 && id <= 4094) {
      vlans.add(id);
    }
  }
  return {
    chassisId,
    systemName,
    portId: port ? value(port.id) : null,
    portDescription: port ? value(port.descr) : null,
    vlans: [...vlans].sort((a, b) => a - b),
  };
}
