package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// podIf is the pod end's name inside its namespace.
const podIf = "eth0"

// Pod is a sandbox's place on the pod network.
type Pod struct {
	// Netns is the path of the pinned network namespace, for the runtime to join.
	Netns string
	// IP is the pod's address, on eth0.
	IP net.IP
	// Gateway is the bridge's address, the pod's default route.
	Gateway net.IP
	// Mask is the pod CIDR's mask.
	Mask net.IPMask
	// HostVeth is the name of the veth's host end, a port of the bridge.
	HostVeth string
}

// Setup puts sandbox id on the pod network: a new network namespace pinned
// at NetnsDir/<id>, an address from the pod CIDR, and a veth pair from the
// bridge to eth0 in the namespace, with the default route via the gateway.
// Calling it again for the same id returns the same Pod, re-creating
// whatever pieces went missing. On failure, an address allocated by this
// call is given back.
func (n *Network) Setup(id string) (_ *Pod, err error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	defer n.locks.lock(id)()
	ip, fresh, err := n.ipam.allocate(id)
	if err != nil {
		return nil, fmt.Errorf("set up network of %s: %w", id, err)
	}
	if fresh {
		defer func() {
			if err != nil {
				err = errors.Join(err, n.teardown(id))
			}
		}()
	}
	pod := n.pod(id, ip)
	created, err := pin(pod.Netns)
	if err != nil {
		return nil, fmt.Errorf("set up network of %s: %w", id, err)
	}
	if created {
		// A host end left from an earlier namespace has its peer elsewhere.
		if err := deleteLink(pod.HostVeth); err != nil {
			return nil, fmt.Errorf("set up network of %s: %w", id, err)
		}
	}
	if err := n.ensureVeth(pod); err != nil {
		return nil, fmt.Errorf("set up network of %s: %w", id, err)
	}
	return pod, nil
}

// Teardown takes sandbox id off the pod network: its veth, its pinned
// namespace and its address. Tearing down what is gone is no error.
func (n *Network) Teardown(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	defer n.locks.lock(id)()
	return n.teardown(id)
}

func (n *Network) teardown(id string) error {
	// The network goes before the address, so that the address is not
	// handed out while the old veth could still answer for it.
	if err := deleteLink(vethName(id)); err != nil {
		return fmt.Errorf("tear down network of %s: %w", id, err)
	}
	if err := unpin(n.netnsPath(id)); err != nil {
		return fmt.Errorf("tear down network of %s: %w", id, err)
	}
	if err := n.ipam.release(id); err != nil {
		return fmt.Errorf("tear down network of %s: %w", id, err)
	}
	return nil
}

// Status returns what Setup gave sandbox id, from the state alone; the error
// wraps os.ErrNotExist when id has no address.
func (n *Network) Status(id string) (*Pod, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	ip, err := n.ipam.get(id)
	if err != nil {
		return nil, fmt.Errorf("network status of %s: %w", id, err)
	}
	return n.pod(id, ip), nil
}

func (n *Network) pod(id string, ip net.IP) *Pod {
	return &Pod{
		Netns:    n.netnsPath(id),
		IP:       ip,
		Gateway:  append(net.IP(nil), n.gateway...),
		Mask:     append(net.IPMask(nil), n.cfg.PodCIDR.Mask...),
		HostVeth: vethName(id),
	}
}

func (n *Network) netnsPath(id string) string { return filepath.Join(n.cfg.NetnsDir, id) }

// ensureVeth makes the veth pair if either end is missing, then brings both
// ends to the config. Both ends of a veth go when either does, so one end
// alone is a leftover.
func (n *Network) ensureVeth(pod *Pod) error {
	br, err := n.ensureBridge()
	if err != nil {
		return err
	}
	h, err := handleAt(pod.Netns)
	if err != nil {
		return err
	}
	defer h.Close()
	host, herr := netlink.LinkByName(pod.HostVeth)
	eth, perr := h.LinkByName(podIf)
	if herr != nil && !isNotFound(herr) {
		return fmt.Errorf("veth %s: %w", pod.HostVeth, herr)
	}
	if perr != nil && !isNotFound(perr) {
		return fmt.Errorf("%s in %s: %w", podIf, pod.Netns, perr)
	}
	if herr != nil || perr != nil || host.Type() != "veth" || eth.Type() != "veth" {
		if err := deleteLink(pod.HostVeth); err != nil {
			return err
		}
		if perr == nil {
			if err := h.LinkDel(eth); err != nil && !isNotFound(err) {
				return fmt.Errorf("delete %s in %s: %w", podIf, pod.Netns, err)
			}
		}
		if host, eth, err = n.addVeth(pod, h); err != nil {
			return err
		}
	}
	if host.Attrs().MasterIndex != br.Attrs().Index {
		if err := netlink.LinkSetMaster(host, br); err != nil {
			return fmt.Errorf("attach %s to %s: %w", pod.HostVeth, n.cfg.Bridge, err)
		}
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("set %s up: %w", pod.HostVeth, err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo in %s: %w", pod.Netns, err)
	}
	for _, l := range []netlink.Link{lo, eth} {
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("set %s up in %s: %w", l.Attrs().Name, pod.Netns, err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: pod.IP, Mask: pod.Mask}}
	if err := h.AddrReplace(eth, addr); err != nil {
		return fmt.Errorf("address %s on %s in %s: %w", addr.IPNet, podIf, pod.Netns, err)
	}
	def := &netlink.Route{
		LinkIndex: eth.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        pod.Gateway,
		Table:     unix.RT_TABLE_MAIN,
	}
	if err := h.RouteReplace(def); err != nil {
		return fmt.Errorf("default route via %s in %s: %w", pod.Gateway, pod.Netns, err)
	}
	return nil
}

// addVeth creates the pair with its pod end made straight in the pod's
// namespace, where the name eth0 is free (in the host's it is likely taken).
func (n *Network) addVeth(pod *Pod, h *netlink.Handle) (host, eth netlink.Link, err error) {
	ns, err := netns.GetFromPath(pod.Netns)
	if err != nil {
		return nil, nil, fmt.Errorf("open netns %s: %w", pod.Netns, err)
	}
	defer ns.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = pod.HostVeth, n.cfg.MTU
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: podIf, PeerNamespace: netlink.NsFd(ns)}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("create veth %s: %w", pod.HostVeth, err)
	}
	if host, err = netlink.LinkByName(pod.HostVeth); err != nil {
		return nil, nil, fmt.Errorf("veth %s: %w", pod.HostVeth, err)
	}
	if eth, err = h.LinkByName(podIf); err != nil {
		return nil, nil, fmt.Errorf("%s in %s: %w", podIf, pod.Netns, err)
	}
	return host, eth, nil
}

// deleteLink deletes the host's link called name, if there is one.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err == nil {
		err = netlink.LinkDel(l)
	}
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// vethName is the host end's name for sandbox id: "veth" and 11 hex digits
// of its hash, within the kernel's 15 characters.
func vethName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "veth" + hex.EncodeToString(sum[:])[:11]
}

// validID accepts ids that are safe as file names.
func validID(id string) error {
	if id == "" || len(id) > 128 || id[0] == '.' {
		return fmt.Errorf("invalid sandbox id %q", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("invalid sandbox id %q", id)
		}
	}
	return nil
}

// keyedMutex serialises work on one sandbox id; different ids run in parallel.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	sync.Mutex
	refs int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.Lock()
	return func() {
		e.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
