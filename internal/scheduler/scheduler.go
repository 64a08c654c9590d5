// Package scheduler is skiff's default-scheduler: it places each Pod whose
// spec.nodeName is empty on one node, as a whole, by its total requests,
// filtering nodes as kube-scheduler does and scoring the ones that fit;
// then it binds the Pod through pods/binding. A Pod that fits nowhere gets
// PodScheduled=False with reason Unschedulable and kube-scheduler's
// message, and is tried again when nodes or pods change.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/nodeaffinity"
)

// Name is the schedulerName this scheduler answers to.
const Name = corev1.DefaultSchedulerName

// Scheduler places pods.
type Scheduler struct {
	client   kubernetes.Interface
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger

	mu     sync.Mutex
	usage  map[string]*requests // by node: what its pods (bound or assumed) ask for
	placed map[types.UID]placed // what each counted pod adds, and where
	next   int                  // where the next search for nodes starts
	alloc  map[string]allocatable
	images imageIndex
	// antiAffinityPods counts placed pods with required anti-affinity,
	// which every new pod must be checked against; podAffinityPods those
	// with inter-pod terms that scoring weighs.
	antiAffinityPods, podAffinityPods int
	// byController counts the placed pods of each controller by node, for
	// the default spreading.
	byController map[types.UID]map[string]int
	binds        chan struct{} // bounds concurrent bindings
	// waiting are the pods that fit nowhere, by key.
	waiting map[string]waitingPod
	// nodeCache is the nodes, listed again once nodesDirty.
	nodeCache  []*corev1.Node
	nodesDirty bool
	volumes    *volumeBinding
}

// placed is one pod's part of a node's usage.
type placed struct {
	node string
	req  requests
	pod  *corev1.Pod
}

// New watches pods and nodes through factory; start it, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Scheduler {
	pods, nodes := factory.Core().V1().Pods(), factory.Core().V1().Nodes()
	s := &Scheduler{client: client, pods: pods.Lister(), nodes: nodes.Lister(), recorder: recorder, log: log,
		usage: map[string]*requests{}, placed: map[types.UID]placed{}, alloc: map[string]allocatable{},
		byController: map[types.UID]map[string]int{}, waiting: map[string]waitingPod{}, binds: make(chan struct{}, 32),
		synced: []cache.InformerSynced{pods.Informer().HasSynced, nodes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 10*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "scheduler"})}
	s.volumes = newVolumeBinding(client, factory, s.retryWaiting)
	s.synced = append(s.synced, s.volumes.synced...)
	pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.count(obj); s.podChanged(obj) },
		UpdateFunc: func(_, obj any) { s.count(obj); s.podChanged(obj) },
		// A pod that goes frees room: the waiting ones may fit now.
		DeleteFunc: func(obj any) { s.uncount(obj); s.retryWaiting() },
	})
	nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.nodesChanged(); s.retryWaiting() },
		UpdateFunc: func(_, _ any) { s.nodesChanged(); s.retryWaiting() },
		DeleteFunc: func(any) { s.nodesChanged() },
	})
	return s
}

func (s *Scheduler) podChanged(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if needsScheduling(pod) {
		s.queue.Add(pod.Namespace + "/" + pod.Name)
		return
	}
	if pod.Spec.NodeName != "" && isTerminal(pod) {
		s.retryWaiting() // a finished pod's requests no longer count
	}
}

func needsScheduling(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil && !isTerminal(pod) &&
		(pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == Name)
}

func isTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// Back-off of a pod that fits nowhere, as kube-scheduler's: 1 s after
// the first attempt, doubling to 10 s.
const (
	initialBackoff = time.Second
	maxBackoff     = 10 * time.Second
)

// waitingPod is a pod that fit nowhere: how often, and when it may be
// tried again.
type waitingPod struct {
	attempts int
	retryAt  time.Time
}

// retryWaiting queues the pods that fit nowhere once something changed
// that may make room, each when its back-off ends.
func (s *Scheduler) retryWaiting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for key, w := range s.waiting {
		s.queue.AddAfter(key, w.retryAt.Sub(now))
	}
}

// markWaiting records another attempt of key that fit nowhere.
func (s *Scheduler) markWaiting(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waiting[key]
	w.attempts++
	w.retryAt = time.Now().Add(min(initialBackoff<<(w.attempts-1), maxBackoff))
	s.waiting[key] = w
}

// Run schedules until ctx ends, one pod at a time, so that each decision
// sees the ones before it.
func (s *Scheduler) Run(ctx context.Context) error {
	defer s.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return nil
	}
	go func() { <-ctx.Done(); s.queue.ShutDown() }()
	// Waiting pods are tried again now and then even when nothing seems
	// to change (kube-scheduler: after 5 minutes at most).
	go func() {
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.retryWaiting()
			}
		}
	}()
	for {
		key, quit := s.queue.Get()
		if quit {
			return nil
		}
		err := s.scheduleOne(ctx, key)
		if err != nil {
			s.log.Warn("schedule pod", "pod", key, "err", err)
			s.queue.AddRateLimited(key)
		} else {
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

func (s *Scheduler) scheduleOne(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	pod, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) || err == nil && !needsScheduling(pod) {
		s.mu.Lock()
		delete(s.waiting, key)
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	_, bound := s.placed[pod.UID]
	s.mu.Unlock()
	if bound {
		return nil // assumed on a node; the informer has not caught up
	}
	s.mu.Lock()
	nodes, err := s.nodeList()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	want := podRequests(pod)
	vols, why := s.volumes.preFilter(pod)
	if why != "" {
		s.markWaiting(key)
		return s.unschedulable(ctx, pod, len(nodes), map[string]int{why: 0})
	}
	fit, reasons := s.feasible(pod, want, nodes, vols)
	if len(fit) == 0 {
		s.markWaiting(key)
		return s.unschedulable(ctx, pod, len(nodes), reasons)
	}
	s.mu.Lock()
	delete(s.waiting, key)
	best := s.pickNode(pod, want, fit, nodes)
	s.assume(pod, best.Name)
	s.mu.Unlock()
	// Binding is an API call: many go at once, and the next pod is
	// placed meanwhile against the assumed usage.
	s.binds <- struct{}{}
	go func() {
		defer func() { <-s.binds }()
		s.bind(ctx, pod, best.Name)
	}()
	return nil
}

// feasible filters the nodes, as kube-scheduler does, stopping once it has
// found enough of them on a large cluster (and starting each search where
// the last one stopped, so that all nodes get their turn). With none, it
// returns why each node failed.
func (s *Scheduler) feasible(pod *corev1.Pod, want requests, nodes []*corev1.Node, vols podVolumes) ([]*corev1.Node, map[string]int) {
	enough := feasibleToFind(len(nodes))
	s.mu.Lock()
	defer s.mu.Unlock()
	var fit []*corev1.Node
	reasons := map[string]int{}
	// Inter-pod rules look at every placed pod: only for pods that have
	// them, or when some placed pod has anti-affinity of its own.
	var topo *podTopology
	var eligible []*corev1.Node
	if hasTopologyRules(pod) || s.antiAffinityPods > 0 {
		topo = s.topology(pod)
		for _, n := range nodes {
			if nodeaffinity.Matches(&pod.Spec, n) {
				eligible = append(eligible, n)
			}
		}
	}
	start := s.next
	for i := range nodes {
		n := nodes[(start+i)%len(nodes)]
		alloc, ok := s.alloc[n.Name]
		if !ok || alloc.version != n.ResourceVersion {
			alloc = allocatableOf(n)
			s.alloc[n.Name] = alloc
		}
		why := filter(pod, want, n, alloc, s.usage[n.Name])
		if why == "" && topo != nil {
			why = filterTopology(pod, n, topo, eligible)
		}
		if why == "" {
			why = s.volumes.filter(vols, n)
		}
		if why != "" {
			reasons[why]++
			continue
		}
		fit = append(fit, n)
		if len(fit) >= enough {
			s.next = (start + i + 1) % len(nodes)
			break
		}
	}
	return fit, reasons
}

// feasibleToFind is kube-scheduler's adaptive percentageOfNodesToScore:
// all nodes up to 100, then a share that falls from 50 % towards 5 %.
func feasibleToFind(nodes int) int {
	if nodes <= 100 {
		return nodes
	}
	pct := max(50-nodes/125, 5)
	return max(nodes*pct/100, 100)
}

func (s *Scheduler) bind(ctx context.Context, pod *corev1.Pod, node string) {
	err := s.volumes.prebind(ctx, pod, node)
	if err == nil {
		err = s.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}, metav1.CreateOptions{})
	}
	if err != nil {
		s.mu.Lock()
		s.forget(pod.UID)
		s.mu.Unlock()
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			s.log.Warn("bind pod", "pod", pod.Namespace+"/"+pod.Name, "node", node, "err", err)
			s.queue.AddRateLimited(pod.Namespace + "/" + pod.Name)
		}
		return
	}
	s.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
}

// count keeps the usage cache in step with the pods the informer shows
// bound; assumed pods are replaced by their bound selves.
func (s *Scheduler) count(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if pod.Spec.NodeName == "" {
		return // waiting, or assumed (kept as it is)
	}
	s.forget(pod.UID)
	if !isTerminal(pod) {
		s.assume(pod, pod.Spec.NodeName)
	}
}

func (s *Scheduler) uncount(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		s.mu.Lock()
		s.forget(pod.UID)
		s.mu.Unlock()
	}
}

// assume adds pod's requests to node's usage (s.mu held).
func (s *Scheduler) assume(pod *corev1.Pod, node string) {
	r := podRequests(pod)
	s.placed[pod.UID] = placed{node, r, pod}
	s.countTerms(pod, node, 1)
	u := s.usage[node]
	if u == nil {
		u = &requests{hostPorts: map[string]bool{}}
		s.usage[node] = u
	}
	u.add(r, 1)
}

// countTerms adds (sign 1) or takes away (-1) what a placed pod brings to
// the filters and scores of the pods after it (s.mu held).
func (s *Scheduler) countTerms(pod *corev1.Pod, node string, sign int) {
	if len(requiredAntiAffinity(pod)) > 0 {
		s.antiAffinityPods += sign
	}
	if hasPodAffinityTerms(pod) {
		s.podAffinityPods += sign
	}
	if owner := controllerOf(pod); owner != "" {
		byNode := s.byController[owner]
		if byNode == nil {
			byNode = map[string]int{}
			s.byController[owner] = byNode
		}
		if byNode[node] += sign; byNode[node] <= 0 {
			delete(byNode, node)
		}
		if len(byNode) == 0 {
			delete(s.byController, owner)
		}
	}
}

// forget takes a pod's requests off its node's usage (s.mu held).
func (s *Scheduler) forget(uid types.UID) {
	p, ok := s.placed[uid]
	if !ok {
		return
	}
	delete(s.placed, uid)
	s.countTerms(p.pod, p.node, -1)
	if u := s.usage[p.node]; u != nil {
		u.add(p.req, -1)
	}
}

// unschedulable records why no node fits, in kube-scheduler's words, and
// leaves the pod for the next change of nodes or pods.
func (s *Scheduler) unschedulable(ctx context.Context, pod *corev1.Pod, nodes int, reasons map[string]int) error {
	var parts []string
	for why, n := range reasons {
		if n == 0 { // the pod's own problem, not any node's
			parts = append(parts, why)
			continue
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, why))
	}
	sort.Strings(parts)
	msg := fmt.Sprintf("0/%d nodes are available", nodes)
	if len(parts) > 0 {
		msg += ": " + strings.Join(parts, ", ")
	}
	msg += "."
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && c.Message == msg {
			return nil // said already
		}
	}
	s.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedScheduling", "%s", msg)
	update := pod.DeepCopy()
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: msg, LastTransitionTime: metav1.Now()}
	replaced := false
	for i, c := range update.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			update.Status.Conditions[i], replaced = cond, true
		}
	}
	if !replaced {
		update.Status.Conditions = append(update.Status.Conditions, cond)
	}
	update.Status.Phase = corev1.PodPending
	_, err := s.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, update, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// nodesChanged marks the image index for a rebuild.
func (s *Scheduler) nodesChanged() {
	s.mu.Lock()
	s.images.dirty = true
	s.nodesDirty = true
	s.mu.Unlock()
}

// nodeList is the nodes as the informer has them, in a fixed order; it is
// listed again only after a node changed, not for every pod (s.mu held).
func (s *Scheduler) nodeList() ([]*corev1.Node, error) {
	if s.nodesDirty || s.nodeCache == nil {
		nodes, err := s.nodes.List(labels.Everything())
		if err != nil {
			return nil, err
		}
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
		s.nodeCache, s.nodesDirty = nodes, false
	}
	return s.nodeCache, nil
}
