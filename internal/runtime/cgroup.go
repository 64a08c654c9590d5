package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupRoot is where containers without a cgroupsPath go.
const cgroupRoot = "/skiff"

// cgroupConfig translates the spec's resources into the cgroups library's.
func cgroupConfig(id string, spec *specs.Spec) *cgroups.Cgroup {
	path := filepath.Join(cgroupRoot, id)
	res := &cgroups.Resources{Devices: deviceRules(spec)}
	if l := spec.Linux; l != nil {
		if l.CgroupsPath != "" {
			path = l.CgroupsPath
			// runc's systemd form "slice:prefix:name" is not used here.
			if !strings.HasPrefix(path, "/") {
				path = "/" + path
			}
		}
		if r := l.Resources; r != nil {
			if m := r.Memory; m != nil {
				res.Memory = deref(m.Limit)
				res.MemoryReservation = deref(m.Reservation)
				res.MemorySwap = deref(m.Swap)
				if m.Swappiness != nil {
					s := *m.Swappiness
					res.MemorySwappiness = &s
				}
			}
			if c := r.CPU; c != nil {
				res.CpuShares = deref(c.Shares)
				if res.CpuShares != 0 && cgroups.IsCgroup2UnifiedMode() {
					// cgroup v2 weighs CPU with cpu.weight, not shares.
					res.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(res.CpuShares)
				}
				res.CpuQuota = deref(c.Quota)
				res.CpuPeriod = deref(c.Period)
				res.CpusetCpus = c.Cpus
				res.CpusetMems = c.Mems
			}
			if p := r.Pids; p != nil && p.Limit != nil {
				limit := *p.Limit
				res.PidsLimit = &limit
			}
		}
	}
	return &cgroups.Cgroup{Path: path, Resources: res}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// makeUnifiedCgroup creates the container's cgroup in the unified hierarchy
// (cgroup v2, or the cgroup2 mount beside the v1 controllers of a hybrid
// host), which its init is cloned into, and returns its directory ("" on a
// v1-only host). early needs only the cgroupsPath.
func makeUnifiedCgroup(id string, early *specs.Spec) (string, error) {
	cg := cgroupConfig(id, early)
	switch {
	case cgroups.IsCgroup2UnifiedMode():
		m, err := fs2.NewManager(cg, filepath.Join("/sys/fs/cgroup", cg.Path))
		if err != nil {
			return "", fmt.Errorf("cgroup manager: %w", err)
		}
		if err := m.Apply(-1); err != nil {
			return "", fmt.Errorf("create cgroup %s: %w", cg.Path, err)
		}
		return m.Path(""), nil
	case cgroups.IsCgroup2HybridMode():
		// Where the v1 manager puts its "" path.
		dir := filepath.Join("/sys/fs/cgroup/unified", cg.Path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("create cgroup %s: %w", cg.Path, err)
		}
		return dir, nil
	}
	return "", nil
}

// newCgroupManager picks the v2 manager where the host is unified and the
// v1 manager otherwise, including the hybrid layout where cgroup2 is
// mounted beside the v1 controllers.
func newCgroupManager(cg *cgroups.Cgroup, paths map[string]string) (cgroups.Manager, error) {
	if cgroups.IsCgroup2UnifiedMode() {
		return fs2.NewManager(cg, filepath.Join("/sys/fs/cgroup", cg.Path))
	}
	if paths == nil {
		var err error
		if paths, err = v1Paths(cg.Path); err != nil {
			return nil, err
		}
	}
	m, err := fs.NewManager(cg, paths)
	if err != nil {
		return nil, fmt.Errorf("cgroup manager: %w", err)
	}
	return m, nil
}

// v1Controllers are the v1 controllers (and named hierarchies) that the
// cgroups library's manager handles.
var v1Controllers = map[string]bool{"cpuset": true, "devices": true, "memory": true, "cpu": true, "cpuacct": true,
	"pids": true, "blkio": true, "hugetlb": true, "net_cls": true, "net_prio": true, "perf_event": true,
	"freezer": true, "rdma": true, "name=systemd": true, "misc": true}

// v1Paths is the container's directory (path, absolute as cgroupConfig
// makes it) in each v1 hierarchy mounted here, and in the unified one of a
// hybrid host: what the library's manager would work out, from one read
// of mountinfo instead of a dozen lookups per controller (0.3 ms of a
// container's start).
func v1Paths(path string) (map[string]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 5 || sep+3 >= len(f) || f[sep+1] != "cgroup" {
			continue
		}
		for _, c := range strings.Split(f[sep+3], ",") {
			if _, seen := paths[c]; v1Controllers[c] && !seen {
				paths[c] = filepath.Join(f[4], path)
			}
		}
	}
	// As the library: no devices controller is no confinement.
	if paths["devices"] == "" {
		return nil, errors.New("cgroup manager: the devices cgroup controller is not mounted")
	}
	if cgroups.IsCgroup2HybridMode() {
		paths[""] = filepath.Join("/sys/fs/cgroup/unified", path)
	}
	return paths, nil
}

// memoryPath is the memory controller's directory of a manager.
func memoryPath(m cgroups.Manager) string {
	if cgroups.IsCgroup2UnifiedMode() {
		return m.Path("")
	}
	return m.Path("memory")
}

// cgroupExists reports whether the container's cgroup is already there.
func cgroupExists(path string) bool {
	dirs := []string{filepath.Join("/sys/fs/cgroup", path)}
	if !cgroups.IsCgroup2UnifiedMode() {
		dirs = []string{filepath.Join("/sys/fs/cgroup/memory", path), filepath.Join("/sys/fs/cgroup/pids", path)}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			return true
		}
	}
	return false
}

// RemoveEmptyCgroup removes the cgroup at path (as in cgroupsPath) from
// every hierarchy where it is empty: a pod's cgroup once its containers'
// are gone.
func RemoveEmptyCgroup(path string) {
	if path == "" || path == "/" {
		return
	}
	if cgroups.IsCgroup2UnifiedMode() {
		os.Remove(filepath.Join("/sys/fs/cgroup", path))
		return
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, d := range dirs {
		os.Remove(filepath.Join(d, path)) // fails, harmlessly, when not empty
	}
}

// SetCgroupLimits creates the cgroup at path (as in cgroupsPath) if need be
// and sets its memory and CPU limits: a pod's cgroup, above its containers'.
func SetCgroupLimits(path string, r *specs.LinuxResources) error {
	spec := &specs.Spec{Linux: &specs.Linux{CgroupsPath: path, Resources: r}}
	cg := cgroupConfig("", spec)
	cg.Resources.SkipDevices = true
	mgr, err := newCgroupManager(cg, nil)
	if err != nil {
		return err
	}
	if err := mgr.Apply(-1); err != nil {
		return fmt.Errorf("create cgroup %s: %w", path, err)
	}
	if err := mgr.Set(cg.Resources); err != nil {
		return fmt.Errorf("set cgroup %s: %w", path, err)
	}
	return nil
}
