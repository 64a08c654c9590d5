package volume

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// fakeSource stands for the API server: objects by "namespace/name".
type fakeSource struct {
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	tokens     int // TokenRequests served
}

func (s *fakeSource) ConfigMap(_ context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	if cm, ok := s.configMaps[namespace+"/"+name]; ok {
		return cm.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (s *fakeSource) Secret(_ context.Context, namespace, name string) (*corev1.Secret, error) {
	if sec, ok := s.secrets[namespace+"/"+name]; ok {
		return sec.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func (s *fakeSource) ServiceAccountToken(_ context.Context, pod *corev1.Pod, audience string, seconds int64) (string, error) {
	s.tokens++
	return fmt.Sprintf("token-%d-%s-%s-%d", s.tokens, pod.Name, audience, seconds), nil
}

// requireRoot skips tests that mount tmpfs; CI runs as root, so they run there.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount tmpfs; CI runs as root, so it runs there")
	}
}

func newManager(t *testing.T) (*Manager, *fakeSource) {
	t.Helper()
	src := &fakeSource{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	m := &Manager{
		Root:   filepath.Join(t.TempDir(), "pods"),
		Source: src,
		Allocatable: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("4"),
			corev1.ResourceMemory: resource.MustParse("8Gi"),
		},
	}
	return m, src
}

func newPod(uid string, volumes ...corev1.Volume) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: types.UID(uid)},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app"}},
			Volumes:    volumes,
		},
	}
}

// setup runs Setup and tears the pod's volumes down when the test ends,
// whether Setup failed or not.
func setup(t *testing.T, m *Manager, pod *corev1.Pod) (map[string]string, error) {
	t.Helper()
	t.Cleanup(func() {
		if err := m.Teardown(pod.UID); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	return m.Setup(context.Background(), pod)
}

func mustSetup(t *testing.T, m *Manager, pod *corev1.Pod) map[string]string {
	t.Helper()
	paths, err := setup(t, m, pod)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	return paths
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fileMode(t *testing.T, p string) os.FileMode {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode()
}

// tmpfsMount reports whether a tmpfs is mounted on dir, by its own reading of
// /proc/self/mountinfo, and the tmpfs's size in bytes.
func tmpfsMount(t *testing.T, dir string) (bool, uint64) {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(pre)
		if !ok || len(f) < 5 || f[4] != real || !strings.HasPrefix(post, "tmpfs ") {
			continue
		}
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		return true, st.Blocks * uint64(st.Bsize)
	}
	return false, 0
}

func mountsBelow(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			found = append(found, f[4])
		}
	}
	return found
}

func ptr[T any](v T) *T { return &v }

func TestEmptyDirKeepsItsDataAcrossSetups(t *testing.T) {
	m, _ := newManager(t)
	pod := newPod("uid-1", corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	dir := mustSetup(t, m, pod)["scratch"]
	if want := filepath.Join(m.Root, "uid-1/volumes/kubernetes.io~empty-dir/scratch"); dir != want {
		t.Fatalf("path = %s, want %s", dir, want)
	}
	if got := fileMode(t, dir).Perm(); got != 0o777 {
		t.Errorf("mode = %o, want 777", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "state"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if again := mustSetup(t, m, pod)["scratch"]; again != dir {
		t.Fatalf("second path = %s, want %s", again, dir)
	}
	if got := readFile(t, filepath.Join(dir, "state")); got != "kept" {
		t.Errorf("state = %q after a second Setup", got)
	}
}

func TestVolumeWithoutSourceIsAnEmptyDir(t *testing.T) {
	m, _ := newManager(t)
	paths := mustSetup(t, m, newPod("uid-1", corev1.Volume{Name: "bare"}))
	if !strings.Contains(paths["bare"], "kubernetes.io~empty-dir") {
		t.Errorf("path = %s, want an emptyDir", paths["bare"])
	}
}

func TestMemoryEmptyDirIsATmpfsOfItsSizeLimit(t *testing.T) {
	requireRoot(t)
	m, _ := newManager(t)
	limit := resource.MustParse("1Mi")
	pod := newPod("uid-1", corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &limit},
	}})
	dir := mustSetup(t, m, pod)["cache"]
	mounted, size := tmpfsMount(t, dir)
	if !mounted {
		t.Fatalf("%s is not a tmpfs mount", dir)
	}
	if size != 1<<20 {
		t.Errorf("tmpfs size = %d, want %d", size, 1<<20)
	}
	if err := os.WriteFile(filepath.Join(dir, "state"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSetup(t, m, pod)
	if got := readFile(t, filepath.Join(dir, "state")); got != "kept" {
		t.Errorf("state = %q after a second Setup", got)
	}
	if n := len(mountsBelow(t, dir)); n != 1 {
		t.Errorf("%d mounts on %s after two Setups, want 1", n, dir)
	}
}

func TestMemoryVolumeSizeIsTheSmallestOfNodePodAndVolumeLimits(t *testing.T) {
	mem := func(s string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(s)}}
	}
	always := ptr(corev1.ContainerRestartPolicyAlways)
	tests := []struct {
		name       string
		containers []corev1.Container
		inits      []corev1.Container
		sizeLimit  string
		want       string
	}{
		{name: "no limits: the node's allocatable", containers: []corev1.Container{{}}, want: "8Gi"},
		{name: "one container without a limit: no pod limit", containers: []corev1.Container{{Resources: mem("1Gi")}, {}}, want: "8Gi"},
		{name: "containers' limits add up", containers: []corev1.Container{{Resources: mem("1Gi")}, {Resources: mem("1Gi")}}, want: "2Gi"},
		{name: "a bigger init container sets the pod limit", containers: []corev1.Container{{Resources: mem("1Gi")}}, inits: []corev1.Container{{Resources: mem("3Gi")}}, want: "3Gi"},
		{name: "sidecars add to the containers", containers: []corev1.Container{{Resources: mem("1Gi")}}, inits: []corev1.Container{{Resources: mem("1Gi"), RestartPolicy: always}}, want: "2Gi"},
		{name: "sizeLimit below the pod limit wins", containers: []corev1.Container{{Resources: mem("1Gi")}}, sizeLimit: "64Mi", want: "64Mi"},
		{name: "sizeLimit above the pod limit loses", containers: []corev1.Container{{Resources: mem("1Gi")}}, sizeLimit: "2Gi", want: "1Gi"},
		{name: "sizeLimit above the node loses", containers: []corev1.Container{{}}, sizeLimit: "16Gi", want: "8Gi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newManager(t)
			pod := newPod("uid-1")
			pod.Spec.Containers, pod.Spec.InitContainers = tt.containers, tt.inits
			var limit *resource.Quantity
			if tt.sizeLimit != "" {
				limit = ptr(resource.MustParse(tt.sizeLimit))
			}
			want := resource.MustParse(tt.want)
			if got := m.memorySize(pod, limit); got != want.Value() {
				t.Errorf("size = %d, want %d (%s)", got, want.Value(), tt.want)
			}
		})
	}
}

func TestConfigMapItemsGetTheirPathsAndModes(t *testing.T) {
	m, src := newManager(t)
	src.configMaps["default/app"] = &corev1.ConfigMap{
		Data:       map[string]string{"app.conf": "port=80", "unused": "x"},
		BinaryData: map[string][]byte{"logo": {0, 1, 2}},
	}
	pod := newPod("uid-1", corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "app"},
		DefaultMode:          ptr(int32(0o440)),
		Items: []corev1.KeyToPath{
			{Key: "app.conf", Path: "etc/app.conf", Mode: ptr(int32(0o600))},
			{Key: "logo", Path: "logo.bin"},
		},
	}}})
	dir := mustSetup(t, m, pod)["cfg"]
	if want := filepath.Join(m.Root, "uid-1/volumes/kubernetes.io~configmap/cfg"); dir != want {
		t.Fatalf("path = %s, want %s", dir, want)
	}
	if got := readFile(t, filepath.Join(dir, "etc/app.conf")); got != "port=80" {
		t.Errorf("etc/app.conf = %q", got)
	}
	if got := fileMode(t, filepath.Join(dir, "etc/app.conf")).Perm(); got != 0o600 {
		t.Errorf("etc/app.conf mode = %o, want 600 (the item's)", got)
	}
	if got := readFile(t, filepath.Join(dir, "logo.bin")); got != "\x00\x01\x02" {
		t.Errorf("logo.bin = %q", got)
	}
	if got := fileMode(t, filepath.Join(dir, "logo.bin")).Perm(); got != 0o440 {
		t.Errorf("logo.bin mode = %o, want 440 (defaultMode)", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "unused")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unused: a key not in items was written (%v)", err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "etc")); err != nil || target != "..data/etc" {
		t.Errorf("etc links to %q (%v), want ..data/etc", target, err)
	}
}

func TestConfigMapDefaultModeIs0644(t *testing.T) {
	m, src := newManager(t)
	src.configMaps["default/app"] = &corev1.ConfigMap{Data: map[string]string{"k": "v"}}
	pod := newPod("uid-1", corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "app"},
	}}})
	dir := mustSetup(t, m, pod)["cfg"]
	if got := fileMode(t, filepath.Join(dir, "k")).Perm(); got != 0o644 {
		t.Errorf("mode = %o, want 644", got)
	}
}

func TestConfigMapChangesShowOnTheNextSetup(t *testing.T) {
	m, src := newManager(t)
	src.configMaps["default/app"] = &corev1.ConfigMap{Data: map[string]string{"a": "1", "b": "2"}}
	pod := newPod("uid-1", corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "app"},
	}}})
	dir := mustSetup(t, m, pod)["cfg"]
	first, _ := os.Readlink(filepath.Join(dir, "..data"))

	mustSetup(t, m, pod)
	if again, _ := os.Readlink(filepath.Join(dir, "..data")); again != first {
		t.Errorf("an unchanged configMap was rewritten: ..data %s -> %s", first, again)
	}

	src.configMaps["default/app"] = &corev1.ConfigMap{Data: map[string]string{"a": "one", "c": "3"}}
	mustSetup(t, m, pod)
	if got := readFile(t, filepath.Join(dir, "a")); got != "one" {
		t.Errorf("a = %q, want the new value", got)
	}
	if got := readFile(t, filepath.Join(dir, "c")); got != "3" {
		t.Errorf("c = %q, want the new key", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "b")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("b: a removed key is still there (%v)", err)
	}
	versions, _ := filepath.Glob(filepath.Join(dir, "..2*"))
	if len(versions) != 1 {
		t.Errorf("payload versions left: %v, want only the current one", versions)
	}
}

func TestMissingOptionalConfigMapAndSecretGiveEmptyVolumes(t *testing.T) {
	m, _ := newManager(t)
	pod := newPod("uid-1",
		corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr(true),
		}}},
	)
	if os.Geteuid() == 0 { // a secret volume is a tmpfs
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: "absent", Optional: ptr(true),
		}}})
	}
	paths := mustSetup(t, m, pod)
	for name, dir := range paths {
		links, _ := filepath.Glob(filepath.Join(dir, "[^.]*"))
		if len(links) != 0 {
			t.Errorf("%s holds %v, want nothing", name, links)
		}
	}
}

func TestMissingOptionalKeyIsSkipped(t *testing.T) {
	m, src := newManager(t)
	src.configMaps["default/app"] = &corev1.ConfigMap{Data: map[string]string{"a": "1"}}
	pod := newPod("uid-1", corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Optional: ptr(true),
		Items: []corev1.KeyToPath{{Key: "a", Path: "a"}, {Key: "nope", Path: "nope"}},
	}}})
	dir := mustSetup(t, m, pod)["cfg"]
	if got := readFile(t, filepath.Join(dir, "a")); got != "1" {
		t.Errorf("a = %q", got)
	}
}

func TestMissingRequiredConfigMapOrKeyIsNamedInTheError(t *testing.T) {
	tests := []struct {
		name  string
		items []corev1.KeyToPath
		want  []string
	}{
		{name: "configMap", want: []string{`volume "cfg"`, "configmap default/absent", "not found"}},
		{name: "key", items: []corev1.KeyToPath{{Key: "nope", Path: "nope"}}, want: []string{`volume "cfg"`, "configmap default/app", `no key "nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, src := newManager(t)
			src.configMaps["default/app"] = &corev1.ConfigMap{Data: map[string]string{"a": "1"}}
			cmName := "app"
			if tt.items == nil {
				cmName = "absent"
			}
			pod := newPod("uid-1", corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: cmName}, Items: tt.items,
			}}})
			paths, err := setup(t, m, pod)
			if err == nil {
				t.Fatalf("setup succeeded: %v", paths)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, statErr := os.Stat(filepath.Join(m.Root, "uid-1/volumes/kubernetes.io~configmap/cfg")); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("a failed volume left a directory (%v)", statErr)
			}
		})
	}
}

func TestMissingRequiredSecretIsNotFound(t *testing.T) {
	m, _ := newManager(t)
	pod := newPod("uid-1", corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}})
	_, err := setup(t, m, pod)
	if err == nil || !strings.Contains(err.Error(), "secret default/tls") || !apierrors.IsNotFound(err) {
		t.Errorf("error = %v, want a NotFound naming secret default/tls", err)
	}
}

func TestSecretIsOnATmpfsWithItsMode(t *testing.T) {
	requireRoot(t)
	m, src := newManager(t)
	src.secrets["default/tls"] = &corev1.Secret{Data: map[string][]byte{"tls.key": []byte("KEY"), "tls.crt": []byte("CRT")}}
	pod := newPod("uid-1", corev1.Volume{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: "tls", DefaultMode: ptr(int32(0o400)),
	}}})
	dir := mustSetup(t, m, pod)["tls"]
	if want := filepath.Join(m.Root, "uid-1/volumes/kubernetes.io~secret/tls"); dir != want {
		t.Fatalf("path = %s, want %s", dir, want)
	}
	if mounted, _ := tmpfsMount(t, dir); !mounted {
		t.Fatalf("%s is not a tmpfs mount: the secret is on disk", dir)
	}
	if got := readFile(t, filepath.Join(dir, "tls.key")); got != "KEY" {
		t.Errorf("tls.key = %q", got)
	}
	if got := fileMode(t, filepath.Join(dir, "tls.key")).Perm(); got != 0o400 {
		t.Errorf("tls.key mode = %o, want 400", got)
	}
	// Refreshing writes into the same tmpfs rather than mounting another.
	src.secrets["default/tls"].Data["tls.key"] = []byte("KEY2")
	mustSetup(t, m, pod)
	if got := readFile(t, filepath.Join(dir, "tls.key")); got != "KEY2" {
		t.Errorf("tls.key = %q after the secret changed", got)
	}
	if n := len(mountsBelow(t, dir)); n != 1 {
		t.Errorf("%d mounts on %s, want 1", n, dir)
	}
}

func TestDownwardAPIRendersAsTheKubeletDoes(t *testing.T) {
	pod := newPod("uid-1")
	pod.Labels = map[string]string{"tier": "web", "app": `say "hi"` + "\n"}
	pod.Annotations = map[string]string{"build": "42"}
	pod.Spec.NodeName = "node-1"
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
	}
	pod.Spec.InitContainers = []corev1.Container{{Name: "init"}}
	field := func(p string) corev1.DownwardAPIVolumeFile {
		return corev1.DownwardAPIVolumeFile{Path: "f", FieldRef: &corev1.ObjectFieldSelector{FieldPath: p}}
	}
	res := func(container, r, divisor string) corev1.DownwardAPIVolumeFile {
		f := corev1.DownwardAPIVolumeFile{Path: "f", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: container, Resource: r}}
		if divisor != "" {
			f.ResourceFieldRef.Divisor = resource.MustParse(divisor)
		}
		return f
	}
	tests := []struct {
		name string
		item corev1.DownwardAPIVolumeFile
		want string
	}{
		{"labels sorted and quoted", field("metadata.labels"), `app="say \"hi\"\n"` + "\n" + `tier="web"`},
		{"one annotation", field("metadata.annotations['build']"), "42"},
		{"a missing label", field("metadata.labels['nope']"), ""},
		{"name", field("metadata.name"), "web"},
		{"namespace", field("metadata.namespace"), "default"},
		{"uid", field("metadata.uid"), "uid-1"},
		{"node name", field("spec.nodeName"), "node-1"},
		{"cpu limit in millicores", res("app", "limits.cpu", "1m"), "500"},
		{"cpu limit in cores rounds up", res("app", "limits.cpu", ""), "1"},
		{"memory limit in Mi", res("app", "limits.memory", "1Mi"), "64"},
		{"memory limit in bytes", res("app", "limits.memory", ""), "67108864"},
		{"cpu request", res("app", "requests.cpu", "1m"), "250"},
		{"unset request defaults to the limit", res("app", "requests.memory", "1Mi"), "64"},
		{"unset limit is the node's allocatable", res("init", "limits.cpu", "1m"), "4000"},
		{"unset request without a limit is 0", res("init", "requests.cpu", ""), "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newManager(t)
			files, err := m.downwardAPIFiles(pod, []corev1.DownwardAPIVolumeFile{tt.item}, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(files["f"].data); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDownwardAPIRejectsUnknownFieldsAndContainers(t *testing.T) {
	tests := []struct {
		name string
		item corev1.DownwardAPIVolumeFile
		want string
	}{
		{"field", corev1.DownwardAPIVolumeFile{Path: "f", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.dnsPolicy"}}, `"spec.dnsPolicy" is not supported`},
		{"subscript", corev1.DownwardAPIVolumeFile{Path: "f", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name['x']"}}, "does not take a subscript"},
		{"container", corev1.DownwardAPIVolumeFile{Path: "f", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "ghost", Resource: "limits.cpu"}}, `container "ghost" not found`},
		{"resource", corev1.DownwardAPIVolumeFile{Path: "f", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.gpu"}}, `"limits.gpu" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newManager(t)
			_, err := m.downwardAPIFiles(newPod("uid-1"), []corev1.DownwardAPIVolumeFile{tt.item}, 0o644)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one saying %s", err, tt.want)
			}
		})
	}
}

func TestDownwardAPIVolumeIsATmpfsWithTheFiles(t *testing.T) {
	requireRoot(t)
	m, _ := newManager(t)
	pod := newPod("uid-1", corev1.Volume{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "cpu_limit", Mode: ptr(int32(0o400)), ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu", Divisor: resource.MustParse("1m")}},
		},
	}}})
	pod.Labels = map[string]string{"b": "2", "a": "1"}
	pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}
	dir := mustSetup(t, m, pod)["info"]
	if mounted, _ := tmpfsMount(t, dir); !mounted {
		t.Errorf("%s is not a tmpfs mount", dir)
	}
	if got := readFile(t, filepath.Join(dir, "labels")); got != "a=\"1\"\nb=\"2\"" {
		t.Errorf("labels = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "cpu_limit")); got != "1500" {
		t.Errorf("cpu_limit = %q", got)
	}
	if got := fileMode(t, filepath.Join(dir, "cpu_limit")).Perm(); got != 0o400 {
		t.Errorf("cpu_limit mode = %o, want 400", got)
	}
	pod.Labels["c"] = "3"
	mustSetup(t, m, pod)
	if got := readFile(t, filepath.Join(dir, "labels")); got != "a=\"1\"\nb=\"2\"\nc=\"3\"" {
		t.Errorf("labels = %q after a label was added", got)
	}
}

// kubeAPIAccess is the projected volume the ServiceAccount admission adds.
func kubeAPIAccess() corev1.Volume {
	return corev1.Volume{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(int64(3607))}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}},
			}}},
		},
	}}}
}

func TestProjectedVolumeHoldsTokenCAAndNamespaceOnATmpfs(t *testing.T) {
	requireRoot(t)
	m, src := newManager(t)
	m.CACert = []byte("CA PEM")
	now := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return now }
	pod := newPod("uid-1", kubeAPIAccess())
	dir := mustSetup(t, m, pod)["kube-api-access"]
	if want := filepath.Join(m.Root, "uid-1/volumes/kubernetes.io~projected/kube-api-access"); dir != want {
		t.Fatalf("path = %s, want %s", dir, want)
	}
	if mounted, _ := tmpfsMount(t, dir); !mounted {
		t.Errorf("%s is not a tmpfs mount", dir)
	}
	for name, want := range map[string]string{"token": "token-1-web--3607", "ca.crt": "CA PEM", "namespace": "default"} {
		if got := readFile(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
		if got := fileMode(t, filepath.Join(dir, name)).Perm(); got != 0o644 {
			t.Errorf("%s mode = %o, want 644", name, got)
		}
	}

	// A sync within 80% of the token's life reuses it; a later one renews it.
	now = now.Add(40 * time.Minute)
	mustSetup(t, m, pod)
	if src.tokens != 1 {
		t.Errorf("%d TokenRequests after a second sync at 40m, want 1", src.tokens)
	}
	now = now.Add(10 * time.Minute)
	mustSetup(t, m, pod)
	if got := readFile(t, filepath.Join(dir, "token")); got != "token-2-web--3607" {
		t.Errorf("token = %q after 50m, want a renewed one", got)
	}
}

func TestProjectedTokenWithFSGroupIsReadableByTheGroupOnly(t *testing.T) {
	requireRoot(t)
	m, _ := newManager(t)
	m.CACert = []byte("CA PEM")
	pod := newPod("uid-1", kubeAPIAccess())
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr(int64(2000))}
	dir := mustSetup(t, m, pod)["kube-api-access"]
	token := filepath.Join(dir, "token")
	if got := fileMode(t, token).Perm(); got != 0o640 {
		t.Errorf("token mode = %o, want 640", got)
	}
	info, err := os.Stat(token)
	if err != nil {
		t.Fatal(err)
	}
	if gid := info.Sys().(*syscall.Stat_t).Gid; gid != 2000 {
		t.Errorf("token group = %d, want the fsGroup 2000", gid)
	}
	// Nothing changed, so nothing is rewritten.
	before, _ := os.Readlink(filepath.Join(dir, "..data"))
	mustSetup(t, m, pod)
	if after, _ := os.Readlink(filepath.Join(dir, "..data")); after != before {
		t.Errorf("an unchanged volume with a fsGroup was rewritten: %s -> %s", before, after)
	}
}

func TestProjectedRejectsUnsupportedSources(t *testing.T) {
	m, _ := newManager(t)
	pod := newPod("uid-1", corev1.Volume{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{Path: "b"}}},
	}}})
	_, err := setup(t, m, pod)
	if err == nil || !strings.Contains(err.Error(), "projected source clusterTrustBundle is not supported") {
		t.Errorf("error = %v", err)
	}
}

func TestHostPathTypesAreChecked(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(base, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct {
		name    string
		path    string
		typ     corev1.HostPathType
		wantErr string
		mode    os.FileMode // of what the type made
	}{
		{name: "DirectoryOrCreate makes a 0755 directory", path: filepath.Join(base, "new/dir"), typ: corev1.HostPathDirectoryOrCreate, mode: os.ModeDir | 0o755},
		{name: "DirectoryOrCreate on a file", path: file, typ: corev1.HostPathDirectoryOrCreate, wantErr: "is not a directory"},
		{name: "Directory", path: base, typ: corev1.HostPathDirectory},
		{name: "Directory missing", path: filepath.Join(base, "missing"), typ: corev1.HostPathDirectory, wantErr: "does not exist"},
		{name: "Directory on a file", path: file, typ: corev1.HostPathDirectory, wantErr: "is not a directory"},
		{name: "FileOrCreate makes an empty 0644 file", path: filepath.Join(base, "made"), typ: corev1.HostPathFileOrCreate, mode: 0o644},
		{name: "FileOrCreate needs the parent", path: filepath.Join(base, "nodir/made"), typ: corev1.HostPathFileOrCreate, wantErr: "no such file or directory"},
		{name: "File", path: file, typ: corev1.HostPathFile},
		{name: "File on a directory", path: base, typ: corev1.HostPathFile, wantErr: "is not a file"},
		{name: "Socket", path: sock, typ: corev1.HostPathSocket},
		{name: "Socket on a file", path: file, typ: corev1.HostPathSocket, wantErr: "is not a socket file"},
		{name: "CharDevice", path: "/dev/null", typ: corev1.HostPathCharDev},
		{name: "CharDevice on a file", path: file, typ: corev1.HostPathCharDev, wantErr: "is not a character device"},
		{name: "BlockDevice on a character device", path: "/dev/null", typ: corev1.HostPathBlockDev, wantErr: "is not a block device"},
		{name: "no type does not check", path: filepath.Join(base, "anything"), typ: corev1.HostPathUnset},
		{name: "an unknown type", path: base, typ: "Pipe", wantErr: `"Pipe" is not a valid hostPath type`},
		{name: "a relative path", path: "var/log", typ: corev1.HostPathUnset, wantErr: "must be an absolute path"},
		{name: "a path with ..", path: base + "/../etc", typ: corev1.HostPathUnset, wantErr: "must not contain '..'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newManager(t)
			pod := newPod("uid-1", corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: tt.path, Type: ptr(tt.typ)},
			}})
			paths, err := setup(t, m, pod)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if paths["host"] != tt.path {
				t.Errorf("path = %s, want the host path %s", paths["host"], tt.path)
			}
			if tt.mode != 0 {
				if got := fileMode(t, tt.path); got != tt.mode {
					t.Errorf("made %s with mode %v, want %v", tt.path, got, tt.mode)
				}
			}
		})
	}
}

func TestItemPathsMustStayInsideTheVolume(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"a/b.conf", true},
		{"./a", true},
		{"a..b", true},
		{"../escape", false},
		{"a/../../escape", false},
		{"a/..", false},
		{"/etc/passwd", false},
		{"..data", false},
		{"..hidden/x", false},
		{"", false},
		{".", false},
	}
	for _, tt := range tests {
		if err := checkPath(tt.path); (err == nil) != tt.ok {
			t.Errorf("checkPath(%q) = %v, want ok=%v", tt.path, err, tt.ok)
		}
	}
}

func TestConfigMapItemEscapingTheVolumeIsRejected(t *testing.T) {
	m, src := newManager(t)
	src.configMaps["default/app"] = &corev1.ConfigMap{Data: map[string]string{"a": "1"}}
	pod := newPod("uid-1", corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "app"},
		Items:                []corev1.KeyToPath{{Key: "a", Path: "../../escape"}},
	}}})
	_, err := setup(t, m, pod)
	if err == nil || !strings.Contains(err.Error(), `invalid path "../../escape": must not contain '..'`) {
		t.Fatalf("error = %v", err)
	}
	matches, _ := filepath.Glob(filepath.Join(m.Root, "uid-1/volumes/*/escape"))
	if len(matches) != 0 {
		t.Errorf("wrote outside the volume: %v", matches)
	}
}

func TestUnsupportedVolumeTypesAreNamed(t *testing.T) {
	m, _ := newManager(t)
	pod := newPod("uid-1",
		corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{FC: &corev1.FCVolumeSource{}}},
		corev1.Volume{Name: "nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nas", Path: "/x"}}},
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	)
	_, err := setup(t, m, pod)
	for _, want := range []string{
		`volume "data": volume type fc is not supported`,
		`volume "nfs": volume type nfs is not supported`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want one saying %s", err, want)
		}
	}
}

func TestTeardownRemovesMountsAndDirectories(t *testing.T) {
	requireRoot(t)
	m, src := newManager(t)
	m.CACert = []byte("CA")
	src.secrets["default/tls"] = &corev1.Secret{Data: map[string][]byte{"k": []byte("v")}}
	src.configMaps["default/app"] = &corev1.ConfigMap{Data: map[string]string{"k": "v"}}
	pod := newPod("uid-1",
		corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}},
		corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
		kubeAPIAccess(),
	)
	other := newPod("uid-2", corev1.Volume{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}})
	mustSetup(t, m, pod)
	mustSetup(t, m, other)
	podDir := filepath.Join(m.Root, "uid-1")
	if n := len(mountsBelow(t, podDir+"/")); n != 3 {
		t.Fatalf("%d mounts under %s, want 3 (memory emptyDir, secret, projected)", n, podDir)
	}
	uids, err := m.Pods()
	if err != nil || len(uids) != 2 {
		t.Fatalf("Pods = %v, %v; want both pods", uids, err)
	}

	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if mounts := mountsBelow(t, podDir+"/"); len(mounts) != 0 {
		t.Errorf("still mounted after Teardown: %v", mounts)
	}
	if _, err := os.Stat(podDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there after Teardown (%v)", podDir, err)
	}
	if uids, _ := m.Pods(); len(uids) != 1 || uids[0] != "uid-2" {
		t.Errorf("Pods = %v after Teardown, want [uid-2]", uids)
	}
	if n := len(mountsBelow(t, filepath.Join(m.Root, "uid-2")+"/")); n != 1 {
		t.Errorf("the other pod has %d mounts, want its 1 untouched", n)
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Errorf("a second Teardown: %v", err)
	}
}

func TestTeardownDetachesATmpfsThatIsStillInUse(t *testing.T) {
	requireRoot(t)
	m, src := newManager(t)
	src.secrets["default/tls"] = &corev1.Secret{Data: map[string][]byte{"k": []byte("v")}}
	pod := newPod("uid-1", corev1.Volume{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}})
	dir := mustSetup(t, m, pod)["tls"]
	f, err := os.Open(filepath.Join(dir, "k")) // keeps the tmpfs busy
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if mounts := mountsBelow(t, dir); len(mounts) != 0 {
		t.Errorf("still mounted: %v", mounts)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there (%v)", dir, err)
	}
}

func TestPodsIsEmptyBeforeAnySetup(t *testing.T) {
	m, _ := newManager(t)
	if uids, err := m.Pods(); err != nil || len(uids) != 0 {
		t.Errorf("Pods = %v, %v; want none", uids, err)
	}
}

func TestBadUIDsAndVolumeNamesAreRefused(t *testing.T) {
	m, _ := newManager(t)
	for _, uid := range []types.UID{"", ".", "..", "a/b"} {
		if err := m.Teardown(uid); err == nil {
			t.Errorf("Teardown(%q) succeeded: it must never touch Root itself or outside it", uid)
		}
		if _, err := m.Setup(context.Background(), newPod(string(uid))); err == nil {
			t.Errorf("Setup of a pod with uid %q succeeded", uid)
		}
	}
	if _, err := setup(t, m, newPod("uid-1", corev1.Volume{Name: "../x"})); err == nil {
		t.Error("a volume named ../x was set up")
	}
}
