package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/agent/volume"
)

// logDir is where a pod's container logs go, as the kubelet lays them
// out: <ns>_<name>_<uid>/<container>/<restart>.log.
func (a *Agent) logDir(pod *corev1.Pod) string {
	return filepath.Join(a.cfg.DataDir, "logs", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
}

func (a *Agent) sandboxConfig(pod *corev1.Pod, attempt uint32) *runtimeapi.PodSandboxConfig {
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	nsOpts := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	if pod.Spec.HostNetwork {
		nsOpts.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostPID {
		nsOpts.Pid = runtimeapi.NamespaceMode_NODE
	} else if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		nsOpts.Pid = runtimeapi.NamespaceMode_POD
	}
	if pod.Spec.HostIPC {
		nsOpts.Ipc = runtimeapi.NamespaceMode_NODE
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt},
		Hostname:     hostname,
		LogDirectory: a.logDir(pod),
		Labels:       map[string]string{labelPodName: pod.Name, labelPodNamespace: pod.Namespace, labelPodUID: string(pod.UID)},
		Annotations:  pod.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    podCgroup(pod),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: nsOpts},
			Sysctls:         map[string]string{},
		},
	}
	cfg.Linux.Resources = podResources(pod)
	for k, v := range pod.Labels {
		if _, reserved := cfg.Labels[k]; !reserved {
			cfg.Labels[k] = v
		}
	}
	if sc := pod.Spec.SecurityContext; sc != nil {
		for _, s := range sc.Sysctls {
			cfg.Linux.Sysctls[s.Name] = s.Value
		}
	}
	if pod.Spec.DNSConfig != nil {
		cfg.DnsConfig = &runtimeapi.DNSConfig{Servers: pod.Spec.DNSConfig.Nameservers, Searches: pod.Spec.DNSConfig.Searches}
		for _, o := range pod.Spec.DNSConfig.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			cfg.DnsConfig.Options = append(cfg.DnsConfig.Options, opt)
		}
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			switch p.Protocol {
			case corev1.ProtocolUDP:
				proto = runtimeapi.Protocol_UDP
			case corev1.ProtocolSCTP:
				proto = runtimeapi.Protocol_SCTP
			}
			cfg.PortMappings = append(cfg.PortMappings, &runtimeapi.PortMapping{Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP})
		}
	}
	return cfg
}

// podCgroup is the pod's cgroup, under its QoS class's, as the kubelet's
// cgroupfs driver names it.
func podCgroup(pod *corev1.Pod) string {
	switch qosClass(pod) {
	case corev1.PodQOSGuaranteed:
		return "/kubepods/pod" + string(pod.UID)
	case corev1.PodQOSBurstable:
		return "/kubepods/burstable/pod" + string(pod.UID)
	}
	return "/kubepods/besteffort/pod" + string(pod.UID)
}

// runSandbox makes the pod's sandbox and the files its containers mount.
func (a *Agent) runSandbox(ctx context.Context, pod *corev1.Pod, st *podState) error {
	attempt := uint32(0)
	if st.sandbox != nil {
		attempt = st.sandbox.Metadata.Attempt + 1
	}
	if err := os.MkdirAll(a.logDir(pod), 0o755); err != nil {
		return err
	}
	resp, err := a.cfg.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: a.sandboxConfig(pod, attempt)})
	if err != nil {
		return err
	}
	ip := ""
	if s, err := a.cfg.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: resp.PodSandboxId}); err == nil && s.Status.Network != nil {
		ip = s.Status.Network.Ip
	}
	return a.writeHosts(pod, ip)
}

// writeHosts writes the pod's /etc/hosts, as the kubelet manages it.
func (a *Agent) writeHosts(pod *corev1.Pod, ip string) error {
	dir := a.podDir(pod.UID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	if pod.Spec.HostNetwork {
		if host, err := os.ReadFile("/etc/hosts"); err == nil {
			b.Reset()
			b.Write(host)
		}
	} else if ip != "" {
		hostname := pod.Name
		if pod.Spec.Hostname != "" {
			hostname = pod.Spec.Hostname
		}
		if pod.Spec.Subdomain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.cluster.local\t%s\n", ip, hostname, pod.Spec.Subdomain, pod.Namespace, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	for _, h := range pod.Spec.HostAliases {
		fmt.Fprintf(&b, "\n# Entries added by HostAliases.\n%s\t%s\n", h.IP, strings.Join(h.Hostnames, "\t"))
	}
	return os.WriteFile(filepath.Join(dir, "etc-hosts"), []byte(b.String()), 0o644)
}

// containerConfig turns a pod's container into CRI's container config.
func (a *Agent) containerConfig(pod *corev1.Pod, c *corev1.Container, volumes map[string]string, imageRef string, restartCount int32, podIP string) (*runtimeapi.ContainerConfig, error) {
	env, err := a.resolveEnv(pod, c, podIP)
	if err != nil {
		return nil, err
	}
	mounts, err := a.mounts(pod, c, volumes, restartCount)
	if err != nil {
		return nil, err
	}
	termPath := c.TerminationMessagePath
	if termPath == "" {
		termPath = corev1.TerminationMessagePathDefault
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: uint32(restartCount)},
		Image:      &runtimeapi.ImageSpec{Image: imageRef, UserSpecifiedImage: c.Image},
		Command:    expand(c.Command, env),
		Args:       expand(c.Args, env),
		WorkingDir: c.WorkingDir,
		Envs:       env,
		Mounts:     mounts,
		LogPath:    filepath.Join(c.Name, strconv.Itoa(int(restartCount))+".log"),
		Stdin:      c.Stdin,
		StdinOnce:  c.StdinOnce,
		Tty:        c.TTY,
		Labels: map[string]string{labelPodName: pod.Name, labelPodNamespace: pod.Namespace,
			labelPodUID: string(pod.UID), labelContainerName: c.Name},
		Annotations: map[string]string{
			annotationRestarts:  strconv.Itoa(int(restartCount)),
			annotationTermPath:  termPath,
			annotationTermRules: string(c.TerminationMessagePolicy),
			annotationTermFile:  a.terminationFile(pod.UID, c.Name, restartCount),
			annotationSandbox:   "",
		},
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       containerResources(c),
			SecurityContext: a.securityContext(pod, c),
		},
	}
	return cfg, nil
}

func (a *Agent) terminationFile(uid types.UID, name string, restartCount int32) string {
	return filepath.Join(a.podDir(uid), "containers", name, strconv.Itoa(int(restartCount)))
}

// mounts are the container's volume mounts, its /etc/hosts and its
// termination message file.
func (a *Agent) mounts(pod *corev1.Pod, c *corev1.Container, volumes map[string]string, restartCount int32) ([]*runtimeapi.Mount, error) {
	var out []*runtimeapi.Mount
	hasHosts := false
	specOf := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		specOf[v.Name] = v
	}
	for _, vm := range c.VolumeMounts {
		host, ok := volumes[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume %q of volumeMount %q is not in the pod's volumes", vm.Name, vm.MountPath)
		}
		if vm.SubPath != "" {
			if filepath.IsAbs(vm.SubPath) || strings.Contains(vm.SubPath, "..") {
				return nil, fmt.Errorf("subPath %q must be a relative path without '..'", vm.SubPath)
			}
			host = filepath.Join(host, vm.SubPath)
			if _, err := os.Lstat(host); os.IsNotExist(err) {
				if err := os.MkdirAll(host, 0o755); err != nil {
					return nil, err
				}
			}
		}
		prop := runtimeapi.MountPropagation_PROPAGATION_PRIVATE
		if vm.MountPropagation != nil {
			switch *vm.MountPropagation {
			case corev1.MountPropagationHostToContainer:
				prop = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
			case corev1.MountPropagationBidirectional:
				prop = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
			}
		}
		if vm.MountPath == "/etc/hosts" {
			hasHosts = true
		}
		// Volumes the agent writes (configMap, secret, ...) are read-only.
		readonly := vm.ReadOnly || volume.ReadOnly(specOf[vm.Name])
		out = append(out, &runtimeapi.Mount{ContainerPath: vm.MountPath, HostPath: host, Readonly: readonly, Propagation: prop})
	}
	if !hasHosts {
		out = append(out, &runtimeapi.Mount{ContainerPath: "/etc/hosts", HostPath: filepath.Join(a.podDir(pod.UID), "etc-hosts")})
	}
	termPath := c.TerminationMessagePath
	if termPath == "" {
		termPath = corev1.TerminationMessagePathDefault
	}
	file := a.terminationFile(pod.UID, c.Name, restartCount)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, nil, 0o666); err != nil {
		return nil, err
	}
	out = append(out, &runtimeapi.Mount{ContainerPath: termPath, HostPath: file})
	return out, nil
}

// containerResources maps requests and limits to cgroup settings as the
// kubelet does: shares from the CPU request, quota from the CPU limit.
func containerResources(c *corev1.Container) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{CpuShares: 2}
	if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		r.CpuShares = max(q.MilliValue()*1024/1000, 2)
	} else if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		r.CpuShares = max(q.MilliValue()*1024/1000, 2)
	}
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		r.CpuPeriod = 100000
		r.CpuQuota = max(q.MilliValue()*100000/1000, 1000)
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		r.MemoryLimitInBytes = q.Value()
	}
	return r
}

func (a *Agent) securityContext(pod *corev1.Pod, c *corev1.Container) *runtimeapi.LinuxContainerSecurityContext {
	out := &runtimeapi.LinuxContainerSecurityContext{}
	psc := pod.Spec.SecurityContext
	if psc != nil {
		if psc.RunAsUser != nil {
			out.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			out.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		out.SupplementalGroups = psc.SupplementalGroups
		if psc.FSGroup != nil {
			out.SupplementalGroups = append(out.SupplementalGroups, *psc.FSGroup)
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			out.RunAsUser = &runtimeapi.Int64Value{Value: *sc.RunAsUser}
		}
		if sc.RunAsGroup != nil {
			out.RunAsGroup = &runtimeapi.Int64Value{Value: *sc.RunAsGroup}
		}
		out.Privileged = sc.Privileged != nil && *sc.Privileged
		out.ReadonlyRootfs = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		if sc.AllowPrivilegeEscalation != nil {
			out.NoNewPrivs = !*sc.AllowPrivilegeEscalation
		}
		if caps := sc.Capabilities; caps != nil {
			out.Capabilities = &runtimeapi.Capability{}
			for _, c := range caps.Add {
				out.Capabilities.AddCapabilities = append(out.Capabilities.AddCapabilities, string(c))
			}
			for _, c := range caps.Drop {
				out.Capabilities.DropCapabilities = append(out.Capabilities.DropCapabilities, string(c))
			}
		}
	}
	out.NamespaceOptions = a.sandboxConfig(pod, 0).Linux.SecurityContext.NamespaceOptions
	return out
}

// expand replaces $(VAR) references with the container's variables, as
// Kubernetes expands command and args; $$ escapes a dollar.
func expand(in []string, env []*runtimeapi.KeyValue) []string {
	if in == nil {
		return nil
	}
	vars := map[string]string{}
	for _, kv := range env {
		vars[kv.Key] = string(kv.Value)
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expandOne(s, vars)
	}
	return out
}

func expandOne(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// qosClass computes the pod's QoS class as Kubernetes does.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for name, q := range c.Resources.Requests {
			if name != corev1.ResourceCPU && name != corev1.ResourceMemory || q.IsZero() {
				continue
			}
			add(requests, name, q)
		}
		seen := map[corev1.ResourceName]bool{}
		for name, q := range c.Resources.Limits {
			if name != corev1.ResourceCPU && name != corev1.ResourceMemory || q.IsZero() {
				continue
			}
			seen[name] = true
			add(limits, name, q)
		}
		if !seen[corev1.ResourceCPU] || !seen[corev1.ResourceMemory] {
			guaranteed = false
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
			}
		}
	}
	if guaranteed && len(limits) == 2 {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func add(list corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
	if cur, ok := list[name]; ok {
		cur.Add(q)
		list[name] = cur
		return
	}
	list[name] = q.DeepCopy()
}

// podResources are the pod cgroup's limits, as the kubelet sets them: CPU
// shares from the requests; a memory limit and CPU quota only when every
// container has one (else the pod is unbounded there); init containers
// count by their largest.
func podResources(pod *corev1.Pod) *runtimeapi.LinuxContainerResources {
	sum := func(name corev1.ResourceName, limits bool) (int64, bool) {
		var apps, inits int64
		all := true
		get := func(c corev1.Container) (int64, bool) {
			list := c.Resources.Requests
			if limits {
				list = c.Resources.Limits
			}
			q, ok := list[name]
			if name == corev1.ResourceCPU {
				return q.MilliValue(), ok
			}
			return q.Value(), ok
		}
		for _, c := range pod.Spec.Containers {
			v, ok := get(c)
			all = all && ok
			apps += v
		}
		for _, c := range pod.Spec.InitContainers {
			v, ok := get(c)
			if isSidecar(&c) {
				all = all && ok
				apps += v
				continue
			}
			all = all && ok
			inits = max(inits, v)
		}
		return max(apps, inits), all
	}
	r := &runtimeapi.LinuxContainerResources{}
	cpuReq, _ := sum(corev1.ResourceCPU, false)
	r.CpuShares = max(cpuReq*1024/1000, 2)
	if mem, all := sum(corev1.ResourceMemory, true); all && mem > 0 {
		r.MemoryLimitInBytes = mem
	}
	if cpu, all := sum(corev1.ResourceCPU, true); all && cpu > 0 {
		r.CpuPeriod = 100000
		r.CpuQuota = max(cpu*100000/1000, 1000)
	}
	return r
}
