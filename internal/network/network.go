// Package network is the pod network of one node, done in process the way a
// kubelet with the bridge CNI plugin would do it.
//
// New sets up the node: a bridge holding the pod range's gateway address and
// blackhole routes for the rest of the cluster's pod range and for the service
// range, so that no pod or service address is ever routed off the machine by
// the default route. Setup gives a sandbox its own network namespace, pinned
// by a bind mount under NetnsDir so that it outlives any process, with an
// address from the node's pod range on a veth pair whose host end is a port of
// the bridge. Pods on the node reach each other over the bridge and the node
// reaches them through the bridge's address; neither needs IP forwarding.
//
// Allocations are files under StateDir, so a restarted agent (a new New on the
// same StateDir) keeps them, and Setup and Teardown are idempotent: the agent
// can repeat either after a crash.
//
// Traffic from the pods to anything outside the cluster's pod range is
// masqueraded (an nftables rule, see masquerade.go); with Config.Forward the
// node forwards it (net.ipv4.ip_forward=1, put back as it was by Reset).
//
// The bridge's traffic passes the host's iptables when br_netfilter is loaded
// (net.bridge.bridge-nf-call-iptables=1); skiff installs no rules there, so a
// host whose FORWARD policy drops (Docker sets it) also drops pod-to-pod
// traffic. That is left to the nftables work too.
package network

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Config describes the node's pod network.
type Config struct {
	// StateDir holds allocations and their lock, e.g. <data-dir>/agent/network.
	StateDir string
	// NetnsDir is where pod network namespaces are pinned (bind mounts), e.g. /run/skiff/netns.
	NetnsDir string
	// Bridge is the bridge's name, e.g. "skiff0".
	Bridge string
	// PodCIDR is this node's IPv4 range, e.g. 10.42.0.0/24; the bridge gets its first address as the pods' gateway.
	PodCIDR *net.IPNet
	// ClusterCIDR is the whole pod range, e.g. 10.42.0.0/16; everything in it but PodCIDR is blackholed. Nil means PodCIDR.
	ClusterCIDR *net.IPNet
	// ServiceCIDR, when set, is blackholed so that no service address can leave the machine.
	ServiceCIDR *net.IPNet
	// MTU of the bridge and the veths; 0 means 1500.
	MTU int
	// Forward turns on IPv4 forwarding, which pods need to reach beyond
	// the node; Reset puts back what it was.
	Forward bool
}

// Network is the pod network of this node.
type Network struct {
	cfg     Config
	gateway net.IP
	ipam    *ipam
	locks   keyedMutex
	// bridgeMu serialises re-creating the bridge when Setup finds it gone.
	bridgeMu sync.Mutex
}

// New sets up the node's pod network: the bridge, up, with the gateway
// address; the blackhole routes; the state directories. It is idempotent, so
// a restarted agent calls it again and re-adopts what is there.
func New(cfg Config) (*Network, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("network config: %w", err)
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	// Copies, so that a caller reusing its nets cannot change ours.
	cfg.PodCIDR = cloneNet(cfg.PodCIDR)
	cfg.ClusterCIDR = cloneNet(cfg.ClusterCIDR)
	cfg.ServiceCIDR = cloneNet(cfg.ServiceCIDR)
	n := &Network{
		cfg:     cfg,
		gateway: nthAddr(cfg.PodCIDR, 1),
		ipam:    newIPAM(cfg.StateDir, cfg.PodCIDR),
	}
	for _, dir := range []string{cfg.StateDir, cfg.NetnsDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("set up pod network: %w", err)
		}
	}
	if err := n.ipam.init(); err != nil {
		return nil, fmt.Errorf("set up pod network: %w", err)
	}
	if _, err := n.ensureBridge(); err != nil {
		return nil, fmt.Errorf("set up pod network: %w", err)
	}
	for _, dst := range n.blackholes() {
		if err := ensureBlackhole(dst); err != nil {
			return nil, fmt.Errorf("set up pod network: %w", err)
		}
	}
	if err := n.ensureMasquerade(); err != nil {
		return nil, fmt.Errorf("set up pod network: %w", err)
	}
	if cfg.Forward {
		if err := n.enableForwarding(); err != nil {
			return nil, fmt.Errorf("set up pod network: %w", err)
		}
	}
	return n, nil
}

// Reset removes everything the network made: every pod's veth, pinned
// namespace and allocation, the bridge, the blackhole routes and the state.
// It goes on past errors and returns them all. The Network is not usable
// afterwards.
func (n *Network) Reset() error {
	var errs []error
	ids, err := n.ipam.ids()
	errs = append(errs, err)
	for _, id := range ids {
		errs = append(errs, n.Teardown(id))
	}
	// Whatever a crash left behind without an allocation: pins under our
	// directory and ports of our bridge.
	entries, err := os.ReadDir(n.cfg.NetnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("reset pod network: %w", err))
	}
	for _, e := range entries {
		errs = append(errs, unpin(filepath.Join(n.cfg.NetnsDir, e.Name())))
	}
	if err := os.Remove(n.cfg.NetnsDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("reset pod network: %w", err))
	}
	errs = append(errs, n.deleteBridge(), n.deleteMasquerade(), n.restoreForwarding())
	for _, dst := range n.blackholes() {
		errs = append(errs, deleteBlackhole(dst))
	}
	if err := os.RemoveAll(n.cfg.StateDir); err != nil {
		errs = append(errs, fmt.Errorf("reset pod network: %w", err))
	}
	return errors.Join(errs...)
}

func (c *Config) validate() error {
	switch {
	case c.StateDir == "" || c.NetnsDir == "":
		return errors.New("state and netns directories are required")
	case c.Bridge == "" || len(c.Bridge) > unix.IFNAMSIZ-1:
		return fmt.Errorf("bridge name %q must have 1 to %d characters", c.Bridge, unix.IFNAMSIZ-1)
	case c.PodCIDR == nil || c.PodCIDR.IP.To4() == nil:
		return errors.New("an IPv4 pod CIDR is required")
	case c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535):
		return fmt.Errorf("MTU %d out of range", c.MTU)
	}
	if ones, bits := c.PodCIDR.Mask.Size(); bits != 32 || ones > 30 {
		// Network, gateway and broadcast leave nothing for pods in a /31.
		return fmt.Errorf("pod CIDR %s is too small (at most /30)", c.PodCIDR)
	}
	if !c.PodCIDR.IP.Equal(c.PodCIDR.IP.Mask(c.PodCIDR.Mask)) {
		return fmt.Errorf("pod CIDR %s has host bits set", c.PodCIDR)
	}
	if c.ClusterCIDR != nil && !contains(c.ClusterCIDR, c.PodCIDR) {
		return fmt.Errorf("pod CIDR %s is not inside cluster CIDR %s", c.PodCIDR, c.ClusterCIDR)
	}
	if c.ServiceCIDR != nil && (overlap(c.ServiceCIDR, c.PodCIDR) || c.ClusterCIDR != nil && overlap(c.ServiceCIDR, c.ClusterCIDR)) {
		return fmt.Errorf("service CIDR %s overlaps the pod range", c.ServiceCIDR)
	}
	return nil
}

// ensureBridge creates the bridge if it is missing and brings it to the
// config: MTU, gateway address, up.
func (n *Network) ensureBridge() (netlink.Link, error) {
	n.bridgeMu.Lock()
	defer n.bridgeMu.Unlock()
	name := n.cfg.Bridge
	br, err := netlink.LinkByName(name)
	if isNotFound(err) {
		// A bridge takes the lowest MAC of its ports unless given one; a
		// fixed one keeps the pods' ARP entries for the gateway valid as
		// pods come and go.
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU, attrs.HardwareAddr = name, n.cfg.MTU, localMAC()
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", name, err)
		}
		br, err = netlink.LinkByName(name)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	if br.Type() != "bridge" {
		return nil, fmt.Errorf("bridge %s: a link of type %s has that name", name, br.Type())
	}
	if br.Attrs().MTU != n.cfg.MTU {
		if err := netlink.LinkSetMTU(br, n.cfg.MTU); err != nil {
			return nil, fmt.Errorf("bridge %s: set MTU: %w", name, err)
		}
	}
	gw := &netlink.Addr{IPNet: &net.IPNet{IP: n.gateway, Mask: n.cfg.PodCIDR.Mask}}
	if err := netlink.AddrReplace(br, gw); err != nil {
		return nil, fmt.Errorf("bridge %s: address %s: %w", name, gw.IPNet, err)
	}
	// A gateway of an earlier pod CIDR would keep routing that range here.
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: list addresses: %w", name, err)
	}
	for _, a := range addrs {
		if a.IPNet.String() != gw.IPNet.String() {
			if err := netlink.AddrDel(br, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return nil, fmt.Errorf("bridge %s: delete stale address %s: %w", name, a.IPNet, err)
			}
		}
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("bridge %s: set up: %w", name, err)
	}
	return br, nil
}

// deleteBridge deletes the bridge and any veth still attached to it.
func (n *Network) deleteBridge() error {
	br, err := netlink.LinkByName(n.cfg.Bridge)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete bridge %s: %w", n.cfg.Bridge, err)
	}
	if br.Type() != "bridge" {
		return fmt.Errorf("delete bridge %s: a link of type %s has that name", n.cfg.Bridge, br.Type())
	}
	var errs []error
	links, err := linkList()
	if err != nil {
		errs = append(errs, fmt.Errorf("delete bridge %s: %w", n.cfg.Bridge, err))
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index && l.Type() == "veth" {
			if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("delete veth %s: %w", l.Attrs().Name, err))
			}
		}
	}
	if err := netlink.LinkDel(br); err != nil && !isNotFound(err) {
		errs = append(errs, fmt.Errorf("delete bridge %s: %w", n.cfg.Bridge, err))
	}
	return errors.Join(errs...)
}

// blackholes are the destinations routed nowhere. The whole cluster range
// gets one route: the bridge's connected route for PodCIDR is more specific
// and wins, so only the rest of the range is dropped, and should the bridge
// be gone the node's pod addresses are dropped too instead of following the
// default route off the machine.
func (n *Network) blackholes() []*net.IPNet {
	var dsts []*net.IPNet
	if c := n.cfg.ClusterCIDR; c != nil && c.String() != n.cfg.PodCIDR.String() {
		// A blackhole with the PodCIDR itself would replace the connected route.
		dsts = append(dsts, c)
	}
	if n.cfg.ServiceCIDR != nil {
		dsts = append(dsts, n.cfg.ServiceCIDR)
	}
	return dsts
}

// ensureBlackhole adds a blackhole route to dst in the main table unless it
// is there. It refuses to replace another kind of route to dst, which belongs
// to someone else.
func ensureBlackhole(dst *net.IPNet) error {
	routes, err := routesTo(dst)
	if err != nil {
		return fmt.Errorf("blackhole %s: %w", dst, err)
	}
	for _, r := range routes {
		if r.Type != unix.RTN_BLACKHOLE {
			return fmt.Errorf("blackhole %s: a route of another type exists (%s)", dst, r)
		}
	}
	if len(routes) > 0 {
		return nil
	}
	r := &netlink.Route{Dst: dst, Type: unix.RTN_BLACKHOLE, Table: unix.RT_TABLE_MAIN}
	if err := netlink.RouteAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("blackhole %s: %w", dst, err)
	}
	return nil
}

func deleteBlackhole(dst *net.IPNet) error {
	r := &netlink.Route{Dst: dst, Type: unix.RTN_BLACKHOLE, Table: unix.RT_TABLE_MAIN}
	if err := netlink.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete blackhole %s: %w", dst, err)
	}
	return nil
}

// routesTo lists the main table's IPv4 routes whose destination is exactly dst.
func routesTo(dst *net.IPNet) ([]netlink.Route, error) {
	filter := &netlink.Route{Dst: dst, Table: unix.RT_TABLE_MAIN}
	for range 5 {
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return routes, err
		}
	}
	return nil, fmt.Errorf("list routes: %w", netlink.ErrDumpInterrupted)
}

// linkList lists the host's links, retrying a dump that changes under it.
func linkList() ([]netlink.Link, error) {
	for range 5 {
		links, err := netlink.LinkList()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return links, err
		}
	}
	return nil, fmt.Errorf("list links: %w", netlink.ErrDumpInterrupted)
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// localMAC is a random unicast, locally administered MAC address.
func localMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	rand.Read(mac)
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}

func cloneNet(n *net.IPNet) *net.IPNet {
	if n == nil {
		return nil
	}
	ip := n.IP.To4()
	if ip == nil {
		ip = n.IP
	}
	return &net.IPNet{IP: append(net.IP(nil), ip...), Mask: append(net.IPMask(nil), n.Mask...)}
}

// contains reports whether inner lies wholly inside outer.
func contains(outer, inner *net.IPNet) bool {
	oo, ob := outer.Mask.Size()
	io, ib := inner.Mask.Size()
	return ob == ib && oo <= io && outer.Contains(inner.IP)
}

func overlap(a, b *net.IPNet) bool {
	return a.Contains(b.IP) || b.Contains(a.IP)
}
