package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
)

const protobufMedia = "application/vnd.kubernetes.protobuf"

// contentTypes records the Content-Type of every successful response, and
// of every POST and PUT body.
type contentTypes struct {
	mu   sync.Mutex
	seen map[string]string // "METHOD path?query" -> response Content-Type
	sent map[string]string // "METHOD path" -> request Content-Type
}

func (c *contentTypes) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method == http.MethodPost || req.Method == http.MethodPut {
			c.mu.Lock()
			c.sent[req.Method+" "+req.URL.Path] = req.Header.Get("Content-Type")
			c.mu.Unlock()
		}
		resp, err := rt.RoundTrip(req)
		if err == nil && resp.StatusCode < 300 {
			c.mu.Lock()
			c.seen[req.Method+" "+req.URL.Path+"?"+req.URL.RawQuery] = resp.Header.Get("Content-Type")
			c.mu.Unlock()
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestProtobufClientCreatesGetsListsWatchesUpdatesAndDeletes(t *testing.T) {
	s := startServer(t)
	cfg := s.restConfig()
	cfg.ContentType = protobufMedia
	cfg.AcceptContentTypes = protobufMedia
	seen := &contentTypes{seen: map[string]string{}, sent: map[string]string{}}
	cfg.Wrap(seen.wrap)
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ns := "default"

	t.Run("Deployment", func(t *testing.T) {
		deploys := c.AppsV1().Deployments(ns)
		labels := map[string]string{"app": "proto"}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "proto", Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
				},
			},
		}
		created, err := deploys.Create(ctx, d, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer deploys.Delete(context.Background(), "proto", metav1.DeleteOptions{})
		if created.UID == "" || *created.Spec.Replicas != 1 || created.Spec.RevisionHistoryLimit == nil {
			t.Errorf("created deployment lacks server fields: %+v", created)
		}
		w, err := deploys.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=proto", ResourceVersion: created.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()

		got, err := deploys.Get(ctx, "proto", metav1.GetOptions{})
		if err != nil || got.UID != created.UID {
			t.Fatalf("get: %v %+v", err, got)
		}
		list, err := deploys.List(ctx, metav1.ListOptions{LabelSelector: "app=proto"})
		if err != nil || len(list.Items) != 1 || list.Items[0].Name != "proto" || list.ResourceVersion == "" {
			t.Fatalf("list: %v %+v", err, list)
		}
		got.Spec.Replicas = new(int32(3))
		updated, err := deploys.Update(ctx, got, metav1.UpdateOptions{})
		if err != nil || *updated.Spec.Replicas != 3 || updated.Generation != 2 {
			t.Fatalf("update: %v %+v", err, updated)
		}
		if err := deploys.Delete(ctx, "proto", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := deploys.Get(ctx, "proto", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("get after delete: %v", err)
		}
		wantEvents(t, w, watch.Modified, watch.Deleted)
	})

	t.Run("ConfigMap", func(t *testing.T) {
		cms := c.CoreV1().ConfigMaps(ns)
		w, err := cms.Watch(ctx, metav1.ListOptions{LabelSelector: "proto=yes"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		created, err := cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "proto-cm", Labels: map[string]string{"proto": "yes"}},
			Data:       map[string]string{"a": "1"}, BinaryData: map[string][]byte{"bin": {0, 1, 2, 255}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer cms.Delete(context.Background(), "proto-cm", metav1.DeleteOptions{})
		got, err := cms.Get(ctx, "proto-cm", metav1.GetOptions{})
		if err != nil || got.Data["a"] != "1" || string(got.BinaryData["bin"]) != "\x00\x01\x02\xff" {
			t.Fatalf("get: %v %+v", err, got)
		}
		list, err := cms.List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) == 0 {
			t.Fatalf("list: %v %+v", err, list)
		}
		got.Data["a"] = "2"
		if _, err := cms.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		patched, err := cms.Patch(ctx, "proto-cm", types.MergePatchType, []byte(`{"data":{"b":"3"}}`), metav1.PatchOptions{})
		if err != nil || patched.Data["a"] != "2" || patched.Data["b"] != "3" {
			t.Fatalf("patch: %v %+v", err, patched)
		}
		if err := cms.Delete(ctx, "proto-cm", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &created.UID}}); err != nil {
			t.Fatal(err)
		}
		evs := wantEvents(t, w, watch.Added, watch.Modified, watch.Modified, watch.Deleted)
		if len(evs) == 4 {
			if cm, ok := evs[2].Object.(*corev1.ConfigMap); !ok || cm.Data["b"] != "3" {
				t.Errorf("third event object: %#v", evs[2].Object)
			}
		}
		for _, name := range []string{"proto-x", "proto-y"} {
			if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"proto": "collection"}}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "proto=collection"}); err != nil {
			t.Fatal(err)
		}
		if left, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "proto=collection"}); err != nil || len(left.Items) != 0 {
			t.Errorf("after deletecollection: %v %+v", err, left)
		}
		// An error comes back as a protobuf Status the client decodes.
		_, err = cms.Get(ctx, "nosuch", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), `"nosuch" not found`) {
			t.Errorf("get missing: %v", err)
		}
	})

	seen.mu.Lock()
	defer seen.mu.Unlock()
	if len(seen.seen) < 10 {
		t.Errorf("only %d responses recorded: %v", len(seen.seen), seen.seen)
	}
	if len(seen.sent) < 4 {
		t.Errorf("only %d bodies sent: %v", len(seen.sent), seen.sent)
	}
	for req, ct := range seen.sent {
		if ct != protobufMedia {
			t.Errorf("%s sent %q, want protobuf", req, ct)
		}
	}
	for req, ct := range seen.seen {
		want := protobufMedia
		if strings.Contains(req, "watch=true") {
			want = protobufMedia + ";stream=watch"
		}
		if ct != want {
			t.Errorf("%s answered %q, want %q", req, ct, want)
		}
	}
}

// wantEvents reads len(types) events and checks their types in order.
func wantEvents(t *testing.T, w watch.Interface, types ...watch.EventType) []watch.Event {
	t.Helper()
	var evs []watch.Event
	timeout := time.After(15 * time.Second)
	for len(evs) < len(types) {
		select {
		case e, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %v", evs)
			}
			if e.Type == watch.Error {
				t.Fatalf("watch error: %#v", e.Object)
			}
			evs = append(evs, e)
		case <-timeout:
			t.Fatalf("got events %v, want %v", eventTypes(evs), types)
		}
	}
	for i, e := range evs {
		if e.Type != types[i] {
			t.Errorf("events %v, want %v", eventTypes(evs), types)
			break
		}
		if _, ok := e.Object.(metav1.Object); !ok {
			t.Errorf("event %d object %T has no metadata", i, e.Object)
		}
	}
	return evs
}

func eventTypes(evs []watch.Event) []watch.EventType {
	var out []watch.EventType
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

const aggregatedDiscovery = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

func TestDiscoveryServesAggregatedAndLegacyDocuments(t *testing.T) {
	s := startServer(t)
	a := newRawAPI(s)

	for _, path := range []string{"/api", "/apis"} {
		r := a.do("GET", path, nil, "Accept: "+aggregatedDiscovery+",application/json")
		if r.code != 200 || r.header.Get("Content-Type") != aggregatedDiscovery {
			t.Errorf("GET %s aggregated: %d Content-Type %q", path, r.code, r.header.Get("Content-Type"))
			continue
		}
		var list apidiscoveryv2.APIGroupDiscoveryList
		if err := json.Unmarshal(r.body, &list); err != nil || list.Kind != "APIGroupDiscoveryList" || list.APIVersion != "apidiscovery.k8s.io/v2" {
			t.Errorf("GET %s aggregated: %v %s", path, err, r)
			continue
		}
		found := map[string]bool{}
		for _, g := range list.Items {
			for _, v := range g.Versions {
				for _, res := range v.Resources {
					found[g.Name+"/"+v.Version+"/"+res.Resource] = true
					for _, sub := range res.Subresources {
						found[g.Name+"/"+v.Version+"/"+res.Resource+"/"+sub.Subresource] = true
					}
				}
			}
		}
		want := []string{"/v1/pods", "/v1/pods/status", "/v1/pods/binding", "/v1/namespaces/finalize", "/v1/configmaps"}
		if path == "/apis" {
			want = []string{"apps/v1/deployments", "apps/v1/deployments/scale", "batch/v1/jobs", "authorization.k8s.io/v1/selfsubjectaccessreviews"}
		}
		for _, w := range want {
			if !found[w] {
				t.Errorf("GET %s aggregated lacks %s", path, w)
			}
		}
	}

	// Without the aggregated media type, or when JSON comes first, the
	// legacy documents.
	for _, accept := range []string{"", "application/json", "application/json," + aggregatedDiscovery} {
		hdr := []string{}
		if accept != "" {
			hdr = append(hdr, "Accept: "+accept)
		}
		r := a.do("GET", "/api", nil, hdr...)
		var v metav1.APIVersions
		if err := json.Unmarshal(r.body, &v); r.code != 200 || err != nil || v.Kind != "APIVersions" || len(v.Versions) != 1 || v.Versions[0] != "v1" {
			t.Errorf("GET /api Accept %q: %s", accept, r)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET /api Accept %q: Content-Type %q", accept, ct)
		}
		r = a.do("GET", "/apis", nil, hdr...)
		var gl metav1.APIGroupList
		if err := json.Unmarshal(r.body, &gl); r.code != 200 || err != nil || gl.Kind != "APIGroupList" || len(gl.Groups) == 0 {
			t.Errorf("GET /apis Accept %q: %s", accept, r)
		}
		names := map[string]bool{}
		for _, g := range gl.Groups {
			names[g.Name] = true
			if g.PreferredVersion.Version == "" {
				t.Errorf("group %s has no preferred version", g.Name)
			}
		}
		if !names["apps"] || !names["batch"] {
			t.Errorf("GET /apis: groups %v", names)
		}
	}

	dc, err := discovery.NewDiscoveryClientForConfig(s.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	core, err := dc.ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]metav1.APIResource{}
	for _, r := range core.APIResources {
		byName[r.Name] = r
	}
	for _, n := range []string{"pods", "pods/status", "pods/binding", "pods/eviction", "pods/log", "nodes", "namespaces", "namespaces/finalize"} {
		if _, ok := byName[n]; !ok {
			t.Errorf("v1 resources lack %s", n)
		}
	}
	if b := byName["pods/binding"]; b.Kind != "Binding" || !containsVerb(b.Verbs, "create") {
		t.Errorf("pods/binding: %+v", b)
	}
	if p := byName["pods"]; p.Kind != "Pod" || !p.Namespaced || !containsVerb(p.Verbs, "watch") || !containsVerb(p.Verbs, "deletecollection") {
		t.Errorf("pods: %+v", p)
	}
	apps, err := dc.ServerResourcesForGroupVersion("apps/v1")
	if err != nil {
		t.Fatal(err)
	}
	var scale *metav1.APIResource
	for i, r := range apps.APIResources {
		if r.Name == "deployments/scale" {
			scale = &apps.APIResources[i]
		}
	}
	if scale == nil || scale.Group != "autoscaling" || scale.Version != "v1" || scale.Kind != "Scale" {
		t.Errorf("deployments/scale: %+v", scale)
	}
	if _, err := dc.ServerResourcesForGroupVersion("nosuch.example.com/v1"); !apierrors.IsNotFound(err) {
		t.Errorf("unknown group version: %v", err)
	}
	// client-go's full discovery (aggregated) agrees.
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]bool{}
	for _, l := range lists {
		for _, r := range l.APIResources {
			all[l.GroupVersion+"/"+r.Name] = true
		}
	}
	for _, w := range []string{"v1/pods/binding", "apps/v1/deployments/scale", "apps/v1/statefulsets/scale"} {
		if !all[w] {
			t.Errorf("ServerGroupsAndResources lacks %s", w)
		}
	}
}

func containsVerb(verbs []string, v string) bool {
	for _, x := range verbs {
		if x == v {
			return true
		}
	}
	return false
}

func TestVersionNamesTheKubernetesReleaseAndMetricsServeCounters(t *testing.T) {
	s := startServer(t)
	a := newRawAPI(s)
	r := a.do("GET", "/version", nil)
	var v struct{ GitVersion, Major, Minor string }
	if err := json.Unmarshal(r.body, &v); err != nil || r.code != 200 || !strings.HasPrefix(v.GitVersion, "v1.37.2") || v.Major != "1" || v.Minor != "37" {
		t.Errorf("/version: %v %s", err, r)
	}
	sv, err := s.client().Discovery().ServerVersion()
	if err != nil || !strings.HasPrefix(sv.GitVersion, "v1.37.2") {
		t.Errorf("client-go ServerVersion: %v %+v", err, sv)
	}

	// Some traffic first, so the counters have rows.
	a.do("GET", "/api/v1/namespaces/default/configmaps", nil)
	r = a.do("GET", "/metrics", nil)
	if r.code != 200 {
		t.Fatalf("/metrics: %s", r)
	}
	body := string(r.body)
	for _, want := range []string{"apiserver_request_total{", "etcd_request_duration_seconds_bucket{", `resource="configmaps"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") && !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("/metrics Content-Type %q", ct)
	}
}

// nodeAndPod makes node n1 (Ready) and a pod in default bound to it with an
// IP, as an agent would have left them.
func nodeAndPod(t *testing.T, s *server, c kubernetes.Interface) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	s.mustKubectl("apply", "-f", writeTemp(t, "node.yaml", `apiVersion: v1
kind: Node
metadata:
  name: n1
  labels:
    kubernetes.io/hostname: n1
status:
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  addresses:
  - {type: InternalIP, address: 192.168.7.10}
  - {type: Hostname, address: n1}
  conditions:
  - type: Ready
    status: "True"
    reason: KubeletReady
    message: kubelet is posting ready status
    lastHeartbeatTime: "2026-01-01T00:00:00Z"
    lastTransitionTime: "2026-01-01T00:00:00Z"
  nodeInfo:
    kubeletVersion: v1.37.2
    osImage: Skiff Test
    kernelVersion: "6.1"
    containerRuntimeVersion: skiff://1
    architecture: amd64
    operatingSystem: linux
`))
	t.Cleanup(func() { c.CoreV1().Nodes().Delete(context.Background(), "n1", metav1.DeleteOptions{}) })
	pod, err := c.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.CoreV1().Pods("default").Delete(context.Background(), "web", metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))})
	})
	return pod
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPodTableBindingAndKubectlDescribe(t *testing.T) {
	s := startServer(t)
	c := s.client()
	a := newRawAPI(s)
	ctx := context.Background()
	pod := nodeAndPod(t, s, c)

	// Binding sets the node and the PodScheduled condition, once.
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
	if err := c.CoreV1().Pods("default").Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.NodeName != "n1" {
		t.Errorf("nodeName after binding: %q", got.Spec.NodeName)
	}
	scheduled := false
	for _, cond := range got.Status.Conditions {
		scheduled = scheduled || cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionTrue
	}
	if !scheduled {
		t.Errorf("no PodScheduled=True condition: %+v", got.Status.Conditions)
	}
	err = c.CoreV1().Pods("default").Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Target: corev1.ObjectReference{Name: "n2"}}, metav1.CreateOptions{})
	if !apierrors.IsConflict(err) {
		t.Errorf("second binding: %v, want Conflict", err)
	}
	err = c.CoreV1().Pods("default").Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "nosuch"}, Target: corev1.ObjectReference{Name: "n1"}}, metav1.CreateOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("binding a missing pod: %v, want NotFound", err)
	}
	err = c.CoreV1().Pods("default").Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Errorf("binding without target: %v, want Invalid", err)
	}

	// The agent would report the pod running with an IP.
	got.Status.Phase = corev1.PodRunning
	got.Status.PodIP, got.Status.PodIPs = "10.42.0.5", []corev1.PodIP{{IP: "10.42.0.5"}}
	got.Status.HostIP = "192.168.7.10"
	got.Status.StartTime = &metav1.Time{Time: time.Now()}
	got.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Image: "nginx:1.27", Ready: true, Started: new(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}
	got.Status.Conditions = append(got.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
	if _, err := c.CoreV1().Pods("default").UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("Table", func(t *testing.T) {
		a := a.with(t)
		accept := "Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
		r := a.do("GET", "/api/v1/namespaces/default/pods", nil, accept)
		var tbl metav1.Table
		if err := json.Unmarshal(r.body, &tbl); r.code != 200 || err != nil || tbl.Kind != "Table" {
			t.Fatalf("pods table: %v %s", err, r)
		}
		var names []string
		prio := map[string]int32{}
		for _, col := range tbl.ColumnDefinitions {
			names = append(names, col.Name)
			prio[col.Name] = col.Priority
		}
		if strings.Join(names[:5], ",") != "Name,Ready,Status,Restarts,Age" {
			t.Errorf("columns %q", names)
		}
		if p, ok := prio["IP"]; !ok || p != 1 {
			t.Errorf("IP column priority %d (present %v)", p, ok)
		}
		if p, ok := prio["Node"]; !ok || p != 1 {
			t.Errorf("Node column priority %d (present %v)", p, ok)
		}
		if len(tbl.Rows) != 1 || len(tbl.Rows[0].Cells) != len(tbl.ColumnDefinitions) {
			t.Fatalf("rows: %+v", tbl.Rows)
		}
		cells := tbl.Rows[0].Cells
		if cells[0] != "web" || cells[1] != "1/1" || cells[2] != "Running" {
			t.Errorf("cells %v", cells)
		}
		var partial metav1.PartialObjectMetadata
		if err := json.Unmarshal(tbl.Rows[0].Object.Raw, &partial); err != nil || partial.Kind != "PartialObjectMetadata" || partial.UID != pod.UID {
			t.Errorf("default row object: %v %s", err, tbl.Rows[0].Object.Raw)
		}

		r = a.do("GET", "/api/v1/namespaces/default/pods?includeObject=Object", nil, accept)
		if err := json.Unmarshal(r.body, &tbl); err != nil || len(tbl.Rows) != 1 {
			t.Fatalf("includeObject=Object: %v %s", err, r)
		}
		var whole corev1.Pod
		if err := json.Unmarshal(tbl.Rows[0].Object.Raw, &whole); err != nil || whole.Kind != "Pod" || whole.Spec.NodeName != "n1" || whole.Status.PodIP != "10.42.0.5" {
			t.Errorf("includeObject=Object row: %v %s", err, tbl.Rows[0].Object.Raw)
		}
		r = a.do("GET", "/api/v1/namespaces/default/pods?includeObject=None", nil, accept)
		tbl = metav1.Table{}
		if err := json.Unmarshal(r.body, &tbl); err != nil || len(tbl.Rows) != 1 || tbl.Rows[0].Object.Raw != nil {
			t.Errorf("includeObject=None: %v %s", err, r)
		}
		// One object as a Table too.
		r = a.do("GET", "/api/v1/namespaces/default/pods/web", nil, accept)
		if err := json.Unmarshal(r.body, &tbl); err != nil || tbl.Kind != "Table" || len(tbl.Rows) != 1 {
			t.Errorf("get one as Table: %v %s", err, r)
		}
	})

	t.Run("KubectlWide", func(t *testing.T) {
		out := s.mustKubectl("get", "pods", "-o", "wide")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if got := columns(lines[0]); len(got) < 7 || strings.Join(got[:7], ",") != "NAME,READY,STATUS,RESTARTS,AGE,IP,NODE" {
			t.Errorf("wide columns: %q", got)
		}
		contains(t, "get pods -o wide", out, "web", "1/1", "Running", "10.42.0.5", "n1")
		out = s.mustKubectl("get", "nodes", "-o", "wide")
		contains(t, "get nodes -o wide", out, "n1", "Ready", "192.168.7.10", "Skiff Test")
	})

	t.Run("DescribePod", func(t *testing.T) {
		out := s.mustKubectl("describe", "pod", "web")
		contains(t, "describe pod", out, "Name:", "web", "Namespace:", "default", "Node:", "n1/192.168.7.10", "Status:", "Running",
			"IP:", "10.42.0.5", "Containers:", "nginx:1.27", "Conditions:", "PodScheduled", "QoS Class:", "BestEffort", "Events:")
	})

	t.Run("DescribeNode", func(t *testing.T) {
		// What describe node asks for.
		pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed"})
		if err != nil || len(pods.Items) != 1 || pods.Items[0].Name != "web" {
			t.Fatalf("pods on n1: %v %+v", err, pods)
		}
		out := s.mustKubectl("describe", "node", "n1")
		contains(t, "describe node", out, "Name:", "n1", "Conditions:", "Ready", "KubeletReady", "Addresses:", "192.168.7.10",
			"Non-terminated Pods:", "(1 in total)", "default", "web", "Allocated resources:", "Kubelet Version:", "v1.37.2")
	})
}

func TestScaleSubresourceServesAutoscalingV1Scale(t *testing.T) {
	s := startServer(t)
	c := s.client()
	a := newRawAPI(s)
	ctx := context.Background()
	a.mustCreate(deployPath, deploymentJSON("scaled", ""))
	t.Cleanup(func() {
		c.AppsV1().Deployments("default").Delete(context.Background(), "scaled", metav1.DeleteOptions{})
	})

	r := a.do("GET", deployPath+"/scaled/scale", nil)
	var sc autoscalingv1.Scale
	if err := json.Unmarshal(r.body, &sc); r.code != 200 || err != nil || sc.APIVersion != "autoscaling/v1" || sc.Kind != "Scale" || sc.Spec.Replicas != 1 || sc.Status.Selector != "app=scaled" {
		t.Fatalf("GET scale: %v %s", err, r)
	}
	got, err := c.AppsV1().Deployments("default").GetScale(ctx, "scaled", metav1.GetOptions{})
	if err != nil || got.Name != "scaled" || got.Spec.Replicas != 1 {
		t.Fatalf("GetScale: %v %+v", err, got)
	}
	got.Spec.Replicas = 4
	upd, err := c.AppsV1().Deployments("default").UpdateScale(ctx, "scaled", got, metav1.UpdateOptions{})
	if err != nil || upd.Spec.Replicas != 4 {
		t.Fatalf("UpdateScale: %v %+v", err, upd)
	}
	// A stale resourceVersion conflicts.
	if _, err := c.AppsV1().Deployments("default").UpdateScale(ctx, "scaled", got, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("UpdateScale with a stale resourceVersion: %v", err)
	}
	r = a.do("PATCH", deployPath+"/scaled/scale", []byte(`{"spec":{"replicas":6}}`), "application/merge-patch+json")
	if err := json.Unmarshal(r.body, &sc); r.code != 200 || err != nil || sc.Kind != "Scale" || sc.APIVersion != "autoscaling/v1" || sc.Spec.Replicas != 6 {
		t.Errorf("PATCH scale: %v %s", err, r)
	}
	r = a.do("PUT", deployPath+"/scaled/scale", []byte(`{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"scaled","namespace":"default"},"spec":{"replicas":2}}`), "application/json")
	if err := json.Unmarshal(r.body, &sc); r.code != 200 || err != nil || sc.Kind != "Scale" || sc.Spec.Replicas != 2 {
		t.Errorf("PUT scale: %v %s", err, r)
	}
	st := a.status("negative replicas", a.do("PUT", deployPath+"/scaled/scale", []byte(`{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"scaled"},"spec":{"replicas":-1}}`), "application/json"), 422, metav1.StatusReasonInvalid)
	wantCauses(t, "negative replicas", st, "spec.replicas")
	a.status("scale of missing deployment", a.do("GET", deployPath+"/nosuch/scale", nil), 404, metav1.StatusReasonNotFound)
	a.status("scale of a configmap", a.do("GET", cmPath+"/x/scale", nil), 404, metav1.StatusReasonNotFound)

	d, err := c.AppsV1().Deployments("default").Get(ctx, "scaled", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 2 || d.Generation != 4 {
		t.Errorf("deployment after scaling: %v replicas %d generation %d", err, *d.Spec.Replicas, d.Generation)
	}
	out := s.mustKubectl("scale", "deployment", "scaled", "--replicas=3")
	contains(t, "kubectl scale", out, "deployment.apps/scaled scaled")
}

func TestSelfSubjectAccessReviewAllowsAdmin(t *testing.T) {
	s := startServer(t)
	rev, err := s.client().AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: "default", Verb: "delete", Group: "apps", Resource: "deployments"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rev.Status.Allowed || rev.Spec.ResourceAttributes == nil || rev.Spec.ResourceAttributes.Verb != "delete" {
		t.Errorf("review: %+v", rev)
	}
	rules, err := s.client().AuthorizationV1().SelfSubjectRulesReviews().Create(context.Background(), &authorizationv1.SelfSubjectRulesReview{
		Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "default"}}, metav1.CreateOptions{})
	if err != nil || len(rules.Status.ResourceRules) == 0 {
		t.Errorf("rules review: %v %+v", err, rules)
	}
}

func TestDeleteCollectionDeletesOnlyMatchingObjects(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()
	cms := c.CoreV1().ConfigMaps("default")
	for name, lbl := range map[string]string{"a": "drop", "b": "drop", "c": "keep", "d": ""} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if lbl != "" {
			cm.Labels = map[string]string{"fate": lbl}
		}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, name := range []string{"a", "b", "c", "d"} {
			cms.Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})
	// Another namespace's matching object stays too.
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"fate": "drop"}}}
	if _, err := c.CoreV1().ConfigMaps("kube-public").Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CoreV1().ConfigMaps("kube-public").Delete(context.Background(), "a", metav1.DeleteOptions{}) })

	if err := cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "fate=drop"}); err != nil {
		t.Fatal(err)
	}
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, cm := range list.Items {
		if cm.Name != "kube-root-ca.crt" { // made by the server in every namespace
			left = append(left, cm.Name)
		}
	}
	if strings.Join(left, ",") != "c,d" {
		t.Errorf("left after deletecollection fate=drop: %v", left)
	}
	if _, err := c.CoreV1().ConfigMaps("kube-public").Get(ctx, "a", metav1.GetOptions{}); err != nil {
		t.Errorf("deletecollection in default reached kube-public: %v", err)
	}
	// A field selector works the same way.
	if err := cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{FieldSelector: "metadata.name=c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "c", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("c after deletecollection by name: %v", err)
	}
	if _, err := cms.Get(ctx, "d", metav1.GetOptions{}); err != nil {
		t.Errorf("d after deletecollection of c: %v", err)
	}
	// kubectl delete -l goes through the same path.
	s.mustKubectl("label", "configmap", "d", "fate=gone")
	out := s.mustKubectl("delete", "configmaps", "-l", "fate=gone")
	contains(t, "kubectl delete -l", out, `configmap "d" deleted`)
}
