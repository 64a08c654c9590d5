package daemonset

import (
	"sync"
	"time"
)

// ExpectationsTimeout is how long a DaemonSet waits for the informer to
// report the pods it created or deleted before acting again anyway, as
// kube-controller-manager's.
const ExpectationsTimeout = 5 * time.Minute

// expectations are, per DaemonSet key, the creates and deletes a sync
// made that the pod informer has not reported yet (kube's
// UIDTrackingControllerExpectations). Until they are seen the pods are
// counted but not acted on, so that a slow watch never makes the
// controller create a node's pod twice.
type expectations struct {
	mu    sync.Mutex
	now   func() time.Time
	byKey map[string]*expected
}

type expected struct {
	add      int
	deleting map[string]bool // pod keys
	at       time.Time
}

func newExpectations(now func() time.Time) *expectations {
	return &expectations{now: now, byKey: map[string]*expected{}}
}

// satisfied says whether the DaemonSet may act: nothing is pending, or
// what is has expired.
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.byKey[key]
	return !ok || x.add <= 0 && len(x.deleting) == 0 || e.now().Sub(x.at) > ExpectationsTimeout
}

// expect replaces what key waits for: adds new pods, and the pods with
// the keys deleting to go.
func (e *expectations) expect(key string, adds int, deleting []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expected{add: adds, deleting: map[string]bool{}, at: e.now()}
	for _, k := range deleting {
		x.deleting[k] = true
	}
	e.byKey[key] = x
}

// creationObserved counts one expected pod seen (or one create that
// failed and will never be).
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.byKey[key]; ok {
		x.add--
	}
}

// deletionObserved counts the pod with podKey gone (or being deleted).
func (e *expectations) deletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.byKey[key]; ok {
		delete(x.deleting, podKey)
	}
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byKey, key)
}
