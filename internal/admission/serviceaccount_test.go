package admission

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/store"
)

// fakeStore holds objects by key and counts the reads of each.
type fakeStore struct {
	mu      sync.Mutex
	objects map[string]runtime.Object
	gets    map[string]int
	// onGet, when set, runs before each read.
	onGet func(key string, n int)
	// lists are what List returns, by prefix.
	lists map[string][]runtime.Object
}

func newFakeStore(objects map[string]runtime.Object) *fakeStore {
	return &fakeStore{objects: objects, gets: map[string]int{}}
}

func (f *fakeStore) Get(ctx context.Context, key string) (runtime.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets[key]++
	if f.onGet != nil {
		f.onGet(key, f.gets[key])
	}
	obj, ok := f.objects[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, store.ErrNotFound)
	}
	return obj.DeepCopyObject(), nil
}

func (f *fakeStore) List(ctx context.Context, prefix string, opts store.ListOptions) (*store.ListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &store.ListResult{Items: f.lists[prefix]}, nil
}

func serviceAccount(name string, edit func(*corev1.ServiceAccount)) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	if edit != nil {
		edit(sa)
	}
	return sa
}

// newChain is the admission chain over a store with the default namespace,
// the given service accounts in it, no wait between lookups and "abcde" as
// every volume suffix.
func newChain(accounts ...*corev1.ServiceAccount) (*Chain, *fakeStore) {
	objects := map[string]runtime.Object{"/registry/namespaces/default": &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}}
	for _, sa := range accounts {
		objects["/registry/serviceaccounts/default/"+sa.Name] = sa
	}
	st := newFakeStore(objects)
	c := New(st, netip.MustParsePrefix("10.43.0.0/16"))
	c.serviceAccounts.retryInterval = func() time.Duration { return time.Millisecond }
	c.serviceAccounts.volumeSuffix = func() string { return "abcde" }
	return c, st
}

var podsResource = func() *registry.Resource {
	for _, r := range registry.All() {
		if r.Group == "" && r.Resource == "pods" {
			return r
		}
	}
	panic("no pods resource")
}()

func newPod(edit func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if edit != nil {
		edit(p)
	}
	return p
}

func admitPod(t *testing.T, c *Chain, pod *corev1.Pod) error {
	t.Helper()
	return c.Admit(context.Background(), apiserver.Create, podsResource, pod, nil)
}

// wantVolume is the credentials volume as Kubernetes' plugin writes it.
var wantVolume = corev1.Volume{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
	DefaultMode: new(int32(0o644)),
	Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: new(int64(3607))}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
			Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
	},
}}}

var wantMount = corev1.VolumeMount{Name: "kube-api-access-abcde", ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}

func TestPodGetsTheAPICredentialsVolumeInEveryContainer(t *testing.T) {
	c, _ := newChain(serviceAccount("default", nil))
	data := corev1.VolumeMount{Name: "data", MountPath: "/data"}
	own := corev1.VolumeMount{Name: "mine", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}
	pod := newPod(func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}}
		p.Spec.Containers = []corev1.Container{
			{Name: "app", Image: "busybox", VolumeMounts: []corev1.VolumeMount{data}},
			{Name: "own", Image: "busybox", VolumeMounts: []corev1.VolumeMount{own}},
		}
		p.Spec.Volumes = []corev1.Volume{{Name: "data"}, {Name: "mine"}}
	})
	if err := admitPod(t, c, pod); err != nil {
		t.Fatal(err)
	}
	if pod.Spec.ServiceAccountName != "default" || pod.Spec.DeprecatedServiceAccount != "default" {
		t.Errorf("service account %q / %q", pod.Spec.ServiceAccountName, pod.Spec.DeprecatedServiceAccount)
	}
	if len(pod.Spec.Volumes) != 3 || !reflect.DeepEqual(pod.Spec.Volumes[2], wantVolume) {
		t.Errorf("volumes %+v", pod.Spec.Volumes)
	}
	for _, c := range []struct {
		name string
		got  []corev1.VolumeMount
		want []corev1.VolumeMount
	}{
		{"init", pod.Spec.InitContainers[0].VolumeMounts, []corev1.VolumeMount{wantMount}},
		{"app", pod.Spec.Containers[0].VolumeMounts, []corev1.VolumeMount{data, wantMount}},
		// Something mounted at the path already stays alone there.
		{"own", pod.Spec.Containers[1].VolumeMounts, []corev1.VolumeMount{own}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s mounts %+v, want %+v", c.name, c.got, c.want)
		}
	}
}

func TestCredentialsVolumeNameHasFiveRandomCharacters(t *testing.T) {
	c, _ := newChain(serviceAccount("default", nil))
	c.serviceAccounts = newServiceAccounts(c.store)
	names := map[string]bool{}
	for range 5 {
		pod := newPod(nil)
		if err := admitPod(t, c, pod); err != nil {
			t.Fatal(err)
		}
		name := pod.Spec.Volumes[0].Name
		if !regexp.MustCompile(`^kube-api-access-[a-z0-9]{5}$`).MatchString(name) {
			t.Errorf("volume name %q", name)
		}
		names[name] = true
	}
	if len(names) < 2 {
		t.Errorf("five pods got the volume names %v", names)
	}
}

func TestAutomountServiceAccountToken(t *testing.T) {
	no, yes := new(false), new(true)
	for _, c := range []struct {
		name       string
		pod, sa    *bool
		wantVolume bool
	}{
		{"unset", nil, nil, true},
		{"off on the pod", no, nil, false},
		{"off on the account", nil, no, false},
		{"the pod wins over the account", yes, no, true},
		{"the pod's off wins too", no, yes, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			chain, _ := newChain(serviceAccount("robot", func(sa *corev1.ServiceAccount) { sa.AutomountServiceAccountToken = c.sa }))
			pod := newPod(func(p *corev1.Pod) { p.Spec.ServiceAccountName = "robot"; p.Spec.AutomountServiceAccountToken = c.pod })
			if err := admitPod(t, chain, pod); err != nil {
				t.Fatal(err)
			}
			mounted := len(pod.Spec.Containers[0].VolumeMounts) == 1
			if got := len(pod.Spec.Volumes) == 1; got != c.wantVolume || mounted != c.wantVolume {
				t.Errorf("volumes %+v mounts %+v, want mounted %v", pod.Spec.Volumes, pod.Spec.Containers[0].VolumeMounts, c.wantVolume)
			}
		})
	}
}

func TestExistingCredentialsVolumeIsReused(t *testing.T) {
	c, _ := newChain(serviceAccount("default", nil))
	pod := newPod(func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access-zzzzz", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	})
	if err := admitPod(t, c, pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Volumes) != 1 || pod.Spec.Containers[0].VolumeMounts[0].Name != "kube-api-access-zzzzz" {
		t.Errorf("volumes %+v mounts %+v", pod.Spec.Volumes, pod.Spec.Containers[0].VolumeMounts)
	}
	// No container needs it: no volume.
	pod = newPod(func(p *corev1.Pod) {
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "x", MountPath: DefaultAPITokenMountPath}}
	})
	if err := admitPod(t, c, pod); err != nil || len(pod.Spec.Volumes) != 0 {
		t.Errorf("volumes %+v %v", pod.Spec.Volumes, err)
	}
}

func TestMissingServiceAccountIsForbidden(t *testing.T) {
	c, st := newChain(serviceAccount("default", nil))
	err := admitPod(t, c, newPod(func(p *corev1.Pod) { p.Spec.ServiceAccountName = "robot" }))
	want := `pods "p" is forbidden: error looking up service account default/robot: serviceaccount "robot" not found`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	if n := st.gets["/registry/serviceaccounts/default/robot"]; n != 1 {
		t.Errorf("a named account was looked up %d times, want once", n)
	}
}

func TestDefaultServiceAccountIsWaitedFor(t *testing.T) {
	c, st := newChain()
	err := admitPod(t, c, newPod(nil))
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `error looking up service account default/default: serviceaccount "default" not found`) {
		t.Errorf("got %v", err)
	}
	if n := st.gets["/registry/serviceaccounts/default/default"]; n != 10 {
		t.Errorf("the default account was looked up %d times, want 10", n)
	}

	// Its controller makes it while the pod waits.
	c, st = newChain()
	st.onGet = func(key string, n int) {
		if key == "/registry/serviceaccounts/default/default" && n == 3 {
			st.objects[key] = serviceAccount("default", nil)
		}
	}
	pod := newPod(nil)
	if err := admitPod(t, c, pod); err != nil || len(pod.Spec.Volumes) != 1 {
		t.Errorf("admitted %v with volumes %+v", err, pod.Spec.Volumes)
	}
}

func TestServiceAccountImagePullSecretsAreCopied(t *testing.T) {
	c, _ := newChain(serviceAccount("default", func(sa *corev1.ServiceAccount) {
		sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "registry"}}
	}))
	pod := newPod(nil)
	if err := admitPod(t, c, pod); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pod.Spec.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "registry"}}) {
		t.Errorf("imagePullSecrets %+v", pod.Spec.ImagePullSecrets)
	}
	pod = newPod(func(p *corev1.Pod) { p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "own"}} })
	if err := admitPod(t, c, pod); err != nil || len(pod.Spec.ImagePullSecrets) != 1 || pod.Spec.ImagePullSecrets[0].Name != "own" {
		t.Errorf("the pod's own pull secrets: %+v %v", pod.Spec.ImagePullSecrets, err)
	}
}

func TestEnforcedMountableSecretsLimitThePod(t *testing.T) {
	c, _ := newChain(serviceAccount("default", func(sa *corev1.ServiceAccount) {
		sa.Annotations = map[string]string{EnforceMountableSecretsAnnotation: "true"}
		sa.Secrets = []corev1.ObjectReference{{Name: "allowed"}}
	}))
	secretVolume := func(name string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name}}}}
		}
	}
	if err := admitPod(t, c, newPod(secretVolume("allowed"))); err != nil {
		t.Errorf("listed secret: %v", err)
	}
	err := admitPod(t, c, newPod(secretVolume("other")))
	if !apierrors.IsForbidden(err) || !strings.HasSuffix(err.Error(), `volume with secret.secretName="other" is not allowed because service account default does not reference that secret`) {
		t.Errorf("unlisted secret volume: %v", err)
	}
	err = admitPod(t, c, newPod(func(p *corev1.Pod) {
		p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "other"}}}}
	}))
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `container c with envFrom referencing secret.secretName="other"`) {
		t.Errorf("unlisted envFrom secret: %v", err)
	}
}

func TestMirrorPodsAreLeftAlone(t *testing.T) {
	c, _ := newChain(serviceAccount("default", nil))
	mirror := func(edit func(*corev1.Pod)) *corev1.Pod {
		return newPod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
			p.Spec.NodeName = "n1"
			if edit != nil {
				edit(p)
			}
		})
	}
	pod := mirror(nil)
	if err := admitPod(t, c, pod); err != nil || pod.Spec.ServiceAccountName != "" || len(pod.Spec.Volumes) != 0 {
		t.Errorf("mirror pod changed: %+v %v", pod.Spec, err)
	}
	for want, edit := range map[string]func(*corev1.Pod){
		"a mirror pod may not reference service accounts": func(p *corev1.Pod) { p.Spec.ServiceAccountName = "default" },
		"a mirror pod may not reference secrets":          func(p *corev1.Pod) { p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "r"}} },
	} {
		if err := admitPod(t, c, mirror(edit)); !apierrors.IsForbidden(err) || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

func TestPodUpdatesAreNotMounted(t *testing.T) {
	c, _ := newChain(serviceAccount("default", nil))
	old := newPod(func(p *corev1.Pod) { p.Spec.ServiceAccountName = "default" })
	pod := old.DeepCopy()
	if err := c.Admit(context.Background(), apiserver.Update, podsResource, pod, old); err != nil || len(pod.Spec.Volumes) != 0 {
		t.Errorf("update: volumes %+v %v", pod.Spec.Volumes, err)
	}
}
