package replicaset

import (
	"sync"
	"time"
)

// ExpectationsTimeout is how long a ReplicaSet waits for the informer to
// report the pods a sync created or deleted before it acts again anyway:
// kube-controller-manager's ExpectationsTimeout, so that a lost watch
// event never stalls a ReplicaSet for good.
const ExpectationsTimeout = 5 * time.Minute

// expectations is kube's UIDTrackingControllerExpectations: per
// ReplicaSet key, the creates and deletes a sync made that the pod
// informer has not reported yet. Until they are all seen (or time out)
// the ReplicaSet's pods are not counted again, because the lister would
// still show the world before those writes and the next sync would create
// or delete the same pods a second time.
type expectations struct {
	mu    sync.Mutex
	now   func() time.Time
	byKey map[string]*expected
}

// expected is what one ReplicaSet waits for.
type expected struct {
	add, del int
	// deleting holds the keys (namespace/name) of the pods being deleted,
	// so that a pod seen first with a deletionTimestamp and then gone
	// counts once.
	deleting map[string]bool
	at       time.Time
}

func newExpectations(now func() time.Time) *expectations {
	return &expectations{now: now, byKey: map[string]*expected{}}
}

// satisfied says whether the ReplicaSet may count its pods and act: it
// set no expectations, they were all observed, or they expired.
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.byKey[key]
	if !ok {
		return true
	}
	return x.add <= 0 && x.del <= 0 || e.now().Sub(x.at) > ExpectationsTimeout
}

// expectCreations forgets what was expected before and waits for n new pods.
func (e *expectations) expectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byKey[key] = &expected{add: n, at: e.now()}
}

// expectDeletions forgets what was expected before and waits for the
// pods with these keys to go.
func (e *expectations) expectDeletions(key string, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expected{del: len(podKeys), deleting: make(map[string]bool, len(podKeys)), at: e.now()}
	for _, k := range podKeys {
		x.deleting[k] = true
	}
	e.byKey[key] = x
}

// creationObserved counts one created pod (n of them for lowerCreations,
// used for creates that were never attempted or failed).
func (e *expectations) creationObserved(key string) { e.lowerCreations(key, 1) }

func (e *expectations) lowerCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.byKey[key]; ok {
		x.add -= n
	}
}

// deletionObserved counts the pod podKey as gone, once, if its deletion
// was expected.
func (e *expectations) deletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.byKey[key]; ok && x.deleting[podKey] {
		delete(x.deleting, podKey)
		x.del--
	}
}

// forget drops the ReplicaSet's expectations, so that one made again
// under the same name starts clean.
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byKey, key)
}
