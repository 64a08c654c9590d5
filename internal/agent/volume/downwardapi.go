package volume

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// setupDownwardAPI writes a downwardAPI volume, on a tmpfs as under the
// kubelet.
func (m *Manager) setupDownwardAPI(pod *corev1.Pod, name string, src *corev1.DownwardAPIVolumeSource) (string, error) {
	payload, err := m.downwardAPIFiles(pod, src.Items, modeOr(src.DefaultMode))
	if err != nil {
		return "", err
	}
	return m.write(pod, pluginDownwardAPI, name, true, payload)
}

// downwardAPIFiles renders items from pod, each file as the kubelet writes it.
func (m *Manager) downwardAPIFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode int32) (map[string]file, error) {
	payload := make(map[string]file, len(items))
	var errs []error
	for _, it := range items {
		var value string
		var err error
		switch {
		case it.FieldRef != nil:
			value, err = podField(pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			value, err = m.containerResource(pod, it.ResourceFieldRef)
		default:
			err = errors.New("needs fieldRef or resourceFieldRef")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("downwardAPI %s: %w", it.Path, err))
			continue
		}
		payload[it.Path] = file{[]byte(value), os.FileMode(modeOrDefault(it.Mode, mode))}
	}
	return payload, errors.Join(errs...)
}

// podField is the value of a fieldRef path. metadata.labels and
// metadata.annotations take a ['key'] subscript for one value.
func podField(pod *corev1.Pod, path string) (string, error) {
	if field, key, ok := splitSubscript(path); ok {
		var m map[string]string
		check := key
		switch field {
		case "metadata.labels":
			m = pod.Labels
		case "metadata.annotations":
			m = pod.Annotations
			check = strings.ToLower(key) // as the API validates annotation keys
		default:
			return "", fmt.Errorf("fieldPath %q does not take a subscript", path)
		}
		if errs := validation.IsQualifiedName(check); len(errs) > 0 {
			return "", fmt.Errorf("fieldPath %q: invalid key: %s", path, strings.Join(errs, "; "))
		}
		return m[key], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	// The API accepts these for environment variables only; they are
	// rendered here too for pods that were not validated.
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	case "status.hostIP":
		return pod.Status.HostIP, nil
	}
	return "", fmt.Errorf("fieldPath %q is not supported", path)
}

// splitSubscript splits "metadata.labels['key']" into its field and key.
func splitSubscript(path string) (field, key string, ok bool) {
	s, ok := strings.CutSuffix(path, "']")
	if !ok {
		return path, "", false
	}
	field, key, ok = strings.Cut(s, "['")
	if !ok || field == "" {
		return path, "", false
	}
	return field, key, true
}

// formatMap renders labels or annotations as the kubelet does: key="value"
// lines sorted by key, values quoted as Go quotes strings, no final newline.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b []byte
	for i, k := range keys {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, k...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, m[k])
	}
	return string(b)
}

// containerResource is a container's limit or request in units of the
// divisor, rounded up, as the kubelet renders it. An unset limit is the
// node's allocatable amount.
func (m *Manager) containerResource(pod *corev1.Pod, ref *corev1.ResourceFieldSelector) (string, error) {
	c := findContainer(pod, ref.ContainerName)
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef: container %q not found", ref.ContainerName)
	}
	kind, name, _ := strings.Cut(ref.Resource, ".")
	rn := corev1.ResourceName(name)
	hugePages := strings.HasPrefix(name, corev1.ResourceHugePagesPrefix)
	switch rn {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
	default:
		if !hugePages {
			return "", fmt.Errorf("resourceFieldRef: resource %q is not supported", ref.Resource)
		}
	}
	limit, hasLimit := c.Resources.Limits[rn]
	var q resource.Quantity
	switch kind {
	case "limits":
		q = limit
		// Hugepages are never overcommitted, so they always have a limit.
		if (!hasLimit || q.IsZero()) && !hugePages {
			q = m.allocatable()[rn]
		}
	case "requests":
		var ok bool
		if q, ok = c.Resources.Requests[rn]; !ok && hasLimit {
			q = limit // the API defaults an unset request to the limit
		}
	default:
		return "", fmt.Errorf("resourceFieldRef: resource %q is not supported", ref.Resource)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	var v float64
	if rn == corev1.ResourceCPU {
		v = float64(q.MilliValue()) / float64(divisor.MilliValue())
	} else {
		v = float64(q.Value()) / float64(divisor.Value())
	}
	return strconv.FormatInt(int64(math.Ceil(v)), 10), nil
}

// findContainer finds a container or init container of pod by name.
func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	return nil
}
