package network

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// requireRoot skips tests that need root; CI runs as root, so they run there.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, links, routes and mounts); CI runs as root, so it runs there")
	}
}

// The tests' ranges: each test takes its own /24 of 10.199.0.0/16 for pods
// and of 10.198.0.0/16 for services, ranges no real network here uses.
var (
	octetMu sync.Mutex
	octets  []byte
)

func nextOctet(t *testing.T) byte {
	octetMu.Lock()
	defer octetMu.Unlock()
	if len(octets) == 0 {
		var r [1]byte
		rand.Read(r[:])
		for i := range 64 {
			octets = append(octets, byte(1+(int(r[0])+i)%200))
		}
	}
	o := octets[0]
	octets = octets[1:]
	return o
}

// testConfig is a config with a bridge, ranges and directories of the test's
// own. It registers a clean-up that removes whatever a network with this
// config made, whether or not the package's own Reset works.
func testConfig(t *testing.T, podPrefix int) Config {
	t.Helper()
	requireRoot(t)
	suffix := make([]byte, 3)
	rand.Read(suffix)
	o := nextOctet(t)
	cfg := Config{
		StateDir:    filepath.Join(t.TempDir(), "network"),
		NetnsDir:    filepath.Join(t.TempDir(), "netns"),
		Bridge:      "skt" + hex.EncodeToString(suffix),
		PodCIDR:     &net.IPNet{IP: net.IPv4(10, 199, o, 0).To4(), Mask: net.CIDRMask(podPrefix, 32)},
		ClusterCIDR: &net.IPNet{IP: net.IPv4(10, 199, 0, 0).To4(), Mask: net.CIDRMask(16, 32)},
		ServiceCIDR: &net.IPNet{IP: net.IPv4(10, 198, o, 0).To4(), Mask: net.CIDRMask(24, 32)},
	}
	t.Cleanup(func() { cleanUp(t, cfg) })
	return cfg
}

// cleanUp removes, with netlink and umount alone, everything a network with
// cfg may have made. It runs before the temporary directories go.
func cleanUp(t *testing.T, cfg Config) {
	if br, err := netlink.LinkByName(cfg.Bridge); err == nil {
		links, _ := netlink.LinkList()
		for _, l := range links {
			if l.Attrs().MasterIndex == br.Attrs().Index {
				netlink.LinkDel(l)
			}
		}
		netlink.LinkDel(br)
	}
	ids, _ := filepath.Glob(filepath.Join(cfg.StateDir, "pods", "*.json"))
	for _, p := range ids {
		if l, err := netlink.LinkByName(vethName(strings.TrimSuffix(filepath.Base(p), ".json"))); err == nil {
			netlink.LinkDel(l)
		}
	}
	pins, _ := os.ReadDir(cfg.NetnsDir)
	for _, e := range pins {
		for range 8 {
			if unix.Unmount(filepath.Join(cfg.NetnsDir, e.Name()), unix.MNT_DETACH) != nil {
				break
			}
		}
	}
	for _, dst := range []*net.IPNet{cfg.ClusterCIDR, cfg.ServiceCIDR} {
		if dst != nil {
			netlink.RouteDel(&netlink.Route{Dst: dst, Type: unix.RTN_BLACKHOLE, Table: unix.RT_TABLE_MAIN})
		}
	}
	(&Network{cfg: cfg}).deleteMasquerade()
	(&Network{cfg: cfg}).restoreForwarding()
}

func newNetwork(t *testing.T, cfg Config) *Network {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func setup(t *testing.T, n *Network, id string) *Pod {
	t.Helper()
	pod, err := n.Setup(id)
	if err != nil {
		t.Fatalf("setup %s: %v", id, err)
	}
	return pod
}

// listen opens a TCP listener on the pod's address inside its namespace.
func listen(t *testing.T, pod *Pod) net.Listener {
	t.Helper()
	var ln net.Listener
	err := inNetns(pod.Netns, func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(pod.IP.String(), "0"))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", pod.Netns, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// exchange accepts one connection on ln, made by dial, passes a line each
// way and returns the client's address as the server saw it.
func exchange(t *testing.T, ln net.Listener, dial func() (net.Conn, error)) net.IP {
	t.Helper()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	type result struct {
		peer net.IP
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil {
			_, err = fmt.Fprintf(c, "echo %s", line)
		}
		done <- result{c.RemoteAddr().(*net.TCPAddr).IP, err}
	}()
	c, err := dial()
	if err != nil {
		t.Fatalf("dial %s: %v", ln.Addr(), err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, "ping"); err != nil {
		t.Fatal(err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || reply != "echo ping\n" {
		t.Fatalf("reply %q, %v", reply, err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.peer
}

// dialFromHost dials a pod from the host, first making sure the route to it
// is the bridge so that nothing could go off the machine.
func dialFromHost(t *testing.T, cfg Config, ln net.Listener) func() (net.Conn, error) {
	t.Helper()
	addr := ln.Addr().(*net.TCPAddr)
	br, err := netlink.LinkByName(cfg.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := netlink.RouteGet(addr.IP)
	if err != nil || len(routes) == 0 || routes[0].LinkIndex != br.Attrs().Index {
		t.Fatalf("route to %s is %v (%v), want via %s", addr.IP, routes, err, cfg.Bridge)
	}
	return func() (net.Conn, error) { return net.DialTimeout("tcp4", addr.String(), 5*time.Second) }
}

func dialFromPod(pod *Pod, ln net.Listener) func() (net.Conn, error) {
	return func() (c net.Conn, err error) {
		err = inNetns(pod.Netns, func() (err error) {
			c, err = net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
			return err
		})
		return c, err
	}
}

func bridgeMAC(t *testing.T, cfg Config) string {
	t.Helper()
	br, err := netlink.LinkByName(cfg.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	return br.Attrs().HardwareAddr.String()
}

func mounted(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

func TestPodsOnANodeReachEachOther(t *testing.T) {
	cfg := testConfig(t, 24)
	n := newNetwork(t, cfg)
	mac := bridgeMAC(t, cfg)
	a, b := setup(t, n, "pod-a"), setup(t, n, "pod-b")
	// Ports joining must not change the gateway's MAC under the pods' ARP entries.
	if got := bridgeMAC(t, cfg); got != mac {
		t.Errorf("bridge MAC changed from %s to %s as pods joined", mac, got)
	}
	if a.IP.Equal(b.IP) {
		t.Fatalf("both pods got %s", a.IP)
	}
	for _, p := range []*Pod{a, b} {
		if !cfg.PodCIDR.Contains(p.IP) || p.IP.Equal(p.Gateway) {
			t.Errorf("pod address %s not a pod address of %s", p.IP, cfg.PodCIDR)
		}
	}
	ln := listen(t, a)
	// No NAT between pods: A sees B's own address.
	if peer := exchange(t, ln, dialFromPod(b, ln)); !peer.Equal(b.IP) {
		t.Errorf("pod A saw %s, want pod B's %s", peer, b.IP)
	}
}

func TestHostReachesPodThroughTheBridge(t *testing.T) {
	cfg := testConfig(t, 24)
	n := newNetwork(t, cfg)
	a := setup(t, n, "pod-a")
	ln := listen(t, a)
	if peer := exchange(t, ln, dialFromHost(t, cfg, ln)); !peer.Equal(a.Gateway) {
		t.Errorf("pod saw %s, want the bridge's %s", peer, a.Gateway)
	}
	// The pod's default route is the gateway.
	if err := inNetns(a.Netns, func() error {
		routes, err := netlink.RouteGet(net.IPv4(10, 199, 250, 250))
		if err != nil {
			return err
		}
		if len(routes) == 0 || !routes[0].Gw.Equal(a.Gateway) {
			return fmt.Errorf("route from the pod: %v, want via %s", routes, a.Gateway)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestSetupTwiceReturnsTheSamePod(t *testing.T) {
	cfg := testConfig(t, 24)
	n := newNetwork(t, cfg)
	first := setup(t, n, "pod-a")
	second := setup(t, n, "pod-a")
	if fmt.Sprint(*first) != fmt.Sprint(*second) {
		t.Fatalf("second setup %+v, first %+v", *second, *first)
	}
	status, err := n.Status("pod-a")
	if err != nil || fmt.Sprint(*status) != fmt.Sprint(*first) {
		t.Fatalf("status %+v (%v), want %+v", status, err, *first)
	}
}

func TestSetupRecreatesAMissingVeth(t *testing.T) {
	cfg := testConfig(t, 24)
	n := newNetwork(t, cfg)
	first := setup(t, n, "pod-a")
	if err := deleteLink(first.HostVeth); err != nil {
		t.Fatal(err)
	}
	again := setup(t, n, "pod-a")
	if !again.IP.Equal(first.IP) {
		t.Fatalf("address changed from %s to %s", first.IP, again.IP)
	}
	ln := listen(t, again)
	exchange(t, ln, dialFromHost(t, cfg, ln))
}

func TestTeardownReleasesTheAddressAndRemovesTheNetwork(t *testing.T) {
	cfg := testConfig(t, 29)
	n := newNetwork(t, cfg)
	pods := map[string]*Pod{}
	// A /29 has five pod addresses: network, gateway and broadcast are not.
	for i := range 5 {
		id := fmt.Sprintf("pod-%d", i)
		pods[id] = setup(t, n, id)
	}
	_, err := n.Setup("pod-5")
	if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), cfg.PodCIDR.String()) {
		t.Fatalf("sixth setup in a /29: %v, want ErrExhausted naming %s", err, cfg.PodCIDR)
	}
	if _, err := n.Status("pod-5"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed setup left state: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.NetnsDir, "pod-5")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed setup left a netns pin: %v", err)
	}

	gone := pods["pod-2"]
	if err := n.Teardown("pod-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(gone.HostVeth); !isNotFound(err) {
		t.Errorf("veth %s after teardown: %v", gone.HostVeth, err)
	}
	if mounted(t, gone.Netns) {
		t.Errorf("%s still mounted", gone.Netns)
	}
	if _, err := os.Stat(gone.Netns); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin %s after teardown: %v", gone.Netns, err)
	}
	if _, err := n.Status("pod-2"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("status after teardown: %v, want ErrNotExist", err)
	}
	if err := n.Teardown("pod-2"); err != nil {
		t.Errorf("second teardown: %v", err)
	}
	if err := n.Teardown("never-set-up"); err != nil {
		t.Errorf("teardown of an unknown pod: %v", err)
	}

	reused := setup(t, n, "pod-5")
	if !reused.IP.Equal(gone.IP) {
		t.Errorf("new pod got %s, want the released %s", reused.IP, gone.IP)
	}
	ln := listen(t, reused)
	exchange(t, ln, dialFromPod(pods["pod-0"], ln))
}

func TestRestartKeepsAllocations(t *testing.T) {
	cfg := testConfig(t, 24)
	a := setup(t, newNetwork(t, cfg), "pod-a")

	n := newNetwork(t, cfg)
	status, err := n.Status("pod-a")
	if err != nil || !status.IP.Equal(a.IP) {
		t.Fatalf("status after restart: %+v %v, want %s", status, err, a.IP)
	}
	again := setup(t, n, "pod-a")
	if !again.IP.Equal(a.IP) {
		t.Fatalf("setup after restart gave %s, want %s", again.IP, a.IP)
	}
	if b := setup(t, n, "pod-b"); b.IP.Equal(a.IP) {
		t.Fatalf("new pod after restart got pod A's %s", a.IP)
	}
	ln := listen(t, a)
	exchange(t, ln, dialFromHost(t, cfg, ln))
}

func TestConcurrentSetupsGetDistinctAddresses(t *testing.T) {
	cfg := testConfig(t, 24)
	// Two networks on one state dir stand in for two processes.
	nets := []*Network{newNetwork(t, cfg), newNetwork(t, cfg)}
	pods := make([]*Pod, 12)
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() { pods[i], errs[i] = nets[i%2].Setup(fmt.Sprintf("pod-%d", i)) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, p := range pods {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[p.IP.String()] {
			t.Fatalf("%s handed out twice", p.IP)
		}
		seen[p.IP.String()] = true
	}
	for i := range pods {
		wg.Go(func() { errs[i] = nets[i%2].Teardown(fmt.Sprintf("pod-%d", i)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func TestRestOfTheClusterRangeIsBlackholed(t *testing.T) {
	cfg := testConfig(t, 24)
	o := cfg.PodCIDR.IP[2]
	n := newNetwork(t, cfg)
	pod := setup(t, n, "pod-a")
	br, err := netlink.LinkByName(cfg.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	// Only routes are looked up here: nothing is sent, so a missing
	// blackhole cannot send a packet off the machine.
	for _, dst := range []net.IP{
		net.IPv4(10, 199, o^0x80, 9), // another node's pod range
		net.IPv4(10, 198, o, 10),     // a service address
	} {
		// The kernel answers a lookup that ends in a blackhole with EINVAL
		// (an unreachable route would give EHOSTUNREACH), and `ip route
		// get` prints just that; the table shows which route it was.
		if routes, err := netlink.RouteGet(dst); !errors.Is(err, unix.EINVAL) {
			t.Errorf("route to %s: %v %v, want the blackhole's EINVAL", dst, routes, err)
		}
		if r := longestMatch(t, dst); r == nil || r.Type != unix.RTN_BLACKHOLE {
			t.Errorf("route to %s is %v, want a blackhole", dst, r)
		}
	}
	// This node's pods are reached over the bridge.
	routes, err := netlink.RouteGet(pod.IP)
	if err != nil || len(routes) == 0 || routes[0].LinkIndex != br.Attrs().Index {
		t.Errorf("route to %s: %v %v, want via %s", pod.IP, routes, err, cfg.Bridge)
	}
}

// longestMatch is the main table's most specific IPv4 route to dst.
func longestMatch(t *testing.T, dst net.IP) *netlink.Route {
	t.Helper()
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var best *netlink.Route
	bestLen := -1
	for i, r := range routes {
		ones := 0
		if r.Dst != nil {
			if !r.Dst.Contains(dst) {
				continue
			}
			ones, _ = r.Dst.Mask.Size()
		}
		if ones > bestLen {
			best, bestLen = &routes[i], ones
		}
	}
	return best
}

func TestResetRemovesEverything(t *testing.T) {
	cfg := testConfig(t, 24)
	n := newNetwork(t, cfg)
	pods := []*Pod{setup(t, n, "pod-a"), setup(t, n, "pod-b")}
	if err := n.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(cfg.Bridge); !isNotFound(err) {
		t.Errorf("bridge after reset: %v", err)
	}
	for _, p := range pods {
		if _, err := netlink.LinkByName(p.HostVeth); !isNotFound(err) {
			t.Errorf("veth %s after reset: %v", p.HostVeth, err)
		}
		if mounted(t, p.Netns) {
			t.Errorf("%s still mounted after reset", p.Netns)
		}
	}
	for _, dst := range []*net.IPNet{cfg.ClusterCIDR, cfg.ServiceCIDR} {
		if routes, err := routesTo(dst); err != nil || len(routes) > 0 {
			t.Errorf("routes to %s after reset: %v %v", dst, routes, err)
		}
	}
	for _, dir := range []string{cfg.StateDir, cfg.NetnsDir} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after reset: %v", dir, err)
		}
	}
}

func TestNewOnAChangedPodCIDRMovesTheGatewayOrRefuses(t *testing.T) {
	cfg := testConfig(t, 24)
	n := newNetwork(t, cfg)
	moved := cfg
	moved.PodCIDR = &net.IPNet{IP: net.IPv4(10, 199, cfg.PodCIDR.IP[2]^0x80, 0).To4(), Mask: net.CIDRMask(24, 32)}

	setup(t, n, "pod-a")
	if _, err := New(moved); err == nil || !strings.Contains(err.Error(), "pod-a") {
		t.Fatalf("New with pods outside the new range: %v, want an error naming pod-a", err)
	}

	if err := n.Teardown("pod-a"); err != nil {
		t.Fatal(err)
	}
	newNetwork(t, moved)
	br, err := netlink.LinkByName(cfg.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("10.199.%d.1/24", moved.PodCIDR.IP[2])
	if len(addrs) != 1 || addrs[0].IPNet.String() != want {
		t.Errorf("bridge addresses %v, want only %s", addrs, want)
	}
}

// TestPodTrafficLeavingThePodRangeIsMasqueraded sends a pod's connection
// to an "outside" that is a network namespace the test makes (a veth from
// the host): it arrives from the host's address there, not the pod's.
func TestPodTrafficLeavingThePodRangeIsMasqueraded(t *testing.T) {
	cfg := testConfig(t, 24)
	cfg.Forward = true
	n := newNetwork(t, cfg)
	pod := setup(t, n, "pod-out")
	suffix := make([]byte, 2)
	rand.Read(suffix)
	name := "skto" + hex.EncodeToString(suffix)
	host, outside := "vh"+hex.EncodeToString(suffix), "vo"+hex.EncodeToString(suffix)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	ip("netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run(); exec.Command("ip", "link", "del", host).Run() })
	ip("link", "add", host, "type", "veth", "peer", "name", outside)
	ip("link", "set", outside, "netns", name)
	ip("addr", "add", "192.168.251.2/30", "dev", host)
	ip("link", "set", host, "up")
	ip("-n", name, "addr", "add", "192.168.251.1/30", "dev", outside)
	ip("-n", name, "link", "set", outside, "up")
	var ln net.Listener
	if err := inNetns("/run/netns/"+name, func() (err error) {
		ln, err = net.Listen("tcp4", "192.168.251.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if peer := exchange(t, ln, dialFromPod(pod, ln)); !peer.Equal(net.IPv4(192, 168, 251, 2)) {
		t.Errorf("outside saw %s, want the host's 192.168.251.2 (the pod is %s)", peer, pod.IP)
	}
	// Between pods the source stays the pod's own.
	b := setup(t, n, "pod-b")
	lnB := listen(t, b)
	if peer := exchange(t, lnB, dialFromPod(pod, lnB)); !peer.Equal(pod.IP) {
		t.Errorf("pod b saw %s, want pod a's own %s", peer, pod.IP)
	}
}
