package reset

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/skiff-sh/skiff/internal/agent/nodestate"
	"github.com/skiff-sh/skiff/internal/network"
	"github.com/skiff-sh/skiff/internal/runtime"
)

// resetAgent removes what the data dir's node agent made outside it: its
// containers (and so their processes, mounts and cgroups), the pods'
// cgroups, the pod network (veths, pinned namespaces, the bridge, routes)
// and its runtime directory.
func resetAgent(dataDir string, out io.Writer) error {
	st, err := nodestate.Read(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no agent ran here
	}
	if err != nil {
		return err
	}
	var errs []error
	rt := &runtime.Runtime{Root: filepath.Join(st.RunDir, "runtime")}
	containers, _ := rt.List()
	for _, c := range containers {
		if err := rt.Delete(c.ID, true); err != nil && !errors.Is(err, runtime.ErrNotExist) {
			errs = append(errs, fmt.Errorf("delete container %s: %w", c.ID, err))
		}
	}
	if len(containers) > 0 {
		fmt.Fprintf(out, "removed %d containers\n", len(containers))
	}
	errs = append(errs, removePodCgroups(filepath.Join(dataDir, "agent", "cri", "sandboxes")))
	// The QoS classes' cgroups and /kubepods, when no other agent's pods
	// are left in them.
	for _, qos := range []string{"/kubepods/besteffort", "/kubepods/burstable", "/kubepods"} {
		runtime.RemoveEmptyCgroup(qos)
	}
	if st.PodCIDR != "" {
		n, err := network.New(network.Config{
			StateDir: filepath.Join(dataDir, "agent", "network"), NetnsDir: filepath.Join(st.RunDir, "netns"),
			Bridge: st.Bridge, PodCIDR: cidr(st.PodCIDR), ClusterCIDR: cidr(st.ClusterCIDR), ServiceCIDR: cidr(st.ServiceCIDR),
		})
		if err == nil {
			err = n.Reset()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pod network: %w", err))
		} else {
			fmt.Fprintf(out, "removed bridge %s and the pod network's routes\n", st.Bridge)
		}
	}
	if err := unmountUnder(st.RunDir, out); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []string{"runtime", "netns"} {
		os.RemoveAll(filepath.Join(st.RunDir, d))
	}
	return errors.Join(errs...)
}

func cidr(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil
	}
	return n
}

// removePodCgroups removes the pod-level cgroups of the agent's sandboxes
// (their containers' own are gone with them), then the QoS parents when
// they are empty.
func removePodCgroups(sandboxes string) error {
	entries, _ := os.ReadDir(sandboxes)
	for _, e := range entries {
		spec, err := runtime.LoadSpec(filepath.Join(sandboxes, e.Name(), "bundle"))
		if err != nil || spec.Linux == nil {
			continue
		}
		// The infra process's cgroup is <pod cgroup>/<sandbox id>.
		pod := filepath.Dir(spec.Linux.CgroupsPath)
		runtime.RemoveEmptyCgroup(pod)
		runtime.RemoveEmptyCgroup(filepath.Dir(pod))
	}
	return nil
}
