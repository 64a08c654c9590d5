package volume

import (
	"context"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// defaultMode is the API's default for defaultMode in configMap, secret,
// downwardAPI and projected volumes.
const defaultMode = 0o644

// rootCAConfigMap is the configMap each namespace gets with the cluster CA.
const rootCAConfigMap = "kube-root-ca.crt"

// setupConfigMap writes a configMap volume: a directory on disk, as under the
// kubelet.
func (m *Manager) setupConfigMap(ctx context.Context, pod *corev1.Pod, name string, src *corev1.ConfigMapVolumeSource) (string, error) {
	payload, err := m.configMapFiles(ctx, pod.Namespace, src.Name, src.Items, modeOr(src.DefaultMode), src.Optional)
	if err != nil {
		return "", err
	}
	return m.write(pod, pluginConfigMap, name, false, payload)
}

// setupSecret writes a secret volume, on a tmpfs so secrets never touch disk.
func (m *Manager) setupSecret(ctx context.Context, pod *corev1.Pod, name string, src *corev1.SecretVolumeSource) (string, error) {
	payload, err := m.secretFiles(ctx, pod.Namespace, src.SecretName, src.Items, modeOr(src.DefaultMode), src.Optional)
	if err != nil {
		return "", err
	}
	return m.write(pod, pluginSecret, name, true, payload)
}

// write makes the directory of volume name of plugin, on a tmpfs for memory,
// and makes it show payload.
func (m *Manager) write(pod *corev1.Pod, plugin, name string, memory bool, payload map[string]file) (string, error) {
	dir := m.volumeDir(pod.UID, plugin, name)
	var err error
	if memory {
		_, err = mountTmpfs(dir, m.memorySize(pod, nil))
	} else {
		_, err = makeDir(dir)
	}
	if err != nil {
		return "", err
	}
	if err := writeAtomic(dir, payload, fsGroup(pod)); err != nil {
		return "", err
	}
	return dir, nil
}

// configMapFiles fetches a configMap and maps its data and binaryData to
// files: every key under its own name, or with items only those keys, at
// their paths. A configMap that does not exist, or a key an item names that
// is missing, is an error unless the source is optional. kube-root-ca.crt
// falls back to CACert when the API has none.
func (m *Manager) configMapFiles(ctx context.Context, namespace, name string, items []corev1.KeyToPath, mode int32, optionalp *bool) (map[string]file, error) {
	optional := optionalp != nil && *optionalp
	cm, err := m.Source.ConfigMap(ctx, namespace, name)
	switch {
	case apierrors.IsNotFound(err) && name == rootCAConfigMap && len(m.CACert) > 0:
		cm = &corev1.ConfigMap{Data: map[string]string{"ca.crt": string(m.CACert)}}
	case apierrors.IsNotFound(err) && optional:
		cm = &corev1.ConfigMap{}
	case err != nil:
		return nil, fmt.Errorf("configmap %s/%s: %w", namespace, name, err)
	}
	payload := make(map[string]file, len(cm.Data)+len(cm.BinaryData))
	if len(items) == 0 {
		for k, v := range cm.Data {
			payload[k] = file{[]byte(v), os.FileMode(mode)}
		}
		for k, v := range cm.BinaryData {
			payload[k] = file{v, os.FileMode(mode)}
		}
		return payload, nil
	}
	for _, it := range items {
		var data []byte
		if v, ok := cm.Data[it.Key]; ok {
			data = []byte(v)
		} else if v, ok := cm.BinaryData[it.Key]; ok {
			data = v
		} else if optional {
			continue
		} else {
			return nil, fmt.Errorf("configmap %s/%s has no key %q", namespace, name, it.Key)
		}
		payload[it.Path] = file{data, os.FileMode(modeOrDefault(it.Mode, mode))}
	}
	return payload, nil
}

// secretFiles is configMapFiles for a secret.
func (m *Manager) secretFiles(ctx context.Context, namespace, name string, items []corev1.KeyToPath, mode int32, optionalp *bool) (map[string]file, error) {
	optional := optionalp != nil && *optionalp
	s, err := m.Source.Secret(ctx, namespace, name)
	switch {
	case apierrors.IsNotFound(err) && optional:
		s = &corev1.Secret{}
	case err != nil:
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
	}
	payload := make(map[string]file, len(s.Data))
	if len(items) == 0 {
		for k, v := range s.Data {
			payload[k] = file{v, os.FileMode(mode)}
		}
		return payload, nil
	}
	for _, it := range items {
		v, ok := s.Data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("secret %s/%s has no key %q", namespace, name, it.Key)
		}
		payload[it.Path] = file{v, os.FileMode(modeOrDefault(it.Mode, mode))}
	}
	return payload, nil
}

// modeOr is a volume's defaultMode, or the API's default when unset.
func modeOr(m *int32) int32 {
	return modeOrDefault(m, defaultMode)
}

// modeOrDefault is *m, or def when m is nil.
func modeOrDefault(m *int32, def int32) int32 {
	if m != nil {
		return *m
	}
	return def
}
