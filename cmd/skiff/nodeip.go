package main

import (
	"net"
	"net/netip"
)

// defaultNodeIP is the first global unicast IPv4 address of the machine, or
// loopback when it has none.
func defaultNodeIP() netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				ip = ip.Unmap()
				if ip.Is4() && ip.IsGlobalUnicast() {
					return ip
				}
			}
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}
