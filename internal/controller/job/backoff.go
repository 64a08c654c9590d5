package job

import (
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Pod failure back-off: after n failures since the last success the next
// pod waits podFailureBackoff·2^(n-1) from the last failure. Kubernetes'
// documentation says the delay is capped at six minutes; its controller
// caps it at ten (MaxJobPodFailureBackOff), and the controller is what
// this follows.
const (
	podFailureBackoff    = 10 * time.Second
	maxPodFailureBackoff = 10 * time.Minute
)

// backoffRecord is what a Job's back-off is computed from.
type backoffRecord struct {
	key                      string
	failuresAfterLastSuccess int32
	lastFailureTime          *time.Time
}

// backoffStore keeps each Job's record in memory, as kube-controller-manager
// does: a restart forgets it and the next failure starts the delay afresh.
type backoffStore struct {
	mu sync.Mutex
	m  map[string]backoffRecord
}

func newBackoffStore() *backoffStore { return &backoffStore{m: map[string]backoffRecord{}} }

func (s *backoffStore) update(r backoffRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[r.key] = r
}

func (s *backoffStore) remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// next returns key's record with the pods that finished since it was last
// updated: a success clears the failures before it.
func (s *backoffStore) next(key string, succeeded, failed []*corev1.Pod) backoffRecord {
	s.mu.Lock()
	r, ok := s.m[key]
	s.mu.Unlock()
	if !ok {
		r = backoffRecord{key: key}
	}
	sortByFinishTime(succeeded)
	sortByFinishTime(failed)
	switch {
	case len(failed) == 0 && len(succeeded) == 0:
	case len(succeeded) == 0:
		r.failuresAfterLastSuccess += int32(len(failed))
		t := finishTime(failed[len(failed)-1])
		r.lastFailureTime = &t
	default:
		r.failuresAfterLastSuccess, r.lastFailureTime = 0, nil
		lastSuccess := finishTime(succeeded[len(succeeded)-1])
		for i := len(failed) - 1; i >= 0; i-- {
			t := finishTime(failed[i])
			if !t.After(lastSuccess) {
				break
			}
			if r.lastFailureTime == nil {
				r.lastFailureTime = &t
			}
			r.failuresAfterLastSuccess++
		}
	}
	return r
}

// remaining is how long the next pod must still wait at now.
func (r backoffRecord) remaining(now time.Time) time.Duration {
	if r.failuresAfterLastSuccess == 0 || r.lastFailureTime == nil {
		return 0
	}
	d := podFailureBackoff
	for i := int32(1); i < r.failuresAfterLastSuccess; i++ {
		d *= 2
		if d >= maxPodFailureBackoff {
			d = maxPodFailureBackoff
			break
		}
	}
	elapsed := now.Sub(*r.lastFailureTime)
	if d < elapsed {
		return 0
	}
	return d - elapsed
}

func sortByFinishTime(pods []*corev1.Pod) {
	slices.SortStableFunc(pods, func(a, b *corev1.Pod) int { return finishTime(a).Compare(finishTime(b)) })
}

// finishTime estimates when a pod finished: when its last container ended;
// else when it stopped being ready; else when it was deleted, less the
// grace period; else when it was made.
func finishTime(p *corev1.Pod) time.Time {
	var last *time.Time
	complete := len(p.Status.ContainerStatuses) > 0
	for _, cs := range p.Status.ContainerStatuses {
		term := cs.State.Terminated
		if term == nil || term.FinishedAt.IsZero() {
			complete = false
			break
		}
		if last == nil || last.Before(term.FinishedAt.Time) {
			last = &term.FinishedAt.Time
		}
	}
	if complete && last != nil {
		return *last
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	if p.DeletionTimestamp != nil {
		grace := time.Duration(0)
		if p.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*p.DeletionGracePeriodSeconds) * time.Second
		}
		return p.DeletionTimestamp.Add(-grace)
	}
	return p.CreationTimestamp.Time
}
