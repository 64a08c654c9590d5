// Package volume materialises a Pod's volumes on the host, as the kubelet's
// volume plugins do, so that the agent can bind-mount them into containers.
//
// On every sync of a pod the agent calls Manager.Setup before it creates or
// starts containers, and bind-mounts each returned host path (read-only when
// ReadOnly says so). Setup is idempotent: it refreshes the contents of
// configMap, secret, downwardAPI and projected volumes and leaves emptyDirs
// alone. When the pod's containers are gone the agent calls Teardown, and at
// start-up it compares Pods with the pods it still runs to clean up the rest.
//
// A pod's volumes live under Root/<pod UID>/volumes/<plugin>/<volume name>,
// with the kubelet's plugin directory names (kubernetes.io~configmap, ...).
// secret, downwardAPI and projected volumes, and emptyDirs of medium Memory,
// are tmpfs mounts, so their contents never reach the disk.
package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Source fetches what volumes refer to; the agent implements it with
// client-go. ConfigMap and Secret return an error for which
// k8s.io/apimachinery/pkg/api/errors.IsNotFound is true when the object does
// not exist: an optional volume then comes up empty instead of failing.
type Source interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	// ServiceAccountToken returns a token for the pod's service account
	// (TokenRequest), bound to the pod. An empty audience means the API
	// server's own.
	ServiceAccountToken(ctx context.Context, pod *corev1.Pod, audience string, expirationSeconds int64) (string, error)
}

// Manager sets up and tears down the volumes of the pods on this node. Its
// exported fields are configuration, set before first use; Setup and Teardown
// of one pod must not run concurrently, different pods may.
type Manager struct {
	Root   string // <data-dir>/agent/pods; a pod's volumes go under Root/<pod UID>/volumes/<plugin>/<volume name>
	Source Source
	Claims ClaimSource // for persistentVolumeClaim volumes; nil refuses them
	CACert []byte      // the cluster CA, served as configMap kube-root-ca.crt (key ca.crt) when the API has none
	// Allocatable is the node's allocatable resources. As in the kubelet, the
	// downward API reports it for a container limit that is not set, and it
	// caps the size of memory-backed volumes. Nil means the host's CPUs and
	// memory.
	Allocatable corev1.ResourceList

	now    func() time.Time // for tests; nil means time.Now
	mu     sync.Mutex
	tokens map[tokenKey]token // service account tokens by pod, reused until near expiry
}

// Plugin directory names, the kubelet's, so the layout is familiar.
const (
	pluginEmptyDir    = "kubernetes.io~empty-dir"
	pluginConfigMap   = "kubernetes.io~configmap"
	pluginSecret      = "kubernetes.io~secret"
	pluginDownwardAPI = "kubernetes.io~downward-api"
	pluginProjected   = "kubernetes.io~projected"
)

// Setup makes every volume of pod and returns each volume's host path by
// volume name. It is idempotent (called again on every pod sync): it refreshes
// configMap, secret, downwardAPI and projected contents and never wipes an
// emptyDir. It tries every volume and the error names each that failed and
// why, a missing non-optional configMap or secret included; on error the map
// is nil.
func (m *Manager) Setup(ctx context.Context, pod *corev1.Pod) (map[string]string, error) {
	if err := checkName(string(pod.UID)); err != nil {
		return nil, fmt.Errorf("set up volumes of pod %s/%s: uid: %w", pod.Namespace, pod.Name, err)
	}
	// The pod's directory marks volumes set up once already: a pod is
	// refused a claim being deleted only before it first started.
	podDir := filepath.Join(m.Root, string(pod.UID))
	_, statErr := os.Stat(podDir)
	first := errors.Is(statErr, os.ErrNotExist)
	paths := make(map[string]string, len(pod.Spec.Volumes))
	var errs []error
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		p, err := m.setup(ctx, pod, v, first)
		if err != nil {
			errs = append(errs, fmt.Errorf("volume %q: %w", v.Name, err))
			continue
		}
		paths[v.Name] = p
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("set up volumes of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if first {
		if err := os.MkdirAll(podDir, 0o750); err != nil {
			return nil, fmt.Errorf("set up volumes of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	return paths, nil
}

// setup makes one volume and returns its host path; first is true until
// the pod's volumes were once all set up.
func (m *Manager) setup(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, first bool) (string, error) {
	if err := checkName(v.Name); err != nil {
		return "", fmt.Errorf("name: %w", err)
	}
	src := &v.VolumeSource
	switch {
	case src.HostPath != nil:
		return setupHostPath(src.HostPath)
	case src.EmptyDir != nil:
		return m.setupEmptyDir(pod, v.Name, src.EmptyDir)
	case src.ConfigMap != nil:
		return m.setupConfigMap(ctx, pod, v.Name, src.ConfigMap)
	case src.Secret != nil:
		return m.setupSecret(ctx, pod, v.Name, src.Secret)
	case src.DownwardAPI != nil:
		return m.setupDownwardAPI(pod, v.Name, src.DownwardAPI)
	case src.Projected != nil:
		return m.setupProjected(ctx, pod, v.Name, src.Projected)
	case src.PersistentVolumeClaim != nil:
		return m.setupClaim(ctx, pod, src.PersistentVolumeClaim, first)
	}
	if t := setField(src); t != "" {
		return "", fmt.Errorf("volume type %s is not supported", t)
	}
	// The API server defaults a volume without a source to an emptyDir.
	return m.setupEmptyDir(pod, v.Name, &corev1.EmptyDirVolumeSource{})
}

// ReadOnly reports whether containers must mount v read-only whatever their
// volumeMounts say: the kubelet forces it for the volumes it writes itself
// (configMap, secret, downwardAPI, projected), so a container cannot change
// what the next refresh compares against, and for a claim the pod asks
// for read-only.
func ReadOnly(v corev1.Volume) bool {
	s := v.VolumeSource
	return s.ConfigMap != nil || s.Secret != nil || s.DownwardAPI != nil || s.Projected != nil ||
		s.PersistentVolumeClaim != nil && s.PersistentVolumeClaim.ReadOnly
}

// Teardown unmounts every mount under Root/<uid> (the tmpfs volumes) and
// removes the directory. It is a no-op for a pod without one.
func (m *Manager) Teardown(uid types.UID) error {
	if err := checkName(string(uid)); err != nil {
		return fmt.Errorf("tear down volumes: uid: %w", err)
	}
	m.forgetTokens(uid)
	dir := filepath.Join(m.Root, string(uid))
	if err := unmountAll(dir); err != nil {
		return fmt.Errorf("tear down volumes of pod %s: %w", uid, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("tear down volumes of pod %s: %w", uid, err)
	}
	return nil
}

// Pods reports the UIDs of the pods that have a directory under Root, so the
// agent can tear down those of pods that are gone.
func (m *Manager) Pods() ([]types.UID, error) {
	entries, err := os.ReadDir(m.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pod volume directories: %w", err)
	}
	var uids []types.UID
	for _, e := range entries {
		if e.IsDir() {
			uids = append(uids, types.UID(e.Name()))
		}
	}
	return uids, nil
}

// volumeDir is where the volume name of plugin lives for pod uid.
func (m *Manager) volumeDir(uid types.UID, plugin, name string) string {
	return filepath.Join(m.Root, string(uid), "volumes", plugin, name)
}

// checkName refuses a pod UID or volume name that is not a single path
// element: joined to Root it must not name Root itself or escape it.
func checkName(s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("%q is not a valid path element", s)
	}
	return nil
}

// setField returns the JSON name of the first non-nil pointer field of the
// struct *p: the type of a VolumeSource or VolumeProjection, which are
// unions. Reflection keeps the "not supported" error right for types added
// to the API later.
func setField(p any) string {
	v := reflect.ValueOf(p).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return ""
}
