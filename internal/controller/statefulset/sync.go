package statefulset

// One sync of a StatefulSet, in upstream's order: count the pods, make
// the missing ordinals, delete the surplus, then replace pods of the old
// revision. OrderedReady stops at the first step that must wait for a
// pod to become Running and Ready or to go; Parallel does not wait.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-sh/skiff/internal/controller/slowstart"
)

// staleClaimRetry is how soon a pod waiting for an earlier pod's claim
// to be deleted is looked at again.
const staleClaimRetry = 2 * time.Second

// syncSet acts on the set and writes its status, even when acting failed.
func (c *Controller) syncSet(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, revs []*appsv1.ControllerRevision) error {
	cur, upd, collisions, err := c.revisions(ctx, set, revs)
	if err != nil {
		return fmt.Errorf("construct history: %w", err)
	}
	status, err := c.update(ctx, set, cur, upd, pods)
	if status != nil {
		status.CollisionCount = &collisions
		err = errors.Join(err, c.updateStatus(ctx, set, status))
	}
	if err != nil {
		return err
	}
	return c.truncateHistory(ctx, set, pods, revs, cur, upd)
}

// syncStep is the state of one sync: the counts it keeps up to date as
// it creates and deletes.
type syncStep struct {
	c         *Controller
	set       *appsv1.StatefulSet
	cur, upd  *appsv1.ControllerRevision
	curTmpl   *corev1.PodTemplateSpec
	updTmpl   *corev1.PodTemplateSpec
	monotonic bool

	mu     sync.Mutex // guards status while Parallel pods are made at once
	status *appsv1.StatefulSetStatus
}

// update makes, deletes and replaces pods (updateStatefulSet) and returns
// the status that results.
func (c *Controller) update(ctx context.Context, set *appsv1.StatefulSet, cur, upd *appsv1.ControllerRevision, pods []*corev1.Pod) (*appsv1.StatefulSetStatus, error) {
	curTmpl, err := templateOf(cur)
	if err != nil {
		return nil, err
	}
	updTmpl, err := templateOf(upd)
	if err != nil {
		return nil, err
	}
	now := c.now()
	status := &appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    cur.Name,
		UpdateRevision:     upd.Name,
	}
	s := &syncStep{c: c, set: set, cur: cur, upd: upd, curTmpl: curTmpl, updTmpl: updTmpl, status: status,
		monotonic: set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement}

	start, n := startOrdinal(set), replicaCount(set)
	replicas := make([]*corev1.Pod, n)
	var condemned []*corev1.Pod
	for _, p := range pods {
		if created(p) {
			status.Replicas++
		}
		if runningAndReady(p) {
			status.ReadyReplicas++
			if available(p, set.Spec.MinReadySeconds, now) {
				status.AvailableReplicas++
			}
		}
		if created(p) && !terminating(p) {
			s.count(p, 1)
		}
		switch o := ordinalOf(p); {
		case inRange(set, p):
			replicas[o-start] = p
		case o >= 0:
			condemned = append(condemned, p)
		}
	}
	for i := range replicas {
		if replicas[i] == nil {
			replicas[i] = s.newPod(start + i)
		}
	}
	// Highest ordinal first: the order of scale down.
	slices.SortFunc(condemned, func(a, b *corev1.Pod) int { return ordinalOf(b) - ordinalOf(a) })

	healthy := func(p *corev1.Pod) bool {
		return available(p, set.Spec.MinReadySeconds, now) && !terminating(p)
	}
	var firstUnhealthy *corev1.Pod
	for _, p := range replicas {
		if !healthy(p) && firstUnhealthy == nil {
			firstUnhealthy = p
		}
	}
	for i := len(condemned) - 1; i >= 0; i-- {
		if !healthy(condemned[i]) && firstUnhealthy == nil {
			firstUnhealthy = condemned[i]
		}
	}

	if set.DeletionTimestamp != nil {
		return status, nil // the garbage collector takes the pods
	}

	if s.monotonic {
		for i := range replicas {
			if wait, err := s.processReplica(ctx, replicas, i, healthy); wait || err != nil {
				return status, err
			}
		}
	} else {
		// Parallel: all at once, in slow-start batches, as upstream.
		_, err := slowstart.Run(len(replicas), 1, func(i int) error {
			_, err := s.processReplica(ctx, replicas, i, healthy)
			return err
		})
		if err != nil {
			return status, err
		}
	}
	for _, p := range slices.Concat(replicas, condemned) {
		if p.UID != "" {
			if err := c.fixClaimOwners(ctx, set, p); err != nil {
				return status, err
			}
		}
	}

	for _, p := range condemned {
		if terminating(p) {
			if s.monotonic {
				return status, nil // waiting for it to go
			}
			continue
		}
		if !available(p, set.Spec.MinReadySeconds, now) && s.monotonic && p != firstUnhealthy {
			return status, nil // waiting for it to be Running and available before scaling down
		}
		if err := s.deletePod(ctx, p); err != nil {
			return status, err
		}
		if s.monotonic {
			return status, nil
		}
	}

	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return status, nil
	}
	return status, s.rollingUpdate(ctx, replicas, healthy)
}

// count adds d to the current and updated counts of the pod's revision.
func (s *syncStep) count(p *corev1.Pod, d int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if revisionOf(p) == s.cur.Name {
		s.status.CurrentReplicas += d
	}
	if revisionOf(p) == s.upd.Name {
		s.status.UpdatedReplicas += d
	}
}

// newPod is the pod of ordinal: of the current revision below the
// partition, of the update revision otherwise. The partition counts from
// the start ordinal, as upstream's: with ordinals.start 5 and partition 1,
// ordinal 5 stays.
func (s *syncStep) newPod(ordinal int) *corev1.Pod {
	if s.set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType {
		ru, start := s.set.Spec.UpdateStrategy.RollingUpdate, startOrdinal(s.set)
		if ru == nil && ordinal < start+int(s.set.Status.CurrentReplicas) ||
			ru != nil && ru.Partition != nil && ordinal < start+int(*ru.Partition) {
			return newPod(s.set, s.curTmpl, s.cur.Name, ordinal)
		}
	}
	return newPod(s.set, s.updTmpl, s.upd.Name, ordinal)
}

// processReplica moves the pod of replicas[i] one step: replace it if it
// finished, create it if missing, and keep its identity and claims. It
// says whether an ordered set must wait.
func (s *syncStep) processReplica(ctx context.Context, replicas []*corev1.Pod, i int, healthy func(*corev1.Pod) bool) (bool, error) {
	p := replicas[i]
	if finished(p) {
		// A failed or succeeded pod is deleted (SuccessfulDelete is the
		// only event, as upstream since 1.30); the next sync, once it is
		// gone, makes it again with the same name and claims.
		if !terminating(p) {
			if err := s.deletePod(ctx, p); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	if !created(p) {
		stale, err := s.c.claimIsStale(s.set, p)
		if err != nil || stale {
			// A claim of an earlier pod must go first. Claims are not
			// watched, so look again shortly.
			s.c.queue.AddAfter(setKey(s.set), staleClaimRetry)
			return true, err
		}
		if err := s.createPod(ctx, p); err != nil {
			return true, err
		}
		return s.monotonic, nil
	}
	if p.Status.Phase == corev1.PodPending {
		if err := s.c.createClaims(ctx, s.set, p); err != nil {
			return true, err
		}
	}
	if terminating(p) && s.monotonic {
		return true, nil
	}
	if !healthy(p) && s.monotonic {
		return true, nil
	}
	if identityMatches(s.set, p) && storageMatches(s.set, p) {
		return false, nil
	}
	fixed := p.DeepCopy()
	setIdentity(s.set, fixed, ordinalOf(fixed))
	if !storageMatches(s.set, fixed) {
		setStorage(s.set, fixed)
		if err := s.c.createClaims(ctx, s.set, fixed); err != nil {
			return true, err
		}
	}
	if _, err := s.c.client.CoreV1().Pods(fixed.Namespace).Update(ctx, fixed, metav1.UpdateOptions{}); err != nil {
		s.event("update", p, err)
		return true, err
	}
	return false, nil
}

// createPod makes the pod's claims, then the pod.
func (s *syncStep) createPod(ctx context.Context, p *corev1.Pod) error {
	if err := s.c.createClaims(ctx, s.set, p); err != nil {
		s.event("create", p, err)
		return err
	}
	created, err := s.c.client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return err // the cache is behind: no event
	}
	s.event("create", p, err)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.status.Replicas++
	s.mu.Unlock()
	s.count(p, 1)
	return s.c.fixClaimOwners(ctx, s.set, created)
}

// deletePod deletes one of the set's pods and takes it out of the counts.
func (s *syncStep) deletePod(ctx context.Context, p *corev1.Pod) error {
	err := s.c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	s.event("delete", p, err)
	if err != nil {
		return err
	}
	s.count(p, -1)
	return nil
}

// event records a pod create, update or delete as upstream's recordPodEvent.
func (s *syncStep) event(verb string, p *corev1.Pod, err error) {
	title := strings.ToUpper(verb[:1]) + verb[1:]
	if err == nil {
		s.c.recorder.Eventf(s.set, corev1.EventTypeNormal, "Successful"+title,
			"%s Pod %s in StatefulSet %s successful", verb, p.Name, s.set.Name)
		return
	}
	s.c.recorder.Eventf(s.set, corev1.EventTypeWarning, "Failed"+title,
		"%s Pod %s in StatefulSet %s failed error: %s", verb, p.Name, s.set.Name, err)
}

// rollingUpdate deletes pods of an old revision from the highest ordinal
// down to the partition, so that they are made again from the update
// revision: one at a time, each after the one before is healthy, or up
// to maxUnavailable at a time when that is set.
func (s *syncStep) rollingUpdate(ctx context.Context, replicas []*corev1.Pod, healthy func(*corev1.Pod) bool) error {
	ru := s.set.Spec.UpdateStrategy.RollingUpdate
	updateMin := 0 // an index into replicas, as the partition is
	if ru != nil && ru.Partition != nil {
		updateMin = int(*ru.Partition)
	}
	old := func(p *corev1.Pod) bool { return revisionOf(p) != s.upd.Name && !terminating(p) }
	if ru == nil || ru.MaxUnavailable == nil {
		for i := len(replicas) - 1; i >= updateMin; i-- {
			if old(replicas[i]) {
				return s.deletePod(ctx, replicas[i])
			}
			if !healthy(replicas[i]) {
				return nil // wait for it before the next
			}
		}
		return nil
	}
	// A percentage rounds down, to at least one, as upstream's.
	maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(ru.MaxUnavailable, intstr.FromInt32(1)), len(replicas), false)
	if err != nil {
		return err
	}
	maxUnavailable = max(maxUnavailable, 1)
	unavailable := 0
	for _, p := range replicas {
		if !healthy(p) {
			unavailable++
		}
	}
	for i := len(replicas) - 1; i >= updateMin && unavailable < maxUnavailable; i-- {
		if old(replicas[i]) {
			if err := s.deletePod(ctx, replicas[i]); err != nil {
				return err
			}
			unavailable++
		}
	}
	return nil
}
