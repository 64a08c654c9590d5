// Package podgc is kube-controller-manager's pod garbage collector: it
// force-deletes pods bound to nodes that no longer exist, pods that were
// never scheduled and are being deleted, and the oldest terminated pods
// once there are more than a threshold of them.
package podgc

import (
	"context"
	"log/slog"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// Kubernetes' defaults.
const (
	checkPeriod            = 20 * time.Second
	quarantine             = 40 * time.Second // a node must be missing this long
	terminatedPodThreshold = 12500
)

// Controller collects pods.
type Controller struct {
	client   kubernetes.Interface
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	log      *slog.Logger
	// missing holds when each node was first seen missing.
	missing map[string]time.Time
}

// New makes the controller on factory's informers; start the factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	pods, nodes := factory.Core().V1().Pods(), factory.Core().V1().Nodes()
	return &Controller{client: client, pods: pods.Lister(), nodes: nodes.Lister(), recorder: recorder, log: log,
		synced: []cache.InformerSynced{pods.Informer().HasSynced, nodes.Informer().HasSynced}, missing: map[string]time.Time{}}
}

// Run collects every check period until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	t := time.NewTicker(checkPeriod)
	defer t.Stop()
	for {
		c.collect(ctx, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *Controller) collect(ctx context.Context, now time.Time) {
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return
	}
	var terminated []*corev1.Pod
	for _, p := range pods {
		switch {
		case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
			terminated = append(terminated, p)
		case p.Spec.NodeName == "" && p.DeletionTimestamp != nil:
			c.forceDelete(ctx, p, "unscheduled and terminating")
		}
		if p.Spec.NodeName != "" && c.nodeGone(p.Spec.NodeName, now) {
			c.forceDelete(ctx, p, "bound to node "+p.Spec.NodeName+", which no longer exists")
		}
	}
	if extra := len(terminated) - terminatedPodThreshold; extra > 0 {
		sort.Slice(terminated, func(i, j int) bool {
			return terminated[i].CreationTimestamp.Before(&terminated[j].CreationTimestamp)
		})
		for _, p := range terminated[:extra] {
			c.forceDelete(ctx, p, "terminated, over the threshold of terminated pods")
		}
	}
}

// nodeGone reports a node missing for the whole quarantine.
func (c *Controller) nodeGone(name string, now time.Time) bool {
	if _, err := c.nodes.Get(name); err == nil {
		delete(c.missing, name)
		return false
	}
	since, ok := c.missing[name]
	if !ok {
		c.missing[name] = now
		return false
	}
	return now.Sub(since) >= quarantine
}

func (c *Controller) forceDelete(ctx context.Context, p *corev1.Pod, why string) {
	zero := int64(0)
	err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero,
		Preconditions: &metav1.Preconditions{UID: &p.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		c.log.Warn("delete pod", "pod", p.Namespace+"/"+p.Name, "err", err)
		return
	}
	c.log.Info("garbage-collected pod", "pod", p.Namespace+"/"+p.Name, "why", why)
}
