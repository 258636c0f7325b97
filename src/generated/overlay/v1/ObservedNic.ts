// Original file: proto/overlay/v1/sync.proto


/**
 * ObservedNic is what sysfs says of a NIC (/sys/class/net/<if>/device).
 */
export interface ObservedNic {
  /**
   * driver is the kernel driver's name (basename of device/driver); absent when not read.
   */
  'driver'?: (string);
  /**
   * pci_address is dddd:bb:dd.f; absent when the device is not on PCI.
   */
  'pciAddress'?: (string);
  /**
   * pci_bus is dddd:bb: two NICs on one bus share a failure domain.
   */
  'pciBus'?: (string);
  /**
   * numa_node is the device's NUMA node; absent when the kernel says -1 or nothing.
   */
  'numaNode'?: (number);
  /**
   * ignore_routes_with_linkdown is whether IPv4 routes over the device are skipped while it has
   * no carrier (net.ipv4.conf.all or .<device> ignore_routes_with_linkdown): routed redundancy
   * fails over on a cut cable only then; absent when not read.
   */
  'ignoreRoutesWithLinkdown'?: (boolean);
  '_driver'?: "driver";
  '_pciAddress'?: "pciAddress";
  '_pciBus'?: "pciBus";
  '_numaNode'?: "numaNode";
  '_ignoreRoutesWithLinkdown'?: "ignoreRoutesWithLinkdown";
}

/**
 * ObservedNic is what sysfs says of a NIC (/sys/class/net/<if>/device).
 */
export interface ObservedNic__Output {
  /**
   * driver is the kernel driver's name (basename of device/driver); absent when not read.
   */
  'driver'?: (string);
  /**
   * pci_address is dddd:bb:dd.f; absent when the device is not on PCI.
   */
  'pciAddress'?: (string);
  /**
   * pci_bus is dddd:bb: two NICs on one bus share a failure domain.
   */
  'pciBus'?: (string);
  /**
   * numa_node is the device's NUMA node; absent when the kernel says -1 or nothing.
   */
  'numaNode'?: (number);
  /**
   * ignore_routes_with_linkdown is whether IPv4 routes over the device are skipped while it has
   * no carrier (net.ipv4.conf.all or .<device> ignore_routes_with_linkdown): routed redundancy
   * fails over on a cut cable only then; absent when not read.
   */
  'ignoreRoutesWithLinkdown'?: (boolean);
  '_driver'?: "driver";
  '_pciAddress'?: "pciAddress";
  '_pciBus'?: "pciBus";
  '_numaNode'?: "numaNode";
  '_ignoreRoutesWithLinkdown'?: "ignoreRoutesWithLinkdown";
}
