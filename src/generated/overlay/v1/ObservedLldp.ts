// Original file: proto/overlay/v1/sync.proto


/**
 * ObservedLldp is the LLDP neighbour heard on a link (lldpd's `lldpcli show neighbors`).
 */
export interface ObservedLldp {
  'chassisId'?: (string);
  'systemName'?: (string);
  'portId'?: (string);
  'portDescription'?: (string);
  /**
   * vlans are the VLAN ids (1-4094) the switch says the port carries (802.1 VLAN TLVs); empty
   * when it says none. At most 4096.
   */
  'vlans'?: (number)[];
  '_chassisId'?: "chassisId";
  '_systemName'?: "systemName";
  '_portId'?: "portId";
  '_portDescription'?: "portDescription";
}

/**
 * ObservedLldp is the LLDP neighbour heard on a link (lldpd's `lldpcli show neighbors`).
 */
export interface ObservedLldp__Output {
  'chassisId'?: (string);
  'systemName'?: (string);
  'portId'?: (string);
  'portDescription'?: (string);
  /**
   * vlans are the VLAN ids (1-4094) the switch says the port carries (802.1 VLAN TLVs); empty
   * when it says none. At most 4096.
   */
  'vlans': (number)[];
  '_chassisId'?: "chassisId";
  '_systemName'?: "systemName";
  '_portId'?: "portId";
  '_portDescription'?: "portDescription";
}
