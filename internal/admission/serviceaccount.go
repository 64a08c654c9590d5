package admission

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/skiff-sh/skiff/internal/store"
)

// Names the ServiceAccount admission plugin uses, as Kubernetes spells them.
const (
	// DefaultServiceAccountName is the service account of a pod that names none.
	DefaultServiceAccountName = "default"
	// ServiceAccountVolumeName prefixes the projected volume that carries
	// a pod's API credentials: kube-api-access-<5 random characters>.
	ServiceAccountVolumeName = "kube-api-access"
	// DefaultAPITokenMountPath is where every container finds the token,
	// the cluster CA and its namespace.
	DefaultAPITokenMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// EnforceMountableSecretsAnnotation, "true" on a service account,
	// limits its pods to the secrets it lists.
	EnforceMountableSecretsAnnotation = "kubernetes.io/enforce-mountable-secrets"
	// rootCAConfigMap is the ConfigMap every namespace gets with the
	// cluster CA (internal/controller/serviceaccount keeps it).
	rootCAConfigMap = "kube-root-ca.crt"
	// tokenExpirationSeconds is what the volume's token projection asks
	// for: an hour and seven seconds, the value the API server extends.
	tokenExpirationSeconds = 60*60 + 7
	// defaultLookups is how often a missing "default" service account is
	// looked up before the pod is refused: its controller may be about to
	// create it in a namespace made a moment ago.
	defaultLookups = 10
)

// serviceAccounts is Kubernetes' ServiceAccount admission plugin for pod
// creates: it defaults the service account, refuses a pod whose account
// does not exist, mounts the API credentials volume unless automounting is
// turned off, copies the account's image pull secrets and, when the account
// asks for it, limits the secrets the pod may reference.
type serviceAccounts struct {
	store Store
	// retryInterval is the wait between lookups of the default account.
	retryInterval func() time.Duration
	// volumeSuffix names a new credentials volume.
	volumeSuffix func() string
}

func newServiceAccounts(st Store) *serviceAccounts {
	return &serviceAccounts{
		store: st,
		// Kubernetes waits 100 to 200ms between lookups.
		retryInterval: func() time.Duration { return time.Duration(100+mathrand.IntN(100)) * time.Millisecond },
		volumeSuffix:  func() string { return utilrand.String(5) },
	}
}

func (p *serviceAccounts) admit(ctx context.Context, pod *corev1.Pod) error {
	// A mirror pod's spec must stay as its node wrote it: nothing is added,
	// and it may reference neither service accounts nor secrets.
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return validateMirrorPod(pod)
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = DefaultServiceAccountName
	}
	pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
	sa, err := p.get(ctx, pod.Namespace, pod.Spec.ServiceAccountName)
	if err != nil {
		return forbidden(pod, fmt.Errorf("error looking up service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err))
	}
	if shouldAutomount(sa, pod) {
		mountServiceAccountToken(pod, ServiceAccountVolumeName+"-"+p.volumeSuffix())
	}
	if len(pod.Spec.ImagePullSecrets) == 0 && len(sa.ImagePullSecrets) > 0 {
		pod.Spec.ImagePullSecrets = slices.Clone(sa.ImagePullSecrets)
	}
	if enforceMountableSecrets(sa) {
		if err := limitSecretReferences(sa, pod); err != nil {
			return forbidden(pod, err)
		}
	}
	return nil
}

// get reads a service account. The default one is looked up several times
// before it counts as missing.
func (p *serviceAccounts) get(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	lookups := 1
	if name == DefaultServiceAccountName {
		lookups = defaultLookups
	}
	wait := p.retryInterval()
	for i := range lookups {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
		obj, err := p.store.Get(ctx, "/registry/serviceaccounts/"+namespace+"/"+name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sa, ok := obj.(*corev1.ServiceAccount)
		if !ok {
			return nil, fmt.Errorf("service account %s/%s is stored as a %T", namespace, name, obj)
		}
		return sa, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccount"}, name)
}

func forbidden(pod *corev1.Pod, err error) error {
	return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, pod.Name, err)
}

// shouldAutomount: the pod's automountServiceAccountToken wins, then the
// account's; unset on both means mount.
func shouldAutomount(sa *corev1.ServiceAccount, pod *corev1.Pod) bool {
	if pod.Spec.AutomountServiceAccountToken != nil {
		return *pod.Spec.AutomountServiceAccountToken
	}
	if sa.AutomountServiceAccountToken != nil {
		return *sa.AutomountServiceAccountToken
	}
	return true
}

// mountServiceAccountToken mounts the credentials volume read-only at
// DefaultAPITokenMountPath in every init container and container that has
// nothing mounted there, and adds the volume (named newName unless the pod
// already has a kube-api-access- volume) when one of them needs it.
func mountServiceAccountToken(pod *corev1.Pod, newName string) {
	name, have := "", false
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, ServiceAccountVolumeName+"-") {
			name, have = v.Name, true
			break
		}
	}
	if name == "" {
		name = newName
	}
	mount := corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: DefaultAPITokenMountPath}
	needed := false
	for _, containers := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range containers {
			c := &containers[i]
			if slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == DefaultAPITokenMountPath }) {
				continue
			}
			c.VolumeMounts = append(c.VolumeMounts, mount)
			needed = true
		}
	}
	if needed && !have {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: tokenVolumeSource()}})
	}
}

// tokenVolumeSource is the projected volume with a pod's API credentials:
// a token bound to the pod, the cluster CA and the pod's namespace.
func tokenVolumeSource() *corev1.ProjectedVolumeSource {
	return &corev1.ProjectedVolumeSource{
		// Set explicitly, as Kubernetes does, so the stored pod is what
		// defaulting would make of it.
		DefaultMode: new(int32(corev1.ProjectedVolumeSourceDefaultMode)),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: new(int64(tokenExpirationSeconds))}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfigMap},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{
				Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}},
			}},
		},
	}
}

func enforceMountableSecrets(sa *corev1.ServiceAccount) bool {
	v, ok := sa.Annotations[EnforceMountableSecretsAnnotation]
	if !ok {
		return false
	}
	enforce, _ := strconv.ParseBool(v)
	return enforce
}

// limitSecretReferences refuses a pod that uses a secret its service account
// does not list, with Kubernetes' messages.
func limitSecretReferences(sa *corev1.ServiceAccount, pod *corev1.Pod) error {
	mountable := map[string]bool{}
	for _, s := range sa.Secrets {
		mountable[s.Name] = true
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil && !mountable[v.Secret.SecretName] {
			return fmt.Errorf("volume with secret.secretName=\"%s\" is not allowed because service account %s does not reference that secret", v.Secret.SecretName, sa.Name)
		}
	}
	for _, set := range []struct {
		kind       string
		containers []corev1.Container
	}{{"init container", pod.Spec.InitContainers}, {"container", pod.Spec.Containers}} {
		for _, c := range set.containers {
			for _, env := range c.Env {
				if ref := env.ValueFrom; ref != nil && ref.SecretKeyRef != nil && !mountable[ref.SecretKeyRef.Name] {
					return fmt.Errorf("%s %s with envVar %s referencing secret.secretName=\"%s\" is not allowed because service account %s does not reference that secret", set.kind, c.Name, env.Name, ref.SecretKeyRef.Name, sa.Name)
				}
			}
			for _, from := range c.EnvFrom {
				if from.SecretRef != nil && !mountable[from.SecretRef.Name] {
					return fmt.Errorf("%s %s with envFrom referencing secret.secretName=\"%s\" is not allowed because service account %s does not reference that secret", set.kind, c.Name, from.SecretRef.Name, sa.Name)
				}
			}
		}
	}
	pullable := map[string]bool{}
	for _, s := range sa.ImagePullSecrets {
		pullable[s.Name] = true
	}
	for i, s := range pod.Spec.ImagePullSecrets {
		if !pullable[s.Name] {
			return fmt.Errorf(`imagePullSecrets[%d].name="%s" is not allowed because service account %s does not reference that imagePullSecret`, i, s.Name, sa.Name)
		}
	}
	return nil
}

// validateMirrorPod refuses a mirror pod that names a service account,
// references a secret or projects a service account token.
func validateMirrorPod(pod *corev1.Pod) error {
	if pod.Spec.ServiceAccountName != "" {
		return forbidden(pod, errors.New("a mirror pod may not reference service accounts"))
	}
	if referencesSecrets(pod) {
		return forbidden(pod, errors.New("a mirror pod may not reference secrets"))
	}
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				return forbidden(pod, errors.New("a mirror pod may not use ServiceAccountToken volume projections"))
			}
		}
	}
	return nil
}

// referencesSecrets reports whether a pod uses any secret: for image pulls,
// in the environment or in a volume. (Kubernetes also looks at the secret
// references of volume plugins skiff does not run.)
func referencesSecrets(pod *corev1.Pod) bool {
	if len(pod.Spec.ImagePullSecrets) > 0 {
		return true
	}
	var envs [][]corev1.EnvVar
	var froms [][]corev1.EnvFromSource
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		envs, froms = append(envs, c.Env), append(froms, c.EnvFrom)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		envs, froms = append(envs, c.Env), append(froms, c.EnvFrom)
	}
	for _, env := range slices.Concat(envs...) {
		if env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil {
			return true
		}
	}
	for _, from := range slices.Concat(froms...) {
		if from.SecretRef != nil {
			return true
		}
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.Secret != nil:
			return true
		case v.CSI != nil && v.CSI.NodePublishSecretRef != nil:
			return true
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					return true
				}
			}
		}
	}
	return false
}
