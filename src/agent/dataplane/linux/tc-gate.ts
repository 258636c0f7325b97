import { MARK_EGRESS_OK, MARK_INGRESS_OK } from './nftables';

/**
 * The tc gate of the firewall: shared filter blocks bound to the egress (clsact) of every overlay
 * tap and VXLAN device, each holding one classic-BPF filter in direct-action mode (pref 1) that
 * passes a frame only if it carries the firewall's stamp (the mark bit its nftables verdicts set,
 * see nftables.ts) and drops it otherwise. A stamped frame gets TC_ACT_UNSPEC, not TC_ACT_OK:
 * classification goes on to the mirror filters after it in the taps' block (prefs
 * MIRROR_PREF_MIN and up, see mirrors.ts), and a frame no filter takes passes. Whatever happens to the nftables tables (never loaded, a
 * failed load, `nft flush ruleset` by hand), an unstamped frame never reaches a VM (tap egress:
 * MARK_INGRESS_OK) or leaves one for the network (VXLAN egress: MARK_EGRESS_OK). Pure: the
 * links driver binds devices to the blocks and puts the filters.
 */
export const TAP_GATE_BLOCK = 4701;
export const VXLAN_GATE_BLOCK = 4702;

/** `ld mark; jset #bit; ret TC_ACT_UNSPEC; ret TC_ACT_SHOT` (SKF_AD_OFF + SKF_AD_MARK = 0xfffff014; TC_ACT_UNSPEC = -1). */
const gateBytecode = (bit: number): string => `4,32 0 0 ${0xfffff014},69 0 1 ${bit},6 0 0 ${0xffffffff},6 0 0 2`;

export const GATES = [
  { block: TAP_GATE_BLOCK, bytecode: gateBytecode(MARK_INGRESS_OK) },
  { block: VXLAN_GATE_BLOCK, bytecode: gateBytecode(MARK_EGRESS_OK) },
] as const;

export type Gate = (typeof GATES)[number];

/** The fields of `tc -j filter show block <n> egress` the gate reads. */
export interface TcFilter {
  kind?: string;
  pref?: number;
  options?: {
    handle?: string;
    'direct-action'?: boolean;
    bytecode?: { insns?: { code: number; jt: number; jf: number; k: number }[] };
    actions?: TcAction[];
  };
}

/** The fields of an action in a `tc -j -s filter show` listing the mirrors read. */
export interface TcAction {
  kind?: string;
  mirred_action?: string;
  to_dev?: string;
  cookie?: string;
  stats?: { bytes?: number; packets?: number };
}

/** Whether a block's filters (as `tc -j` lists them) hold exactly the gate's filter at pref 1 (the others are mirror filters). */
export function holdsGateFilter(filters: TcFilter[], gate: Gate): boolean {
  const found = filters.filter((f) => f.options && f.pref === 1);
  const insns = found[0]?.options?.bytecode?.insns?.map((x) => `${x.code} ${x.jt} ${x.jf} ${x.k}`).join(',');
  return found.length === 1 && found[0].options?.['direct-action'] === true && `${insns?.split(',').length},${insns}` === gate.bytecode;
}

/** The `tc -batch` line that puts the gate's filter into its block. */
export const gateFilterLine = ({ block, bytecode }: Gate): string => `filter replace block ${block} egress pref 1 handle 1 bpf da bytecode "${bytecode}"`;
