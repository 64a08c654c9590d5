// Package nodeipam gives every Node a pod range (spec.podCIDR): a /24 of
// the cluster CIDR, as kube-controller-manager's range allocator does.
package nodeipam

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
}

// New watches nodes through factory; start the factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, cluster netip.Prefix, log *slog.Logger) *Controller {
	inf := factory.Core().V1().Nodes()
	c := &Controller{client: client, nodes: inf.Lister(), synced: inf.Informer().HasSynced, cluster: cluster.Masked(), log: log,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodeipam"})}
	enqueue := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok && n.Spec.PodCIDR == "" {
			c.queue.Add(n.Name)
		}
	}
	inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }})
	return c
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
	all, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	used := map[netip.Prefix]bool{}
	for _, n := range all {
		for _, s := range append([]string{n.Spec.PodCIDR}, n.Spec.PodCIDRs...) {
			if p, err := netip.ParsePrefix(s); err == nil {
				used[p.Masked()] = true
			}
		}
	}
	free, err := Next(c.cluster, used)
	if err != nil {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": free.String(), "podCIDRs": []string{free.String()}}})
	_, err = c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err == nil {
		c.log.Info("assigned pod range", "node", name, "podCIDR", free.String())
	}
	return err
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
