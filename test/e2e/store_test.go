package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// These tests drive the store through the API: resourceVersions are etcd
// revisions, watches come from the per-resource hub or from etcd, and
// compaction turns old revisions into 410 Expired.

func storeNamespace(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	if _, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func storePod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			ServiceAccountName: "default",
			Containers:         []corev1.Container{{Name: "c", Image: "busybox:1.36"}},
		},
	}
}

// labelPod sets the pod's "step" label through an update.
func labelPod(t *testing.T, c kubernetes.Interface, ns, name, step string) {
	t.Helper()
	ctx := context.Background()
	p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Labels["step"] = step
	if _, err := c.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// podEventLog is what an informer's handlers saw, in order: "add NAME",
// "update NAME step=S" and "delete NAME", the last with " (final state
// unknown)" when the informer learnt of it by relisting.
type podEventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *podEventLog) record(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
}

func (l *podEventLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func (l *podEventLog) handlers() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { l.record("add %s", obj.(*corev1.Pod).Name) },
		UpdateFunc: func(old, cur any) {
			o, n := old.(*corev1.Pod), cur.(*corev1.Pod)
			if o.ResourceVersion == n.ResourceVersion {
				return // a relist's sync, not a change
			}
			l.record("update %s step=%s", n.Name, n.Labels["step"])
		},
		DeleteFunc: func(obj any) {
			switch o := obj.(type) {
			case *corev1.Pod:
				l.record("delete %s", o.Name)
			case cache.DeletedFinalStateUnknown:
				l.record("delete %s (final state unknown)", o.Obj.(*corev1.Pod).Name)
			default:
				l.record("delete of unexpected %T", obj)
			}
		},
	}
}

// wait waits until the log is exactly want.
func (l *podEventLog) wait(t *testing.T, want ...string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		if got := l.snapshot(); !slices.Equal(got, want) {
			return fmt.Errorf("informer saw\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		return nil
	})
}

// runPodInformer runs an informer over lw until the test ends and waits for
// its first sync.
func runPodInformer(t *testing.T, lw cache.ListerWatcher) *podEventLog {
	t.Helper()
	log := &podEventLog{}
	inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	if _, err := inf.AddEventHandler(log.handlers()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { inf.RunWithContext(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	return log
}

func podListWatch(c kubernetes.Interface, ns string) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return c.CoreV1().Pods(ns).List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return c.CoreV1().Pods(ns).Watch(ctx, opts)
		},
	}
}

func TestPodInformerSeesChangesInOrderAndResumesAfterServerRestart(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()
	const ns = "informed"
	storeNamespace(t, c, ns)
	pods := c.CoreV1().Pods(ns)
	log := runPodInformer(t, podListWatch(c, ns))

	if _, err := pods.Create(ctx, storePod("a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labelPod(t, c, ns, "a", "1")
	if _, err := pods.Create(ctx, storePod("b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labelPod(t, c, ns, "a", "2")
	if err := pods.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	labelPod(t, c, ns, "b", "1")
	before := []string{"add a", "update a step=1", "add b", "update a step=2", "delete a", "update b step=1"}
	log.wait(t, before...)

	// The informer's watch breaks, it retries until the server is back and
	// resumes from its last resourceVersion: nothing is replayed or lost.
	s.stop()
	s.restart()
	if _, err := pods.Create(ctx, storePod("c"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labelPod(t, c, ns, "b", "2")
	if err := pods.Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	labelPod(t, c, ns, "c", "1")
	log.wait(t, append(before, "add c", "update b step=2", "delete b", "update c step=1")...)
}

func TestWatchFromCompactedResourceVersionGets410Expired(t *testing.T) {
	s := startServer(t, withArgs("--etcd-compaction-interval", "1s"))
	c := s.client()
	ctx := context.Background()
	cms := c.CoreV1().ConfigMaps("default")
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "old"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := cm.ResourceVersion

	// The server's own compaction passes the revision: an exact list there
	// is refused with 410.
	eventually(t, 20*time.Second, func() error {
		_, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: old, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
		if !apierrors.IsResourceExpired(err) {
			return fmt.Errorf("list at compacted revision %s: %v", old, err)
		}
		return nil
	})

	// The watch hub remembers events since the server started, as
	// kube-apiserver's watch cache does; after a restart the revision is
	// older than the hub and etcd no longer has it.
	s.stop()
	s.restart()
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: old})
	if err == nil {
		// An error event is the other way to say it.
		select {
		case e := <-w.ResultChan():
			err = apierrors.FromObject(e.Object)
			if e.Type != watch.Error {
				err = fmt.Errorf("first event %s, want ERROR", e.Type)
			}
		case <-time.After(10 * time.Second):
			err = fmt.Errorf("no event")
		}
		w.Stop()
	}
	if !apierrors.IsResourceExpired(err) {
		t.Fatalf("watch from compacted %s: %v, want 410 Expired", old, err)
	}
	if st, ok := err.(apierrors.APIStatus); !ok || st.Status().Code != http.StatusGone {
		t.Errorf("watch error status: %#v", err)
	}

	// The same request on the wire.
	var code int
	res := c.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces/default/configmaps").
		Param("watch", "true").Param("resourceVersion", old).Do(ctx).StatusCode(&code)
	if code != http.StatusGone || !apierrors.IsResourceExpired(res.Error()) {
		t.Errorf("raw watch from %s: HTTP %d, %v", old, code, res.Error())
	}

	// A watch from now works.
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err = cms.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, FieldSelector: "metadata.name=old"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := cms.Delete(ctx, "old", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if evs := collectEvents(t, w, 1); evs[0].Type != watch.Deleted {
		t.Errorf("watch from the list's revision: %s", evs[0].Type)
	}
}

func revision(t *testing.T, rv string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q is not an etcd revision: %v", rv, err)
	}
	return n
}

// collectEvents reads n events from w, failing the test after 15s.
func collectEvents(t *testing.T, w watch.Interface, n int) []watch.Event {
	t.Helper()
	var evs []watch.Event
	timeout := time.After(15 * time.Second)
	for len(evs) < n {
		select {
		case e, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %d events", len(evs))
			}
			evs = append(evs, e)
		case <-timeout:
			t.Fatalf("got %d events, want %d: %v", len(evs), n, evs)
		}
	}
	return evs
}

// describeEvent is "TYPE name" or "TYPE name key=value" for a configmap.
func describeEvent(e watch.Event) string {
	cm, ok := e.Object.(*corev1.ConfigMap)
	if !ok {
		return fmt.Sprintf("%s %T", e.Type, e.Object)
	}
	return fmt.Sprintf("%s %s team=%s", e.Type, cm.Name, cm.Labels["team"])
}

func TestThousandConfigMapsSurviveSIGKILLWithTheirResourceVersions(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()
	const ns, n, workers = "durable", 1000, 16
	storeNamespace(t, c, ns)

	rvs := make([]string, n)
	errs := make(chan error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				cm := &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%04d", i), Labels: map[string]string{"e2e": "durable"}},
					Data:       map[string]string{"i": fmt.Sprint(i)},
				}
				got, err := c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
				if err != nil {
					errs <- err
					continue
				}
				rvs[i] = got.ResourceVersion
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}

	// Every create was acknowledged, so every one is on disk.
	s.kill()
	s.restart()
	// Controllers may add their own configmaps (kube-root-ca.crt).
	list, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: "e2e=durable"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != n {
		t.Fatalf("%d configmaps after SIGKILL, want %d", len(list.Items), n)
	}
	for _, cm := range list.Items {
		var i int
		fmt.Sscanf(cm.Name, "cm-%d", &i)
		if cm.ResourceVersion != rvs[i] || cm.Data["i"] != fmt.Sprint(i) {
			t.Errorf("%s: resourceVersion %s data %v, created with %s", cm.Name, cm.ResourceVersion, cm.Data, rvs[i])
		}
	}
}

func TestUpdatesWithTheSameResourceVersionConflictExceptOne(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()
	cms := c.CoreV1().ConfigMaps("default")
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "contended"}, Data: map[string]string{"v": "0"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		// Both writers read the same version and race to replace it.
		errs := make([]error, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 2 {
			mine := cm.DeepCopy()
			mine.Data["v"] = fmt.Sprintf("round %d writer %d", round, w)
			wg.Go(func() {
				<-start
				_, errs[w] = cms.Update(ctx, mine, metav1.UpdateOptions{})
			})
		}
		close(start)
		wg.Wait()
		won := -1
		for w, err := range errs {
			switch {
			case err == nil:
				if won >= 0 {
					t.Fatalf("round %d: both updates with resourceVersion %s succeeded", round, cm.ResourceVersion)
				}
				won = w
			case apierrors.IsConflict(err):
				if !strings.Contains(err.Error(), `configmaps "contended"`) || !strings.Contains(err.Error(), "the object has been modified; please apply your changes to the latest version and try again") {
					t.Errorf("round %d: conflict message: %v", round, err)
				}
			default:
				t.Fatalf("round %d: writer %d: %v, want success or 409 Conflict", round, w, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no update succeeded: %v", round, errs)
		}
		if cm, err = cms.Get(ctx, "contended", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("round %d writer %d", round, won); cm.Data["v"] != want {
			t.Fatalf("round %d: stored %q, want the winner's %q", round, cm.Data["v"], want)
		}
	}
}

func storeDeployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.27"}}},
			},
		},
	}
}

func TestNoOpUpdateKeepsResourceVersionAndGenerationFollowsSpec(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()

	cm, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "same"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != cm.ResourceVersion {
		t.Errorf("no-op configmap update moved resourceVersion %s -> %s", cm.ResourceVersion, again.ResourceVersion)
	}

	deps := c.AppsV1().Deployments("default")
	d, err := deps.Create(ctx, storeDeployment("gen"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Generation != 1 {
		t.Fatalf("new deployment generation %d, want 1", d.Generation)
	}
	same, err := deps.Update(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if same.ResourceVersion != d.ResourceVersion || same.Generation != 1 {
		t.Errorf("no-op deployment update: resourceVersion %s -> %s, generation %d", d.ResourceVersion, same.ResourceVersion, same.Generation)
	}

	// Metadata changes write a new version but not a new generation.
	same.Labels = map[string]string{"tier": "web"}
	labelled, err := deps.Update(ctx, same, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if labelled.ResourceVersion == same.ResourceVersion || labelled.Generation != 1 {
		t.Errorf("label change: resourceVersion %s -> %s, generation %d (want 1)", same.ResourceVersion, labelled.ResourceVersion, labelled.Generation)
	}

	labelled.Spec.Replicas = new(int32(3))
	scaled, err := deps.Update(ctx, labelled, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if scaled.Generation != 2 {
		t.Errorf("spec change: generation %d, want 2", scaled.Generation)
	}

	scaled.Status.ObservedGeneration = 2
	scaled.Status.Replicas = 3
	status, err := deps.UpdateStatus(ctx, scaled, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if status.Generation != 2 || status.ResourceVersion == scaled.ResourceVersion {
		t.Errorf("status change: generation %d (want 2), resourceVersion %s -> %s", status.Generation, scaled.ResourceVersion, status.ResourceVersion)
	}
}

func TestDeploymentStatusChangesOnlyThroughStatusSubresource(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()
	deps := c.AppsV1().Deployments("default")
	d, err := deps.Create(ctx, storeDeployment("web"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// A PUT on the object keeps its spec change and drops the status.
	d.Spec.Replicas = new(int32(2))
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 9, Replicas: 7, ReadyReplicas: 7}
	put, err := deps.Update(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *put.Spec.Replicas != 2 {
		t.Errorf("spec.replicas %d after PUT, want 2", *put.Spec.Replicas)
	}
	if put.Status.Replicas != 0 || put.Status.ObservedGeneration != 0 {
		t.Errorf("PUT on the deployment changed its status: %+v", put.Status)
	}

	// A PUT on /status keeps its status change and drops the spec.
	put.Spec.Replicas = new(int32(5))
	put.Status = appsv1.DeploymentStatus{ObservedGeneration: put.Generation, Replicas: 2, ReadyReplicas: 1}
	st, err := deps.UpdateStatus(ctx, put, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := deps.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for what, dep := range map[string]*appsv1.Deployment{"UpdateStatus reply": st, "stored": got} {
		if *dep.Spec.Replicas != 2 {
			t.Errorf("%s: spec.replicas %d, want 2: /status changed the spec", what, *dep.Spec.Replicas)
		}
		if dep.Status.Replicas != 2 || dep.Status.ReadyReplicas != 1 || dep.Status.ObservedGeneration != put.Generation {
			t.Errorf("%s: status %+v, want the one sent to /status", what, dep.Status)
		}
	}
}

func TestLabelSelectorWatchTurnsObjectsLeavingAndEnteringIntoDeletedAndAdded(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()
	cms := c.CoreV1().ConfigMaps("default")
	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "team=blue"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{LabelSelector: "team=blue", ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	setTeam := func(name, team, data string) {
		t.Helper()
		cm, err := cms.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Labels["team"] = team
		cm.Data = map[string]string{"d": data}
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(name, team string) {
		t.Helper()
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": team}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create("x", "red")                                                   // not seen
	setTeam("x", "blue", "1")                                            // starts matching: ADDED
	setTeam("x", "blue", "2")                                            // still matching: MODIFIED
	setTeam("x", "red", "3")                                             // stops matching: DELETED
	setTeam("x", "red", "4")                                             // not seen
	if err := cms.Delete(ctx, "x", metav1.DeleteOptions{}); err != nil { // not seen
		t.Fatal(err)
	}
	create("y", "blue") // ADDED, and proves nothing came in between

	var got []string
	for _, e := range collectEvents(t, w, 4) {
		got = append(got, describeEvent(e))
	}
	want := []string{"ADDED x team=blue", "MODIFIED x team=blue", "DELETED x team=red", "ADDED y team=blue"}
	if !slices.Equal(got, want) {
		t.Errorf("events\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestWatchListSendsExistingObjectsThenInitialEventsEndBookmark(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()
	const ns = "watchlist"
	storeNamespace(t, c, ns)
	cms := c.CoreV1().ConfigMaps(ns)
	created := map[string]string{}
	mine := map[string]string{"e2e": "watchlist"}
	for _, name := range []string{"one", "two", "three"} {
		cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: mine}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created[name] = cm.ResourceVersion
	}
	// The selector leaves out what controllers put in every namespace.
	w, err := cms.Watch(ctx, metav1.ListOptions{
		LabelSelector:        "e2e=watchlist",
		SendInitialEvents:    new(true),
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
		AllowWatchBookmarks:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	evs := collectEvents(t, w, 4)
	seen := map[string]string{}
	for _, e := range evs[:3] {
		cm, ok := e.Object.(*corev1.ConfigMap)
		if e.Type != watch.Added || !ok {
			t.Fatalf("initial event %s %T, want ADDED ConfigMap", e.Type, e.Object)
		}
		seen[cm.Name] = cm.ResourceVersion
	}
	if fmt.Sprint(seen) != fmt.Sprint(created) {
		t.Errorf("initial events %v, want the created objects %v", seen, created)
	}
	bm := evs[3]
	if bm.Type != watch.Bookmark {
		t.Fatalf("fourth event %s, want BOOKMARK", bm.Type)
	}
	m := bm.Object.(*corev1.ConfigMap)
	if m.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
		t.Errorf("bookmark annotations %v, want %s: \"true\"", m.Annotations, metav1.InitialEventsAnnotationKey)
	}
	if bmRV, lastRV := revision(t, m.ResourceVersion), revision(t, created["three"]); bmRV < lastRV {
		t.Errorf("bookmark resourceVersion %s is older than the objects (%v)", m.ResourceVersion, created)
	}

	// Then the watch goes on with live changes.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "four", Labels: mine}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if e := collectEvents(t, w, 1)[0]; describeEvent(e) != "ADDED four team=" {
		t.Errorf("live event after the bookmark: %s", describeEvent(e))
	}
}

func TestListPagesWithLimitAndContinueAtOneResourceVersion(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()
	const ns = "paged"
	storeNamespace(t, c, ns)
	cms := c.CoreV1().ConfigMaps(ns)
	var want []string
	for i := range 25 {
		name := fmt.Sprintf("cm-%02d", i)
		want = append(want, name)
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"e2e": "paged"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// The selector leaves out what controllers put in every namespace
	// (kube-root-ca.crt); the store pages over the keys it skips.
	var got []string
	var rv, cont string
	var sizes []int
	for page := 0; ; page++ {
		list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "e2e=paged", Limit: 10, Continue: cont})
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(list.Items))
		if page == 0 {
			rv = list.ResourceVersion
			// Changes after the first page do not show in the later ones.
			if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-99-late", Labels: map[string]string{"e2e": "paged"}}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := cms.Delete(ctx, "cm-24", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		} else if list.ResourceVersion != rv {
			t.Errorf("page %d at resourceVersion %s, first page at %s", page, list.ResourceVersion, rv)
		}
		for _, it := range list.Items {
			got = append(got, it.Name)
		}
		cont = list.Continue
		if cont == "" {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if fmt.Sprint(sizes) != "[10 10 5]" {
		t.Errorf("page sizes %v, want [10 10 5]", sizes)
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages hold %v, want %v", got, want)
	}
}
