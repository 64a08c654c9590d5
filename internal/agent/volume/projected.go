package volume

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// defaultTokenSeconds is the API's default expirationSeconds of a
// serviceAccountToken projection.
const defaultTokenSeconds = 3600

// setupProjected writes a projected volume, every source into one directory,
// on a tmpfs as under the kubelet. A later source's file wins a path two
// sources share.
func (m *Manager) setupProjected(ctx context.Context, pod *corev1.Pod, name string, src *corev1.ProjectedVolumeSource) (string, error) {
	mode := modeOr(src.DefaultMode)
	payload := map[string]file{}
	var errs []error
	for i := range src.Sources {
		s := &src.Sources[i]
		var files map[string]file
		var err error
		switch {
		case s.ConfigMap != nil:
			files, err = m.configMapFiles(ctx, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, mode, s.ConfigMap.Optional)
		case s.Secret != nil:
			files, err = m.secretFiles(ctx, pod.Namespace, s.Secret.Name, s.Secret.Items, mode, s.Secret.Optional)
		case s.DownwardAPI != nil:
			files, err = m.downwardAPIFiles(pod, s.DownwardAPI.Items, mode)
		case s.ServiceAccountToken != nil:
			files, err = m.tokenFile(ctx, pod, s.ServiceAccountToken, mode)
		case setField(s) != "":
			err = fmt.Errorf("projected source %s is not supported", setField(s))
		default:
			err = errors.New("projected source without a type")
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		maps.Copy(payload, files)
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return m.write(pod, pluginProjected, name, true, payload)
}

// tokenFile is the file of a serviceAccountToken projection. Its mode is the
// volume's, or 0600 with a fsGroup, which then makes it 0640: readable by
// the pod's group, not by everyone.
func (m *Manager) tokenFile(ctx context.Context, pod *corev1.Pod, p *corev1.ServiceAccountTokenProjection, mode int32) (map[string]file, error) {
	seconds := int64(defaultTokenSeconds)
	if p.ExpirationSeconds != nil {
		seconds = *p.ExpirationSeconds
	}
	if fsGroup(pod) != nil {
		mode = 0o600
	}
	tok, err := m.token(ctx, pod, p.Audience, seconds)
	if err != nil {
		return nil, fmt.Errorf("service account token (audience %q): %w", p.Audience, err)
	}
	return map[string]file{p.Path: {[]byte(tok), os.FileMode(mode)}}, nil
}

// tokenKey names a pod's token for one audience and lifetime.
type tokenKey struct {
	pod      types.UID
	audience string
	seconds  int64
}

// token is a token and when it was issued.
type token struct {
	value  string
	issued time.Time
}

// token returns a token for pod, a cached one while it is fresh. Like the
// kubelet's token manager it asks for a new one once 80% of the lifetime or
// 24 hours have passed, so the rewrite on every sync costs no TokenRequest.
func (m *Manager) token(ctx context.Context, pod *corev1.Pod, audience string, seconds int64) (string, error) {
	k := tokenKey{pod.UID, audience, seconds}
	now := m.clock()
	m.mu.Lock()
	t, ok := m.tokens[k]
	m.mu.Unlock()
	refresh := min(time.Duration(seconds)*time.Second*8/10, 24*time.Hour)
	if ok && now.Before(t.issued.Add(refresh)) {
		return t.value, nil
	}
	v, err := m.Source.ServiceAccountToken(ctx, pod, audience, seconds)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens == nil {
		m.tokens = map[tokenKey]token{}
	}
	m.tokens[k] = token{v, now}
	return v, nil
}

// forgetTokens drops the cached tokens of pod uid.
func (m *Manager) forgetTokens(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.tokens {
		if k.pod == uid {
			delete(m.tokens, k)
		}
	}
}

// clock is the current time.
func (m *Manager) clock() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}
