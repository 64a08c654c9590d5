package admission

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/internal/apiserver"

	settingsv1alpha1 "github.com/skiff-sh/skiff/pkg/apis/settings/v1alpha1"
)

func preset(name string, spec settingsv1alpha1.PodPresetSpec) *settingsv1alpha1.PodPreset {
	return &settingsv1alpha1.PodPreset{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "7"}, Spec: spec}
}

func presetPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"role": "frontend"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init"}},
			Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{{Name: "MODE", Value: "prod"}},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		}}
}

var cacheVolume = corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}

func TestPresetsInjectIntoEveryContainerAndAnnotate(t *testing.T) {
	a := preset("a", settingsv1alpha1.PodPresetSpec{
		Env:          []corev1.EnvVar{{Name: "DB", Value: "db:5432"}, {Name: "MODE", Value: "prod"}}, // MODE: an identical duplicate
		EnvFrom:      []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		Volumes:      []corev1.Volume{cacheVolume},
		VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}}})
	b := preset("b", settingsv1alpha1.PodPresetSpec{Env: []corev1.EnvVar{{Name: "DB", Value: "db:5432"}, {Name: "TZ", Value: "UTC"}}})
	got, err := applyPresets(presetPod(), []*settingsv1alpha1.PodPreset{a, b})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(got.Spec.InitContainers, got.Spec.Containers...) {
		var env []string
		for _, e := range c.Env {
			env = append(env, e.Name+"="+e.Value)
		}
		// The app's own MODE stays first; the preset's equal one is dropped.
		want := "DB=db:5432,MODE=prod,TZ=UTC"
		if c.Name == "app" {
			want = "MODE=prod,DB=db:5432,TZ=UTC"
		}
		if strings.Join(env, ",") != want {
			t.Errorf("%s env %v, want %s", c.Name, env, want)
		}
		if len(c.EnvFrom) != 1 || c.VolumeMounts[len(c.VolumeMounts)-1].MountPath != "/cache" {
			t.Errorf("%s envFrom %v mounts %v", c.Name, c.EnvFrom, c.VolumeMounts)
		}
	}
	if len(got.Spec.Volumes) != 2 || got.Spec.Volumes[1].Name != "cache" {
		t.Errorf("volumes %v", got.Spec.Volumes)
	}
	if got.Annotations["podpreset.admission.kubernetes.io/podpreset-a"] != "7" || got.Annotations["podpreset.admission.kubernetes.io/podpreset-b"] != "7" {
		t.Errorf("annotations %v", got.Annotations)
	}
}

func TestAnyConflictAppliesNoPreset(t *testing.T) {
	for name, presets := range map[string][]*settingsv1alpha1.PodPreset{
		"env against the pod's": {preset("a", settingsv1alpha1.PodPresetSpec{Env: []corev1.EnvVar{{Name: "MODE", Value: "dev"}}})},
		"env between presets": {preset("a", settingsv1alpha1.PodPresetSpec{Env: []corev1.EnvVar{{Name: "X", Value: "1"}}}),
			preset("b", settingsv1alpha1.PodPresetSpec{Env: []corev1.EnvVar{{Name: "X", Value: "2"}}})},
		"volume": {preset("a", settingsv1alpha1.PodPresetSpec{Volumes: []corev1.Volume{{Name: "data",
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv"}}}}})},
		"mount path": {preset("a", settingsv1alpha1.PodPresetSpec{Volumes: []corev1.Volume{cacheVolume},
			VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/data"}}})},
	} {
		if _, err := applyPresets(presetPod(), presets); err == nil {
			t.Errorf("%s: no conflict found", name)
		}
	}
}

// What a preset adds is validated with the pod, as kube-apiserver
// validates after mutating admission: a preset stored without validation
// (by an older server, or straight into etcd) cannot make an invalid pod.
func TestAPodMadeInvalidByAPresetIsRefused(t *testing.T) {
	chain, st := newChain()
	bad := preset("bad", settingsv1alpha1.PodPresetSpec{Env: []corev1.EnvVar{{Name: "1=bad", Value: "x"}}})
	bad.Namespace = "default"
	st.objects["/registry/settings.k8s.io/podpresets/default/bad"] = bad
	st.lists = map[string][]runtime.Object{"/registry/settings.k8s.io/podpresets/default/": {bad}}
	pod := newPod(func(p *corev1.Pod) { p.Labels = map[string]string{"role": "frontend"} })
	err := chain.Admit(context.Background(), apiserver.Create, podsResource, pod, nil)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "env[0].name") {
		t.Fatalf("error = %v, want 422 naming the injected env var", err)
	}
}
