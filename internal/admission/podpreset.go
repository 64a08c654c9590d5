package admission

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/internal/store"
	settingsv1alpha1 "github.com/skiff-sh/skiff/pkg/apis/settings/v1alpha1"
)

// PodPreset admission (settings.k8s.io/v1alpha1, which Kubernetes removed
// in 1.20 and skiff keeps), as kube-apiserver's PodPreset plugin did: on a
// pod's creation, the presets of its namespace whose selector matches its
// labels inject their env, envFrom, volumes and volume mounts into every
// container and init container. All the matching presets are checked
// together: on any conflict none is applied, the pod is admitted as it
// came, and a Warning event says why.
const (
	// presetAnnotationPrefix + a preset's name records, with its
	// resourceVersion, that it was applied.
	presetAnnotationPrefix = "podpreset.admission.kubernetes.io/podpreset-"
	// presetExcludeAnnotation "true" keeps presets off a pod.
	presetExcludeAnnotation = "podpreset.admission.kubernetes.io/exclude"
	// PodPresetConflict is the reason of the event a conflict leaves.
	PodPresetConflict = "PodPresetConflict"
)

// EventRecorder records events about objects (client-go's does).
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

type podPresets struct {
	store Store
	mu    sync.Mutex
	rec   EventRecorder // nil: a conflict leaves no event
}

func (p *podPresets) recorder() EventRecorder {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rec
}

func (p *podPresets) admit(ctx context.Context, pod *corev1.Pod) (applied bool, err error) {
	if pod.Annotations[presetExcludeAnnotation] == "true" {
		return false, nil
	}
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return false, nil
	}
	res, err := p.store.List(ctx, "/registry/settings.k8s.io/podpresets/"+pod.Namespace+"/", store.ListOptions{})
	if err != nil {
		return false, err
	}
	var matching []*settingsv1alpha1.PodPreset
	for _, obj := range res.Items {
		pp, ok := obj.(*settingsv1alpha1.PodPreset)
		if !ok {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&pp.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		matching = append(matching, pp)
	}
	if len(matching) == 0 {
		return false, nil
	}
	sort.Slice(matching, func(i, j int) bool { return matching[i].Name < matching[j].Name })
	merged, err := applyPresets(pod, matching)
	if err != nil {
		if rec := p.recorder(); rec != nil {
			names := make([]string, len(matching))
			for i, pp := range matching {
				names[i] = pp.Name
			}
			rec.Eventf(pod, corev1.EventTypeWarning, PodPresetConflict,
				"Pod presets %s were not applied: %v", strings.Join(names, ", "), err)
		}
		return false, nil
	}
	*pod = *merged
	return true, nil
}

// applyPresets returns the pod with every preset applied, or the first
// conflict: between presets, or with what the pod has.
func applyPresets(pod *corev1.Pod, presets []*settingsv1alpha1.PodPreset) (*corev1.Pod, error) {
	out := pod.DeepCopy()
	volumes, err := mergeByKey(out.Spec.Volumes, presets, "volume",
		func(pp *settingsv1alpha1.PodPreset) []corev1.Volume { return pp.Spec.Volumes },
		func(v corev1.Volume) string { return v.Name })
	if err != nil {
		return nil, err
	}
	out.Spec.Volumes = volumes
	for _, containers := range [][]corev1.Container{out.Spec.InitContainers, out.Spec.Containers} {
		for i := range containers {
			c := &containers[i]
			if c.Env, err = mergeByKey(c.Env, presets, "env",
				func(pp *settingsv1alpha1.PodPreset) []corev1.EnvVar { return pp.Spec.Env },
				func(e corev1.EnvVar) string { return e.Name }); err != nil {
				return nil, fmt.Errorf("container %s: %w", c.Name, err)
			}
			if c.VolumeMounts, err = mergeByKey(c.VolumeMounts, presets, "volume mount",
				func(pp *settingsv1alpha1.PodPreset) []corev1.VolumeMount { return pp.Spec.VolumeMounts },
				func(m corev1.VolumeMount) string { return m.Name }); err != nil {
				return nil, fmt.Errorf("container %s: %w", c.Name, err)
			}
			// Two mounts of one path conflict too, whatever their names.
			if err := uniqueMountPaths(c.VolumeMounts); err != nil {
				return nil, fmt.Errorf("container %s: %w", c.Name, err)
			}
			for _, pp := range presets {
				c.EnvFrom = append(c.EnvFrom, pp.Spec.EnvFrom...)
			}
		}
	}
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	for _, pp := range presets {
		out.Annotations[presetAnnotationPrefix+pp.Name] = pp.ResourceVersion
	}
	return out, nil
}

// mergeByKey adds what the presets bring (of) to have, by key: an entry
// equal to one already there is dropped, a different one under the same
// key is a conflict. have itself is kept as it is.
func mergeByKey[T any](have []T, presets []*settingsv1alpha1.PodPreset, what string,
	of func(*settingsv1alpha1.PodPreset) []T, key func(T) string) ([]T, error) {
	byKey := map[string]T{}
	for _, item := range have {
		byKey[key(item)] = item
	}
	out := have
	for _, pp := range presets {
		for _, item := range of(pp) {
			k := key(item)
			if prev, ok := byKey[k]; ok {
				if !reflect.DeepEqual(prev, item) {
					return nil, fmt.Errorf("%s %q of pod preset %s conflicts with another", what, k, pp.Name)
				}
				continue
			}
			byKey[k] = item
			out = append(out, item)
		}
	}
	return out, nil
}

// uniqueMountPaths refuses two different mounts on one path.
func uniqueMountPaths(mounts []corev1.VolumeMount) error {
	byPath := map[string]corev1.VolumeMount{}
	for _, m := range mounts {
		if prev, ok := byPath[m.MountPath]; ok && !reflect.DeepEqual(prev, m) {
			return fmt.Errorf("volume mounts %q and %q conflict on path %s", prev.Name, m.Name, m.MountPath)
		}
		byPath[m.MountPath] = m
	}
	return nil
}
