package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func contains(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output lacks %q:\n%s", what, w, out)
		}
	}
}

// columns splits a table line on runs of spaces.
func columns(line string) []string {
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
}

func TestKubectlApplyGetDescribeAndFriends(t *testing.T) {
	s := startServer(t)
	manifest, _ := filepath.Abs("testdata/app.yaml")

	out := s.mustKubectl("apply", "-f", manifest)
	contains(t, "apply", out, "namespace/shop created", "configmap/web-config created", "secret/web-secret created",
		"deployment.apps/web created", "statefulset.apps/db created", "daemonset.apps/fluentd-elasticsearch created",
		"service/web created", "podpreset.settings.k8s.io/allow-database created")

	out = s.mustKubectl("apply", "-f", manifest)
	contains(t, "second apply", out, "namespace/shop unchanged", "deployment.apps/web unchanged", "podpreset.settings.k8s.io/allow-database unchanged")

	// Tables with the columns kubectl users know.
	out = s.mustKubectl("get", "deployments", "-n", "shop")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if got := columns(lines[0]); strings.Join(got, ",") != "NAME,READY,UP-TO-DATE,AVAILABLE,AGE" {
		t.Errorf("deployment columns: %q", got)
	}
	contains(t, "get deployments", out, "web")
	out = s.mustKubectl("get", "svc", "-n", "shop", "-o", "wide")
	if got := columns(strings.Split(out, "\n")[0]); strings.Join(got, ",") != "NAME,TYPE,CLUSTER-IP,EXTERNAL-IP,PORT(S),AGE,SELECTOR" {
		t.Errorf("service wide columns: %q", got)
	}
	contains(t, "get svc -o wide", out, "ClusterIP", "10.43.", "80/TCP", "app=web")
	out = s.mustKubectl("get", "statefulsets,daemonsets,configmaps,secrets,podpresets", "-n", "shop")
	contains(t, "get several", out, "statefulset.apps/db", "daemonset.apps/fluentd-elasticsearch", "configmap/web-config", "secret/web-secret", "podpreset.settings.k8s.io/allow-database")

	// -o yaml shows server defaults.
	out = s.mustKubectl("get", "deployment", "web", "-n", "shop", "-o", "yaml")
	contains(t, "get -o yaml", out, "revisionHistoryLimit: 10", "progressDeadlineSeconds: 600", "maxSurge: 25%", "terminationMessagePath: /dev/termination-log",
		"imagePullPolicy: IfNotPresent", "schedulerName: default-scheduler", "uid:", "resourceVersion:", "generation: 1")

	// Selectors and all-namespaces.
	out = s.mustKubectl("get", "deploy", "-A", "-l", "app=web")
	contains(t, "get -A -l", out, "NAMESPACE", "shop", "web")
	out = s.mustKubectl("get", "cm", "-A", "--field-selector", "metadata.namespace=shop,metadata.name!=kube-root-ca.crt", "-o", "name")
	if strings.TrimSpace(out) != "configmap/web-config" {
		t.Errorf("field selector: %q", out)
	}
	out = s.mustKubectl("get", "ns")
	contains(t, "get ns", out, "default", "kube-system", "kube-public", "kube-node-lease", "shop", "Active")

	// label, annotate, scale, patch (three types).
	s.mustKubectl("label", "deployment", "web", "-n", "shop", "tier=frontend")
	s.mustKubectl("annotate", "deployment", "web", "-n", "shop", "note=hello")
	out = s.mustKubectl("scale", "deployment", "web", "-n", "shop", "--replicas=5")
	contains(t, "scale", out, "deployment.apps/web scaled")
	s.mustKubectl("patch", "deployment", "web", "-n", "shop", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}`)
	s.mustKubectl("patch", "deployment", "web", "-n", "shop", "--type=merge", "-p", `{"spec":{"minReadySeconds":3}}`)
	s.mustKubectl("patch", "deployment", "web", "-n", "shop", "--type=json", "-p", `[{"op":"replace","path":"/spec/revisionHistoryLimit","value":4}]`)
	out = s.mustKubectl("get", "deployment", "web", "-n", "shop", "-o", "json")
	var d struct {
		Metadata struct {
			Labels      map[string]string
			Annotations map[string]string
			Generation  int64
		}
		Spec struct {
			Replicas             int
			MinReadySeconds      int
			RevisionHistoryLimit int
			Template             struct {
				Spec struct {
					Containers []struct{ Name, Image string }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.Metadata.Labels["tier"] != "frontend" || d.Metadata.Annotations["note"] != "hello" || d.Spec.Replicas != 5 ||
		d.Spec.MinReadySeconds != 3 || d.Spec.RevisionHistoryLimit != 4 || d.Spec.Template.Spec.Containers[0].Image != "nginx:1.28" {
		t.Errorf("after label/annotate/scale/patch: %+v", d)
	}
	if d.Metadata.Generation != 5 {
		t.Errorf("generation = %d, want 5 (one per spec change; label and annotate do not count)", d.Metadata.Generation)
	}

	// edit with a scripted editor.
	editor := filepath.Join(t.TempDir(), "editor.sh")
	os.WriteFile(editor, []byte("#!/bin/sh\nsed -i 's/greeting: hello/greeting: edited/' \"$1\"\n"), 0o755)
	r := s.kubectlIn("", []string{"KUBE_EDITOR=" + editor}, "edit", "configmap", "web-config", "-n", "shop")
	if r.err != nil {
		t.Fatalf("edit: %s", r)
	}
	contains(t, "edit", r.stdout, "configmap/web-config edited")
	out = s.mustKubectl("get", "cm", "web-config", "-n", "shop", "-o", "jsonpath={.data.greeting}")
	if out != "edited" {
		t.Errorf("after edit: %q", out)
	}

	// describe.
	out = s.mustKubectl("describe", "deployment", "web", "-n", "shop")
	contains(t, "describe deployment", out, "Name:", "web", "Namespace:", "shop", "StrategyType:", "RollingUpdate", "nginx:1.28")
	out = s.mustKubectl("describe", "statefulset", "db", "-n", "shop")
	contains(t, "describe statefulset", out, "Name:", "db", "postgres:17")
	out = s.mustKubectl("describe", "daemonset", "fluentd-elasticsearch", "-n", "shop")
	contains(t, "describe daemonset", out, "Name:", "fluentd-elasticsearch", "fluentd:v1")

	// Generators send protobuf bodies.
	out = s.mustKubectl("create", "namespace", "gen")
	contains(t, "create namespace", out, "namespace/gen created")
	out = s.mustKubectl("create", "configmap", "lit", "-n", "gen", "--from-literal=a=1", "--from-literal=b=2")
	contains(t, "create configmap", out, "configmap/lit created")
	out = s.mustKubectl("create", "deployment", "hello", "-n", "gen", "--image=busybox", "--replicas=2")
	contains(t, "create deployment", out, "deployment.apps/hello created")
	out = s.mustKubectl("create", "secret", "generic", "sec", "-n", "gen", "--from-literal=k=v")
	contains(t, "create secret", out, "secret/sec created")
	out = s.mustKubectl("create", "serviceaccount", "robot", "-n", "gen")
	contains(t, "create serviceaccount", out, "serviceaccount/robot created")
	out = s.mustKubectl("create", "service", "clusterip", "svc1", "-n", "gen", "--tcp=80:8080")
	contains(t, "create service", out, "service/svc1 created")
	out = s.mustKubectl("get", "cm", "lit", "-n", "gen", "-o", "jsonpath={.data.b}")
	if out != "2" {
		t.Errorf("configmap from literal: %q", out)
	}

	// auth can-i, cluster-info, api-resources, explain, raw.
	out = s.mustKubectl("auth", "can-i", "create", "deployments")
	if strings.TrimSpace(out) != "yes" {
		t.Errorf("auth can-i: %q", out)
	}
	out = s.mustKubectl("cluster-info")
	contains(t, "cluster-info", out, "is running at", s.url())
	out = s.mustKubectl("api-resources")
	contains(t, "api-resources", out, "pods", "po", "deployments", "deploy", "statefulsets", "sts", "podpresets", "settings.k8s.io/v1alpha1", "controllerrevisions")
	out = s.mustKubectl("explain", "pod.spec.containers")
	contains(t, "explain", out, "KIND:", "Pod", "FIELD: containers", "image")
	out = s.mustKubectl("get", "--raw", "/readyz")
	if out != "ok" {
		t.Errorf("get --raw /readyz: %q", out)
	}

	// An invalid manifest reports the bad field.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  namespace: shop\ndata:\n  ok: \"fine\"\nspecc: {}\n"), 0o644)
	r = s.kubectl("apply", "-f", bad)
	if r.err == nil || !strings.Contains(r.stderr, `unknown field "specc"`) {
		t.Errorf("invalid manifest: %s", r)
	}
	bad2 := filepath.Join(t.TempDir(), "bad2.yaml")
	os.WriteFile(bad2, []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: Bad_Name\n  namespace: shop\nspec:\n  selector:\n    matchLabels: {app: one}\n  template:\n    metadata:\n      labels: {app: two}\n    spec:\n      containers: [{name: c, image: busybox}]\n"), 0o644)
	r = s.kubectl("apply", "-f", bad2)
	if r.err == nil || !strings.Contains(r.stderr, "metadata.name") || !strings.Contains(r.stderr, "spec.template.metadata.labels") {
		t.Errorf("invalid deployment: %s", r)
	}

	// delete, with and without orphaning.
	out = s.mustKubectl("delete", "configmap", "web-config", "-n", "shop")
	contains(t, "delete", out, `configmap "web-config" deleted`)
	out = s.mustKubectl("delete", "deployment", "hello", "-n", "gen", "--cascade=orphan")
	contains(t, "delete --cascade=orphan", out, `deployment.apps "hello" deleted`)
	r = s.kubectl("get", "deployment", "hello", "-n", "gen")
	if r.err == nil || !strings.Contains(r.stderr, "NotFound") {
		t.Errorf("deleted deployment still there: %s", r)
	}
	// Deleting a namespace deletes its content, then the namespace.
	s.mustKubectl("delete", "namespace", "gen", "--wait=true", "--timeout=60s")
	r = s.kubectl("get", "namespace", "gen")
	if r.err == nil {
		t.Errorf("namespace gen still exists: %s", r)
	}
}

func TestKubectlGetWatchPrintsUpdates(t *testing.T) {
	s := startServer(t)
	s.mustKubectl("create", "configmap", "watched", "--from-literal=a=1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, skiffBin, "kubectl", "get", "configmaps", "-w", "-o", "custom-columns=NAME:.metadata.name,A:.data.a")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig(), "HOME="+s.dataDir, "XDG_CACHE_HOME="+cacheDir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(want string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("watch ended before %q", want)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no line with %q", want)
			}
		}
	}
	waitLine("watched")
	s.mustKubectl("patch", "configmap", "watched", "--type=merge", "-p", `{"data":{"a":"changed-meanwhile"}}`)
	waitLine("changed-meanwhile")
	_ = io.Discard
}
