package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/internal/volumematch"
)

// kube-scheduler's VolumeBinding messages.
const (
	reasonUnboundImmediate = "pod has unbound immediate PersistentVolumeClaims"
	reasonNodeConflict     = "node(s) had volume node affinity conflict"
	reasonBindConflict     = "node(s) didn't find available persistent volumes to bind"
	reasonPVNotExist       = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
)

// annSelectedNode tells a provisioner where the first consumer of a
// WaitForFirstConsumer claim was placed.
const annSelectedNode = "volume.kubernetes.io/selected-node"

// volumeBindTimeout is how long a pod waits, before it is bound, for its
// claims to be bound (kube-scheduler's bindTimeoutSeconds is 600).
const volumeBindTimeout = 2 * time.Minute

// volumeBinding is kube-scheduler's VolumeBinding plugin, short of binding
// static volumes itself: a pod's bound claims restrict it to the nodes
// their volumes' node affinity admits; an unbound claim of an Immediate
// class keeps it from being scheduled; an unbound claim of a
// WaitForFirstConsumer class needs a node with a matching volume or a
// provisioner, and once the pod is placed it gets the selected-node
// annotation, and the pod is bound only after the claim is.
type volumeBinding struct {
	client  kubernetes.Interface
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
	synced  []cache.InformerSynced

	mu            sync.Mutex
	claimsChanged chan struct{} // closed, and replaced, at each claim event
}

// podVolumes are a pod's claims as the filter needs them.
type podVolumes struct {
	bound   []*corev1.PersistentVolume // nil entries: bound to a missing volume
	delayed []*corev1.PersistentVolumeClaim
	classes map[string]*storagev1.StorageClass
}

// newVolumeBinding watches claims and volumes; changed calls retry the
// pods that wait for them.
func newVolumeBinding(client kubernetes.Interface, factory informers.SharedInformerFactory, changed func()) *volumeBinding {
	pvcs, pvs, scs := factory.Core().V1().PersistentVolumeClaims(), factory.Core().V1().PersistentVolumes(), factory.Storage().V1().StorageClasses()
	v := &volumeBinding{client: client, claims: pvcs.Lister(), volumes: pvs.Lister(), classes: scs.Lister(),
		synced:        []cache.InformerSynced{pvcs.Informer().HasSynced, pvs.Informer().HasSynced, scs.Informer().HasSynced},
		claimsChanged: make(chan struct{})}
	pvs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(any) { changed() }, UpdateFunc: func(_, _ any) { changed() }})
	claimEvent := func() { v.wakeClaimWaiters(); changed() }
	pvcs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { claimEvent() }, UpdateFunc: func(_, _ any) { claimEvent() }, DeleteFunc: func(any) { claimEvent() }})
	return v
}

// claimEvents is closed at the next claim event.
func (v *volumeBinding) claimEvents() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.claimsChanged
}

func (v *volumeBinding) wakeClaimWaiters() {
	v.mu.Lock()
	defer v.mu.Unlock()
	close(v.claimsChanged)
	v.claimsChanged = make(chan struct{})
}

// preFilter reads the pod's claims, or returns why no node can take it.
func (v *volumeBinding) preFilter(pod *corev1.Pod) (podVolumes, string) {
	var pv podVolumes
	for _, vol := range pod.Spec.Volumes {
		if vol.PersistentVolumeClaim == nil {
			continue
		}
		name := vol.PersistentVolumeClaim.ClaimName
		pvc, err := v.claims.PersistentVolumeClaims(pod.Namespace).Get(name)
		if err != nil {
			return pv, fmt.Sprintf("persistentvolumeclaim %q not found", name)
		}
		if pvc.DeletionTimestamp != nil {
			return pv, fmt.Sprintf("persistentvolumeclaim %q is being deleted", name)
		}
		if pvc.Spec.VolumeName != "" {
			vol, _ := v.volumes.Get(pvc.Spec.VolumeName)
			pv.bound = append(pv.bound, vol)
			continue
		}
		class, _ := v.classes.Get(volumematch.ClassOf(pvc))
		if class == nil || class.VolumeBindingMode == nil || *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			return pv, reasonUnboundImmediate
		}
		if pv.classes == nil {
			pv.classes = map[string]*storagev1.StorageClass{}
		}
		pv.classes[class.Name] = class
		pv.delayed = append(pv.delayed, pvc)
	}
	return pv, ""
}

// filter returns why node cannot serve the pod's claims, or "".
func (v *volumeBinding) filter(pv podVolumes, node *corev1.Node) string {
	for _, vol := range pv.bound {
		if vol == nil {
			return reasonPVNotExist
		}
		if !volumematch.AdmitsNode(vol, node) {
			return reasonNodeConflict
		}
	}
	if len(pv.delayed) == 0 {
		return ""
	}
	all, err := v.volumes.List(labels.Everything())
	if err != nil {
		return reasonBindConflict
	}
	for _, pvc := range pv.delayed {
		if volumematch.Best(pvc, all, node, true) != nil {
			continue
		}
		// A provisioner can make one (the no-provisioner class of local
		// volumes cannot), on a node of the class's allowed topologies.
		class := pv.classes[volumematch.ClassOf(pvc)]
		if p := class.Provisioner; p == "" || p == "kubernetes.io/no-provisioner" {
			return reasonBindConflict
		}
		if !allowedTopology(class.AllowedTopologies, node) {
			return reasonBindConflict
		}
	}
	return ""
}

// prebind names node on the pod's unbound WaitForFirstConsumer claims and
// waits until they are bound, looking again at each claim event (where
// kube-scheduler polls every second).
func (v *volumeBinding) prebind(ctx context.Context, pod *corev1.Pod, node string) error {
	pv, why := v.preFilter(pod)
	if why != "" {
		return fmt.Errorf("binding volumes: %s", why)
	}
	if len(pv.delayed) == 0 {
		return nil
	}
	for _, pvc := range pv.delayed {
		if pvc.Annotations[annSelectedNode] == node {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
			"annotations":     map[string]string{annSelectedNode: node},
			"resourceVersion": pvc.ResourceVersion,
		}})
		_, err := v.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Patch(ctx, pvc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil {
			// %v, not %w: a conflict here must be retried, not taken for a
			// binding that lost to another scheduler.
			return fmt.Errorf("binding volumes: claim %s: %v", pvc.Name, err)
		}
	}
	deadline := time.NewTimer(volumeBindTimeout)
	defer deadline.Stop()
	for {
		// Taken before the look, so that no event between the two is missed.
		changed := v.claimEvents()
		done := true
		for _, pvc := range pv.delayed {
			got, err := v.claims.PersistentVolumeClaims(pvc.Namespace).Get(pvc.Name)
			if apierrors.IsNotFound(err) || err == nil && got.UID != pvc.UID {
				return fmt.Errorf("binding volumes: claim %s was deleted", pvc.Name)
			}
			done = done && err == nil && got.Spec.VolumeName != "" && got.Status.Phase == corev1.ClaimBound
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("binding volumes: timed out waiting for the condition")
		case <-changed:
		}
	}
}

// allowedTopology reports whether node's labels match one of a class's
// allowed topologies (none: every node), as MatchTopologySelectorTerms.
func allowedTopology(terms []corev1.TopologySelectorTerm, node *corev1.Node) bool {
	if len(terms) == 0 {
		return true
	}
	for _, t := range terms {
		if topologyTermMatches(t, node.Labels) {
			return true
		}
	}
	return false
}

// topologyTermMatches: every expression holds; an empty term selects
// nothing.
func topologyTermMatches(t corev1.TopologySelectorTerm, nodeLabels map[string]string) bool {
	if len(t.MatchLabelExpressions) == 0 {
		return false
	}
	for _, e := range t.MatchLabelExpressions {
		v, ok := nodeLabels[e.Key]
		if !ok || !slices.Contains(e.Values, v) {
			return false
		}
	}
	return true
}
