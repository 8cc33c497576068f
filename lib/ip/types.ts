/** The subset of `ip -json link/addr show` output we read. */
export interface IpAddrInfo {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
  scope?: string;
  tentative?: boolean;
  dadfailed?: boolean;
}

export interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  operstate?: string;
  address?: string;
  master?: string;
  link_type?: string;
  /** ifindex of the peer (veth) or lower device, possibly in another namespace. */
  link_index?: number;
  link_netnsid?: number;
  addr_info?: IpAddrInfo[];
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown>; info_slave_kind?: string; info_slave_data?: Record<string, unknown> };
}
