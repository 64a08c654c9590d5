// Package replicaset is kube-controller-manager's replicaset controller: it
// keeps spec.replicas pods matching each ReplicaSet's selector running,
// making them from spec.template and deleting the surplus, and reports
// what it sees in the ReplicaSet's status.
//
// The flow is the sample-controller loop. ReplicaSet and Pod events only
// queue the key (namespace/name) of the ReplicaSet concerned: a pod's
// controller, or for an orphan every ReplicaSet whose selector matches
// it. A worker syncs one key at a time from the listers: it claims pods
// (adopting matching orphans, releasing its pods that stopped matching,
// as the ControllerRefManager does), creates or deletes pods to reach
// spec.replicas, and writes status through the status subresource. After
// creating or deleting pods it waits for the pod informer to report
// them (expectations) before counting again, so that a slow watch never
// makes it act twice. Pods go on to the scheduler and the node agent;
// the garbage collector deletes a deleted ReplicaSet's pods.
package replicaset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller/podevents"
	"github.com/skiff-sh/skiff/internal/controller/slowstart"
	"github.com/skiff-sh/skiff/internal/controller/workers"
)

const (
	// BurstReplicas is the most pods one sync creates or deletes.
	BurstReplicas = 500
	// slowStartInitialBatchSize is the first batch of creates; each batch
	// that fully succeeds doubles the next.
	slowStartInitialBatchSize = 1
	// statusUpdateRetries is how many times a conflicting status write is
	// tried again on a fresh read.
	statusUpdateRetries = 1
	// workers is kube-controller-manager's --concurrent-replicaset-syncs.
	workerCount = 5
)

// Event reasons, as Kubernetes records them on the ReplicaSet.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonFailedCreate     = "FailedCreate"
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedDelete     = "FailedDelete"
)

var controllerKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// Controller is the replicaset controller.
type Controller struct {
	client       kubernetes.Interface
	rsLister     appslisters.ReplicaSetLister
	podLister    corelisters.PodLister
	synced       []cache.InformerSynced
	queue        workqueue.TypedRateLimitingInterface[string]
	recorder     record.EventRecorder
	expectations *expectations
	burst        int
	now          func() time.Time
	log          *slog.Logger
}

// New makes the controller on factory's informers; start the factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rss, pods := factory.Apps().V1().ReplicaSets(), factory.Core().V1().Pods()
	c := &Controller{
		client: client, rsLister: rss.Lister(), podLister: pods.Lister(), recorder: recorder, log: log,
		synced:       []cache.InformerSynced{rss.Informer().HasSynced, pods.Informer().HasSynced},
		expectations: newExpectations(time.Now), burst: BurstReplicas, now: time.Now,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "replicaset"}),
	}
	rss.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addRS,
		UpdateFunc: c.updateRS,
		DeleteFunc: c.deleteRS,
	})
	pods.Informer().AddEventHandler(c.podEvents().Handler())
	return c
}

// Run syncs ReplicaSets until ctx ends, with several workers; the queue
// never hands one key to two of them at once.
func (c *Controller) Run(ctx context.Context) error {
	workers.Run(ctx, c.queue, c.synced, workerCount, c.sync, c.log, "sync replicaset")
	return nil
}

func keyOf(namespace, name string) string { return namespace + "/" + name }

func rsKey(rs *appsv1.ReplicaSet) string { return keyOf(rs.Namespace, rs.Name) }

func podKey(p *corev1.Pod) string { return keyOf(p.Namespace, p.Name) }

// Event handlers: they only map an object to ReplicaSet keys.

func (c *Controller) addRS(obj any) {
	if rs, ok := obj.(*appsv1.ReplicaSet); ok {
		c.queue.Add(rsKey(rs))
	}
}

// updateRS syncs on every change, not only of the spec: a status write of
// ours coming back costs one cheap sync, and it lets a ReplicaSet whose
// creates failed try again.
func (c *Controller) updateRS(old, cur any) {
	oldRS, ok1 := old.(*appsv1.ReplicaSet)
	curRS, ok2 := cur.(*appsv1.ReplicaSet)
	if !ok1 || !ok2 {
		return
	}
	if oldRS.UID != curRS.UID {
		// Deleted and made again under the same name between two events.
		c.deleteRS(cache.DeletedFinalStateUnknown{Key: rsKey(oldRS), Obj: oldRS})
	}
	c.queue.Add(rsKey(curRS))
}

func (c *Controller) deleteRS(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	c.expectations.forget(rsKey(rs))
	c.queue.Add(rsKey(rs))
}

// matching returns every ReplicaSet whose selector matches the orphan,
// to see if one adopts it.
func (c *Controller) matching(pod *corev1.Pod) ([]*appsv1.ReplicaSet, error) {
	rss, err := c.rsLister.GetPodReplicaSets(pod)
	if len(rss) > 1 {
		c.log.Warn("more than one ReplicaSet selects the pod's labels: a user error", "pod", podKey(pod), "labels", pod.Labels)
	}
	return rss, err
}

// podEvents routes pod events to the owning or matching ReplicaSets and
// tells the expectations of pods seen made or going.
func (c *Controller) podEvents() *podevents.Router[*appsv1.ReplicaSet] {
	return &podevents.Router[*appsv1.ReplicaSet]{
		Queue:           c.queue,
		Kind:            controllerKind.Kind,
		Get:             func(ns, name string) (*appsv1.ReplicaSet, error) { return c.rsLister.ReplicaSets(ns).Get(name) },
		Matching:        c.matching,
		MinReadySeconds: func(rs *appsv1.ReplicaSet) int32 { return rs.Spec.MinReadySeconds },
		Created:         c.expectations.creationObserved,
		Deleted:         func(key string, pod *corev1.Pod) { c.expectations.deletionObserved(key, podKey(pod)) },
	}
}

// sync brings one ReplicaSet's pods and status in line with its spec.
func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		c.log.Error("bad queue key", "key", key, "err", err)
		return nil
	}
	rs, err := c.rsLister.ReplicaSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.expectations.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	// Read before listing pods: an observation that lands in between
	// then errs on the side of waiting.
	needsSync := c.expectations.satisfied(key)
	selector, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		// The API validates selectors: this one can't be fixed by retrying.
		c.log.Error("bad selector", "replicaset", key, "err", err)
		return nil
	}
	// All pods, not just matching ones: a pod of ours whose labels
	// changed is released from here.
	all, err := c.podLister.Pods(namespace).List(labels.Everything())
	if err != nil {
		return err
	}
	var active []*corev1.Pod
	for _, p := range all {
		if isPodActive(p) {
			active = append(active, p)
		}
	}
	m := &claimer{c: c, rs: rs, selector: selector}
	pods, err := m.claim(ctx, active)
	if err != nil {
		return err
	}

	// Finished pods no longer count, so they are replaced; they stay, as
	// in Kubernetes, until the pod garbage collector's threshold.
	var manageErr error
	if rs.DeletionTimestamp == nil && needsSync {
		manageErr = c.manageReplicas(ctx, pods, rs)
	}

	status := calculateStatus(rs, pods, terminatingPods(rs, selector, all), manageErr, c.now())
	updated, err := c.updateStatus(ctx, rs, status)
	if err != nil {
		return errors.Join(manageErr, err)
	}
	// Check availability again once minReadySeconds passed, should no
	// pod event come to trigger it.
	if manageErr == nil && updated.Spec.MinReadySeconds > 0 &&
		updated.Status.ReadyReplicas == replicas(updated) && updated.Status.AvailableReplicas != replicas(updated) {
		c.queue.AddAfter(key, time.Duration(updated.Spec.MinReadySeconds)*time.Second)
	}
	return manageErr
}

func replicas(rs *appsv1.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}

// manageReplicas creates or deletes pods so that there are spec.replicas
// of them, at most burst at a time.
func (c *Controller) manageReplicas(ctx context.Context, pods []*corev1.Pod, rs *appsv1.ReplicaSet) error {
	key := rsKey(rs)
	diff := len(pods) - int(replicas(rs))
	switch {
	case diff < 0:
		diff = min(-diff, c.burst)
		c.expectations.expectCreations(key, diff)
		c.queue.AddAfter(key, ExpectationsTimeout) // wake up should the informer never report them
		c.log.Debug("too few replicas", "replicaset", key, "need", replicas(rs), "creating", diff)
		tried, err := slowstart.Run(diff, slowStartInitialBatchSize, func(int) error {
			err := c.createPod(ctx, rs)
			if err == nil {
				return nil
			}
			c.expectations.lowerCreations(key, 1) // never to be seen
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil // every create would fail: nothing to do
			}
			return err
		})
		if untried := diff - tried; untried > 0 {
			c.expectations.lowerCreations(key, untried)
		}
		return err
	case diff > 0:
		diff = min(diff, c.burst)
		victims := podsToDelete(pods, c.relatedPods(rs), diff, c.now())
		keys := make([]string, len(victims))
		for i, p := range victims {
			keys[i] = podKey(p)
		}
		c.expectations.expectDeletions(key, keys)
		c.queue.AddAfter(key, ExpectationsTimeout)
		c.log.Debug("too many replicas", "replicaset", key, "need", replicas(rs), "deleting", diff)
		errs := make([]error, len(victims))
		var wg sync.WaitGroup
		for i, p := range victims {
			wg.Go(func() {
				if err := c.deletePodOf(ctx, rs, p); err != nil {
					// This deletion will never be observed.
					c.expectations.deletionObserved(key, podKey(p))
					if !apierrors.IsNotFound(err) {
						errs[i] = err
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err // the others are likely the same, and were recorded
			}
		}
	}
	return nil
}

// relatedPods are the pods of every ReplicaSet with the same controller
// as rs (the ReplicaSets of one Deployment), each once; none when rs has
// no controller.
func (c *Controller) relatedPods(rs *appsv1.ReplicaSet) []*corev1.Pod {
	ref := metav1.GetControllerOfNoCopy(rs)
	if ref == nil {
		return nil
	}
	siblings, err := c.rsLister.ReplicaSets(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var related []*corev1.Pod
	for _, s := range siblings {
		if r := metav1.GetControllerOfNoCopy(s); r == nil || r.UID != ref.UID {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
		if err != nil {
			continue
		}
		pods, err := c.podLister.Pods(s.Namespace).List(sel)
		if err != nil {
			continue
		}
		for _, p := range pods {
			if !seen[string(p.UID)] {
				seen[string(p.UID)] = true
				related = append(related, p)
			}
		}
	}
	return related
}

// createPod makes one pod from the template, as kube's RealPodControl:
// the template's labels, annotations, finalizers and spec, the
// ReplicaSet as controller, and a generated name.
func (c *Controller) createPod(ctx context.Context, rs *appsv1.ReplicaSet) error {
	pod, err := podFromTemplate(rs)
	if err != nil {
		return err
	}
	created, err := c.client.CoreV1().Pods(rs.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			c.recorder.Eventf(rs, corev1.EventTypeWarning, ReasonFailedCreate, "Error creating: %v", err)
		}
		return err
	}
	c.log.Debug("created pod", "replicaset", rsKey(rs), "pod", created.Name)
	c.recorder.Eventf(rs, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Created pod: %v", created.Name)
	return nil
}

func podFromTemplate(rs *appsv1.ReplicaSet) (*corev1.Pod, error) {
	t := &rs.Spec.Template
	if len(t.Labels) == 0 {
		return nil, errors.New("unable to create pods, no labels")
	}
	// The dash makes names prettier, unless it makes the prefix invalid.
	prefix := rs.Name + "-"
	if len(apivalidation.NameIsDNSSubdomain(prefix, true)) != 0 {
		prefix = rs.Name
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    prefix,
			Labels:          copyMap(t.Labels),
			Annotations:     copyMap(t.Annotations),
			Finalizers:      append([]string(nil), t.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*controllerRef(rs)},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	return pod, nil
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// deletePodOf deletes one of the ReplicaSet's pods and says so in an event.
func (c *Controller) deletePodOf(ctx context.Context, rs *appsv1.ReplicaSet, pod *corev1.Pod) error {
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return err // gone already: no event
	}
	if err != nil {
		c.recorder.Eventf(rs, corev1.EventTypeWarning, ReasonFailedDelete, "Error deleting: %v", err)
		return fmt.Errorf("unable to delete pods: %w", err)
	}
	c.recorder.Eventf(rs, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted pod: %v", pod.Name)
	return nil
}
