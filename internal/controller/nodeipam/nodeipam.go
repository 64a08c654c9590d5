// Package nodeipam gives every Node a pod range (spec.podCIDR): a /24 of
// the cluster CIDR, as kube-controller-manager's range allocator does.
package nodeipam

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// NodeMaskSize is the size of each node's range.
const NodeMaskSize = 24

// Controller assigns pod ranges.
type Controller struct {
	client  kubernetes.Interface
	nodes   corelisters.NodeLister
	synced  cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	cluster netip.Prefix
	log     *slog.Logger

	// used are the ranges taken, by the informer's nodes and by what this
	// controller assigned before the informer shows it; byNode, whose.
	mu      sync.Mutex
	used    map[netip.Prefix]bool
	byNode  map[string][]netip.Prefix
	pending map[string]bool // assigned here, not yet in the informer
}

// New watches nodes through factory; start the factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, cluster netip.Prefix, log *slog.Logger) *Controller {
	inf := factory.Core().V1().Nodes()
	c := &Controller{client: client, nodes: inf.Lister(), synced: inf.Informer().HasSynced, cluster: cluster.Masked(), log: log,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodeipam"})}
	c.used, c.byNode, c.pending = map[netip.Prefix]bool{}, map[string][]netip.Prefix{}, map[string]bool{}
	seen := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			c.track(n.Name, rangesOf(n))
			if n.Spec.PodCIDR == "" {
				c.queue.Add(n.Name)
			}
		}
	}
	inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: seen, UpdateFunc: func(_, o any) { seen(o) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				c.untrack(n.Name)
			}
		}})
	return c
}

// rangesOf parses a node's pod ranges.
func rangesOf(n *corev1.Node) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range append([]string{n.Spec.PodCIDR}, n.Spec.PodCIDRs...) {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// track records the ranges the informer shows a node holding. A node it
// shows without one keeps what was just assigned to it here.
func (c *Controller) track(node string, ranges []netip.Prefix) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(ranges) == 0 && c.pending[node] {
		return
	}
	c.set(node, ranges)
}

// untrack frees a node's ranges: it is gone, or its assignment failed.
func (c *Controller) untrack(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(node, nil)
}

// set replaces the ranges node holds (c.mu held).
func (c *Controller) set(node string, ranges []netip.Prefix) {
	for _, p := range c.byNode[node] {
		delete(c.used, p)
	}
	delete(c.byNode, node)
	delete(c.pending, node)
	if len(ranges) > 0 {
		c.byNode[node] = ranges
		for _, p := range ranges {
			c.used[p] = true
		}
	}
}

// Run assigns ranges until ctx ends; one worker, so that two nodes never
// get the same range.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return nil
	}
	go func() { <-ctx.Done(); c.queue.ShutDown() }()
	for {
		name, quit := c.queue.Get()
		if quit {
			return nil
		}
		if err := c.assign(ctx, name); err != nil {
			c.log.Warn("assign pod range", "node", name, "err", err)
			c.queue.AddRateLimited(name)
		} else {
			c.queue.Forget(name)
		}
		c.queue.Done(name)
	}
}

func (c *Controller) assign(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if err != nil || node.Spec.PodCIDR != "" {
		return nil
	}
	c.mu.Lock()
	if c.pending[name] {
		c.mu.Unlock()
		return nil // assigned already; the informer has not caught up
	}
	free, err := Next(c.cluster, c.used)
	if err == nil {
		// Taken now: the informer shows the patch only later.
		c.set(name, []netip.Prefix{free})
		c.pending[name] = true
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": free.String(), "podCIDRs": []string{free.String()}}})
	_, err = c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		c.untrack(name)
		return err
	}
	c.log.Info("assigned pod range", "node", name, "podCIDR", free.String())
	return nil
}

// Next returns the first /24 of cluster (or cluster itself when it is
// smaller) that is not used.
func Next(cluster netip.Prefix, used map[netip.Prefix]bool) (netip.Prefix, error) {
	bits := NodeMaskSize
	if cluster.Bits() > bits {
		bits = cluster.Bits()
	}
	if !cluster.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("cluster CIDR %s: only IPv4 is supported", cluster)
	}
	count := 1 << (bits - cluster.Bits())
	base := cluster.Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	for i := 0; i < count; i++ {
		v := start + uint32(i)<<(32-bits)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits)
		if !used[p] {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("the cluster CIDR %s has no free /%d left", cluster, bits)
}
