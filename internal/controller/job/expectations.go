package job

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

// expectationsTimeout bounds how long a sync waits for the informer to show
// the creations and deletions it asked for: a watch event that never comes
// (a create the API took but never showed, say) must not stall a Job.
const expectationsTimeout = 5 * time.Minute

// expectations counts, per Job, the pod creations and deletions a sync
// asked for that the pod informer has not shown yet. Until they are seen,
// the lister would show too few or too many pods and a sync would create or
// delete again; so a Job whose expectations are not met only updates its
// status. This is kube-controller-manager's ControllerExpectations.
type expectations struct {
	mu sync.Mutex
	m  map[string]*expectation
}

type expectation struct {
	add, del int
	at       time.Time
}

func newExpectations() *expectations { return &expectations{m: map[string]*expectation{}} }

// satisfied reports whether key's Job can be managed: nothing is pending,
// or what is pending is too old to wait for.
func (e *expectations) satisfied(key string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.m[key]
	return x == nil || x.add <= 0 && x.del <= 0 || now.Sub(x.at) > expectationsTimeout
}

// expect replaces key's expectations with add creations and del deletions.
func (e *expectations) expect(key string, add, del int, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{add: add, del: del, at: now}
}

// observed records add creations and del deletions seen (or given up on).
func (e *expectations) observed(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.m[key]; x != nil {
		x.add -= add
		x.del -= del
	}
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

// finalizerExpectations remembers, per Job, the pods whose tracking
// finalizer a sync removed and the informer still shows. Those pods are
// counted in the Job's status already; counting them again from the stale
// cache would count them twice.
type finalizerExpectations struct {
	mu sync.Mutex
	m  map[string]sets.Set[types.UID]
}

func newFinalizerExpectations() *finalizerExpectations {
	return &finalizerExpectations{m: map[string]sets.Set[types.UID]{}}
}

func (f *finalizerExpectations) expectRemoved(key string, uids ...types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m[key] == nil {
		f.m[key] = sets.New[types.UID]()
	}
	f.m[key].Insert(uids...)
}

func (f *finalizerExpectations) observed(key string, uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.m[key]; s != nil {
		s.Delete(uid)
	}
}

// expected returns a copy of the uids key still waits for.
func (f *finalizerExpectations) expected(key string) sets.Set[types.UID] {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.m[key]; s != nil {
		return s.Clone()
	}
	return sets.New[types.UID]()
}

func (f *finalizerExpectations) forget(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, key)
}
