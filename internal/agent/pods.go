package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/agent/kubeletapi"
	"github.com/skiff-sh/skiff/internal/events"
)

// Run registers the node and runs its pods until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.registerNode(ctx); err != nil {
		return fmt.Errorf("register node %s: %w", a.cfg.NodeName, err)
	}
	go a.heartbeat(ctx)
	go a.rotateLogs(ctx)
	if a.cfg.KubeletListener != nil {
		go func() {
			err := kubeletapi.Serve(ctx, a.cfg.KubeletListener, a.cfg.KubeletTLS, kubeletapi.Config{
				Pods: kubeletPods{a.cfg.Runtime}, Streams: a.cfg.Streams, Log: a.log})
			if err != nil {
				a.log.Error("kubelet API", "err", err)
			}
		}()
	}
	if err := a.waitForPodCIDR(ctx); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	rec := events.NewHostRecorder(ctx, a.cfg.Client, "kubelet", a.cfg.NodeName)
	defer rec.Shutdown()
	a.recorder = rec

	factory := informers.NewSharedInformerFactoryWithOptions(a.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String()
		}))
	pods := factory.Core().V1().Pods().Informer()
	pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { a.podChanged(ctx, obj.(*corev1.Pod)) },
		UpdateFunc: func(old, obj any) {
			// The agent writes the status: its own updates need no sync.
			a.podChangedIf(ctx, obj.(*corev1.Pod), !statusOnly(old.(*corev1.Pod), obj.(*corev1.Pod)))
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				a.podGone(ctx, pod.UID)
			}
		},
	})
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced) {
		return ctx.Err()
	}
	a.removeOrphans(ctx, pods.GetStore())
	for {
		select {
		case <-ctx.Done():
			return nil
		case uid := <-a.cfg.Exits:
			a.mu.Lock()
			w := a.workers[types.UID(uid)]
			a.mu.Unlock()
			if w != nil {
				w.poke()
			}
		}
	}
}

// worker runs one pod's syncs, one at a time, whenever the pod changes,
// one of its containers ends, or a timer it asked for fires.
type worker struct {
	uid     types.UID
	trigger chan struct{}
	pod     chan *corev1.Pod // the newest version, replacing an unread one
	gone    chan struct{}
}

func (w *worker) poke() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// statusOnly reports an update that changed nothing but the status.
func statusOnly(old, cur *corev1.Pod) bool {
	return apiequality.Semantic.DeepEqual(old.Spec, cur.Spec) &&
		apiequality.Semantic.DeepEqual(old.DeletionTimestamp, cur.DeletionTimestamp) &&
		apiequality.Semantic.DeepEqual(old.Labels, cur.Labels) &&
		apiequality.Semantic.DeepEqual(old.Annotations, cur.Annotations)
}

func (a *Agent) podChanged(ctx context.Context, pod *corev1.Pod) { a.podChangedIf(ctx, pod, true) }

// podChangedIf gives the worker the newest pod, and a sync when sync.
func (a *Agent) podChangedIf(ctx context.Context, pod *corev1.Pod, sync bool) {
	a.log.Debug("pod event", "pod", pod.Namespace+"/"+pod.Name, "created", pod.CreationTimestamp.Time, "sync", sync)
	a.mu.Lock()
	w, ok := a.workers[pod.UID]
	if !ok {
		w = &worker{uid: pod.UID, trigger: make(chan struct{}, 1), pod: make(chan *corev1.Pod, 1), gone: make(chan struct{})}
		a.workers[pod.UID] = w
		go a.runWorker(ctx, w)
	}
	a.mu.Unlock()
	select {
	case <-w.pod:
	default:
	}
	w.pod <- pod
	if sync || !ok {
		w.poke()
	}
}

func (a *Agent) podGone(ctx context.Context, uid types.UID) {
	a.mu.Lock()
	w := a.workers[uid]
	a.mu.Unlock()
	if w != nil {
		close(w.gone)
	}
}

func (a *Agent) runWorker(ctx context.Context, w *worker) {
	var pod *corev1.Pod
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	gone := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.trigger:
		case <-timer.C:
		case <-w.gone:
			gone = true
			w.gone = nil
		}
		select {
		case p := <-w.pod:
			pod = p
		default:
		}
		if gone {
			// The object is gone from the API: whatever still runs goes.
			a.killPod(ctx, w.uid, pod, 0)
			a.mu.Lock()
			delete(a.workers, w.uid)
			a.mu.Unlock()
			return
		}
		if pod == nil {
			continue
		}
		began := time.Now()
		next, written, err := a.syncPod(ctx, pod)
		a.log.Debug("synced pod", "pod", pod.Namespace+"/"+pod.Name, "took", time.Since(began), "next", next)
		if written != nil {
			pod = written // newer than what the informer has delivered yet
		}
		if err != nil {
			a.log.Warn("sync pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			if next == 0 || next > 2*time.Second {
				next = 2 * time.Second
			}
		}
		if next == 0 {
			next = 10 * time.Second // resync, as the kubelet does
		}
		timer.Reset(next)
	}
}

// removeOrphans removes sandboxes of pods this node no longer has (deleted
// while the agent was down).
func (a *Agent) removeOrphans(ctx context.Context, store cache.Store) {
	known := map[string]bool{}
	for _, obj := range store.List() {
		known[string(obj.(*corev1.Pod).UID)] = true
	}
	list, err := a.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return
	}
	for _, sb := range list.Items {
		if uid := sb.Metadata.GetUid(); !known[uid] {
			a.killPod(ctx, types.UID(uid), nil, 0)
		}
	}
}
