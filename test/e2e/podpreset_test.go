package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// presetManifest is a PodPreset for pods labelled role: frontend.
const presetManifest = `apiVersion: settings.k8s.io/v1alpha1
kind: PodPreset
metadata:
  name: allow-database
spec:
  selector:
    matchLabels:
      role: frontend
  env:
  - name: DB_PORT
    value: "6379"
  volumeMounts:
  - mountPath: /cache
    name: cache-volume
  volumes:
  - name: cache-volume
    emptyDir: {}
`

// runPodFor creates a pod running script, waits for it to succeed, and
// returns the pod as stored and its output.
func runPodFor(t *testing.T, c kubernetes.Interface, pod *corev1.Pod) (*corev1.Pod, string) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitPod(t, c, "default", pod.Name, 60*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	out, err := c.CoreV1().Pods("default").GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return got, string(out)
}

func TestPodPresetsInjectIntoMatchingPodsOnly(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()
	if r := s.kubectlIn(presetManifest, nil, "apply", "-f", "-"); r.err != nil || !strings.Contains(r.stdout, "podpreset.settings.k8s.io/allow-database created") {
		t.Fatalf("apply the preset: %s", r)
	}
	const script = `echo "DB_PORT=$DB_PORT"; grep -c ' /cache ' /proc/self/mountinfo || true`

	frontend := shPod("frontend", script, corev1.RestartPolicyNever)
	frontend.Labels = map[string]string{"role": "frontend"}
	got, out := runPodFor(t, c, frontend)
	if !strings.Contains(out, "DB_PORT=6379\n1\n") {
		t.Errorf("inside the frontend pod: %q, want the preset's env and mount", out)
	}
	if v, ok := got.Annotations["podpreset.admission.kubernetes.io/podpreset-allow-database"]; !ok || v == "" {
		t.Errorf("annotations %v, want the preset's with its resourceVersion", got.Annotations)
	}

	backend := shPod("backend", script, corev1.RestartPolicyNever)
	backend.Labels = map[string]string{"role": "backend"}
	got, out = runPodFor(t, c, backend)
	if !strings.Contains(out, "DB_PORT=\n0\n") || len(got.Spec.Volumes) != 1 {
		t.Errorf("a non-matching pod changed: %q, volumes %v", out, got.Spec.Volumes)
	}

	excluded := shPod("excluded", script, corev1.RestartPolicyNever)
	excluded.Labels = map[string]string{"role": "frontend"}
	excluded.Annotations = map[string]string{"podpreset.admission.kubernetes.io/exclude": "true"}
	if _, out = runPodFor(t, c, excluded); !strings.Contains(out, "DB_PORT=\n0\n") {
		t.Errorf("an excluded pod got the preset: %q", out)
	}

	// A second preset that sets DB_PORT otherwise: neither applies, and a
	// Warning event says why.
	conflicting := strings.NewReplacer("allow-database", "other-port", `"6379"`, `"6380"`, "cache-volume", "other-volume", "/cache", "/other").Replace(presetManifest)
	if r := s.kubectlIn(conflicting, nil, "apply", "-f", "-"); r.err != nil {
		t.Fatalf("apply the second preset: %s", r)
	}
	clash := shPod("clash", script, corev1.RestartPolicyNever)
	clash.Labels = map[string]string{"role": "frontend"}
	got, out = runPodFor(t, c, clash)
	if !strings.Contains(out, "DB_PORT=\n0\n") || len(got.Annotations) != 0 && got.Annotations["podpreset.admission.kubernetes.io/podpreset-allow-database"] != "" {
		t.Errorf("conflicting presets were applied: %q, annotations %v", out, got.Annotations)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=clash,reason=PodPresetConflict"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs.Items) > 0 {
			if e := evs.Items[0]; e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, "DB_PORT") {
				t.Errorf("conflict event %s: %s", e.Type, e.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no PodPresetConflict event for the clashing pod")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// An invalid preset: a mount of a volume it does not have.
	invalid := strings.Replace(strings.Replace(presetManifest, "allow-database", "broken", 1), "name: cache-volume\n    emptyDir", "name: elsewhere\n    emptyDir", 1)
	r := s.kubectlIn(invalid, nil, "apply", "-f", "-")
	if r.err == nil || !strings.Contains(r.stderr, "is invalid") {
		t.Errorf("an invalid preset was not refused: %s", r)
	}
}
