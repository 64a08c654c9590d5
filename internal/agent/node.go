package agent

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	goruntime "runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/localpath"
	"github.com/skiff-sh/skiff/internal/version"
)

const (
	leaseDuration   = 40 * time.Second
	leaseRenew      = 10 * time.Second
	statusFrequency = time.Minute
	maxPods         = 110
)

// registerNode creates the Node, or refreshes its status when it exists
// (a restarted agent).
func (a *Agent) registerNode(ctx context.Context) error {
	nodes := a.cfg.Client.CoreV1().Nodes()
	status, err := a.nodeStatus(ctx)
	if err != nil {
		return err
	}
	labels := map[string]string{
		"kubernetes.io/hostname":  a.cfg.NodeName,
		"kubernetes.io/os":        "linux",
		"kubernetes.io/arch":      goruntime.GOARCH,
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": goruntime.GOARCH,
	}
	for k, v := range a.cfg.Labels {
		labels[k] = v
	}
	annotations := map[string]string{}
	if a.cfg.LocalPathDir != "" {
		annotations[localpath.NodeDirAnnotation] = a.cfg.LocalPathDir
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: labels, Annotations: annotations}, Status: *status}
	created, err := nodes.Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, err := nodes.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		labelsChanged := mergeInto(&existing.Labels, labels)
		if mergeInto(&existing.Annotations, annotations) || labelsChanged {
			if existing, err = nodes.Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			existing.Status = *status
			_, err := nodes.UpdateStatus(ctx, existing, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				if latest, gerr := nodes.Get(ctx, a.cfg.NodeName, metav1.GetOptions{}); gerr == nil {
					existing = latest
				}
			}
			return err
		})
	}
	if err != nil {
		return err
	}
	// Status is not taken on create: set it through the subresource (the
	// server may be giving the node its pod range at the same moment).
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		created.Status = *status
		_, err := nodes.UpdateStatus(ctx, created, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			if latest, gerr := nodes.Get(ctx, a.cfg.NodeName, metav1.GetOptions{}); gerr == nil {
				created = latest
			}
		}
		return err
	})
}

// mergeInto sets want's entries in *m, reporting whether any changed.
func mergeInto(m *map[string]string, want map[string]string) bool {
	changed := false
	for k, v := range want {
		if cur, ok := (*m)[k]; !ok || cur != v {
			if *m == nil {
				*m = map[string]string{}
			}
			(*m)[k] = v
			changed = true
		}
	}
	return changed
}

// nodeStatus reads the machine: capacity, addresses, versions, conditions.
func (a *Agent) nodeStatus(ctx context.Context) (*corev1.NodeStatus, error) {
	var uts unix.Utsname
	unix.Uname(&uts)
	rtVersion := "unknown"
	if v, err := a.cfg.Runtime.Version(ctx, &runtimeapi.VersionRequest{}); err == nil {
		rtVersion = v.RuntimeName + "://" + v.RuntimeVersion
	}
	var fs unix.Statfs_t
	unix.Statfs(a.cfg.DataDir, &fs)
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(numCPU()), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(memTotal(), resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(maxPods, resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(int64(fs.Blocks)*fs.Bsize, resource.BinarySI),
	}
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	hostname, _ := os.Hostname()
	addresses := []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: hostname}}
	if a.cfg.NodeIP != nil {
		addresses = append([]corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: a.cfg.NodeIP.String()}}, addresses...)
	}
	return &corev1.NodeStatus{
		Images:      a.nodeImages(ctx),
		Capacity:    capacity,
		Allocatable: capacity.DeepCopy(),
		Addresses:   addresses,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: a.kubeletPort()}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               readTrimmed("/etc/machine-id"),
			SystemUUID:              readTrimmed("/sys/class/dmi/id/product_uuid"),
			BootID:                  readTrimmed("/proc/sys/kernel/random/boot_id"),
			KernelVersion:           unix.ByteSliceToString(uts.Release[:]),
			OSImage:                 osImage(),
			ContainerRuntimeVersion: rtVersion,
			KubeletVersion:          version.Info().GitVersion,
			KubeProxyVersion:        version.Info().GitVersion,
			OperatingSystem:         "linux",
			Architecture:            goruntime.GOARCH,
		},
	}, nil
}

func readTrimmed(path string) string {
	data, _ := os.ReadFile(path)
	return strings.TrimSpace(string(data))
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(s.Text(), "MemTotal: %d kB", &kb); n == 1 {
			return kb * 1024
		}
	}
	return 0
}

func osImage() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// heartbeat renews the node's Lease every 10 s and refreshes its
// conditions every minute, as the kubelet does.
func (a *Agent) heartbeat(ctx context.Context) {
	leases := a.cfg.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	lastStatus := time.Now()
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		now := metav1.NewMicroTime(time.Now())
		lease, err := leases.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			node, nerr := a.cfg.Client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
			l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Namespace: corev1.NamespaceNodeLease}}
			if nerr == nil {
				l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
			}
			holder, secs := a.cfg.NodeName, int32(leaseDuration/time.Second)
			l.Spec = coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &now}
			if _, err := leases.Create(ctx, l, metav1.CreateOptions{}); err != nil {
				a.log.Warn("create node lease", "err", err)
			}
		} else if err == nil {
			lease.Spec.RenewTime = &now
			if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
				a.log.Warn("renew node lease", "err", err)
			}
		}
		if time.Since(lastStatus) >= statusFrequency {
			lastStatus = time.Now()
			if err := a.updateNodeStatus(ctx); err != nil {
				a.log.Warn("node status", "err", err)
			}
		}
	}, leaseRenew)
}

func (a *Agent) updateNodeStatus(ctx context.Context) error {
	node, err := a.cfg.Client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	status, err := a.nodeStatus(ctx)
	if err != nil {
		return err
	}
	// Transition times only move when a condition's status changes.
	for i, c := range status.Conditions {
		for _, old := range node.Status.Conditions {
			if old.Type == c.Type && old.Status == c.Status {
				status.Conditions[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	node.Status = *status
	_, err = a.cfg.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	return err
}

// waitForPodCIDR waits, watching, until the server has given the node its
// pod range, then hands it to the network.
func (a *Agent) waitForPodCIDR(ctx context.Context) error {
	for {
		node, err := a.cfg.Client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err == nil && node.Spec.PodCIDR != "" {
			if a.cfg.PodCIDR != nil {
				return a.cfg.PodCIDR(node.Spec.PodCIDR)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func numCPU() int { return goruntime.NumCPU() }

// kubeletPort is the port of the agent's kubelet API.
func (a *Agent) kubeletPort() int32 {
	if a.cfg.KubeletListener == nil {
		return 0
	}
	if addr, ok := a.cfg.KubeletListener.Addr().(*net.TCPAddr); ok {
		return int32(addr.Port)
	}
	return 0
}

// maxNodeImages is how many images the node reports, largest first, as
// the kubelet's nodeStatusMaxImages.
const maxNodeImages = 50

// nodeImages lists the node's images with their names and sizes, which
// the scheduler's image locality score reads.
func (a *Agent) nodeImages(ctx context.Context) []corev1.ContainerImage {
	list, err := a.cfg.Images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return nil
	}
	imgs := list.Images
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].Size > imgs[j].Size })
	var out []corev1.ContainerImage
	for _, img := range imgs {
		if len(out) == maxNodeImages {
			break
		}
		names := append(append([]string{}, img.RepoDigests...), img.RepoTags...)
		if len(names) == 0 {
			continue
		}
		out = append(out, corev1.ContainerImage{Names: names, SizeBytes: int64(img.Size)})
	}
	return out
}
