package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// setupEmptyDir makes an emptyDir: a directory of mode 0777, or for medium
// Memory a tmpfs. It only creates: what is there already is the pod's data.
func (m *Manager) setupEmptyDir(pod *corev1.Pod, name string, src *corev1.EmptyDirVolumeSource) (string, error) {
	dir := m.volumeDir(pod.UID, pluginEmptyDir, name)
	var made bool
	var err error
	switch src.Medium {
	case corev1.StorageMediumDefault:
		made, err = makeDir(dir)
	case corev1.StorageMediumMemory:
		made, err = mountTmpfs(dir, m.memorySize(pod, src.SizeLimit))
	default:
		// HugePages media need a hugetlbfs mount and the pod's page size.
		return "", fmt.Errorf("emptyDir medium %q is not supported", src.Medium)
	}
	if err != nil {
		return "", fmt.Errorf("emptyDir: %w", err)
	}
	if made {
		// As the kubelet, give the fsGroup its ownership once, when the
		// volume is made; later the files are the containers' business.
		if err := applyFSGroup(dir, fsGroup(pod), false); err != nil {
			return "", fmt.Errorf("emptyDir: %w", err)
		}
	}
	return dir, nil
}

// makeDir makes dir with mode 0777 (umask notwithstanding), as the kubelet
// makes an emptyDir, and its parents; made says whether it was new.
func makeDir(dir string) (made bool, err error) {
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return false, err
	}
	if err := os.Mkdir(dir, 0o777); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, err
	}
	return true, os.Chmod(dir, 0o777)
}

// memorySize is the size of a memory-backed volume of pod, as the kubelet
// computes it: the node's allocatable memory, lowered to the pod's memory
// limit and then to sizeLimit when they are smaller. Zero leaves the kernel's
// default.
func (m *Manager) memorySize(pod *corev1.Pod, sizeLimit *resource.Quantity) int64 {
	var size int64
	if q, ok := m.allocatable()[corev1.ResourceMemory]; ok {
		size = q.Value()
	}
	lower := func(v int64) {
		if v > 0 && (size == 0 || v < size) {
			size = v
		}
	}
	lower(podMemoryLimit(pod))
	if sizeLimit != nil {
		lower(sizeLimit.Value())
	}
	return size
}

// podMemoryLimit is the memory limit of the pod's cgroup, or 0 when a
// container has none: the larger of what the containers and sidecars use
// together and what each init container uses while it runs (with the
// sidecars started before it), plus the pod's overhead.
func podMemoryLimit(pod *corev1.Pod) int64 {
	limit := func(c *corev1.Container) (int64, bool) {
		q, ok := c.Resources.Limits[corev1.ResourceMemory]
		return q.Value(), ok && !q.IsZero()
	}
	var sidecars, peak int64
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		l, ok := limit(c)
		if !ok {
			return 0
		}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars += l
			peak = max(peak, sidecars)
			continue
		}
		peak = max(peak, sidecars+l)
	}
	sum := sidecars
	for i := range pod.Spec.Containers {
		l, ok := limit(&pod.Spec.Containers[i])
		if !ok {
			return 0
		}
		sum += l
	}
	total := max(sum, peak)
	if q, ok := pod.Spec.Overhead[corev1.ResourceMemory]; ok {
		total += q.Value()
	}
	return total
}

// allocatable is Allocatable, or the host's CPUs and memory when unset.
func (m *Manager) allocatable() corev1.ResourceList {
	if m.Allocatable != nil {
		return m.Allocatable
	}
	l := corev1.ResourceList{
		corev1.ResourceCPU: *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		l[corev1.ResourceMemory] = *resource.NewQuantity(int64(si.Totalram)*int64(si.Unit), resource.BinarySI)
	}
	return l
}

// fsGroup is the pod's fsGroup, or nil.
func fsGroup(pod *corev1.Pod) *int64 {
	if sc := pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup
	}
	return nil
}

// applyFSGroup gives gid the group of everything under dir and the group
// permissions the kubelet's SetVolumeOwnership gives: read (and write unless
// readOnly) on files, plus search and set-group-ID on directories, so files
// made later inherit the group. Symlinks change owner only. A nil gid does
// nothing.
func applyFSGroup(dir string, gid *int64, readOnly bool) error {
	if gid == nil {
		return nil
	}
	mask := os.FileMode(0o660)
	if readOnly {
		mask = 0o440
	}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, -1, int(*gid)); err != nil {
			return err
		}
		if info.Mode()&os.ModeSymlink != 0 {
			return nil
		}
		m := mask
		if info.IsDir() {
			m |= os.ModeSetgid | 0o110
		}
		return os.Chmod(p, info.Mode()|m)
	})
	if err != nil {
		return fmt.Errorf("apply fsGroup %d: %w", *gid, err)
	}
	return nil
}
