package cri

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/image"
	"github.com/skiff-sh/skiff/internal/runtime"
)

// defaultCapabilities are a container's capabilities unless its security
// context adds or drops some: containerd's defaults, which Kubernetes
// users expect.
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// allCapabilities is what a privileged container gets.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// containerSpec builds a container's OCI spec: its image's defaults and
// the kubelet's config, in the sandbox's network, IPC and UTS namespaces.
func containerSpec(c *container, sb *sandbox, pausePid int, rootfs string, img *image.Config, sandboxDir string) (*specs.Spec, error) {
	cfg := c.Config
	sc := cfg.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	spec := runtime.DefaultSpec()
	spec.Root = &specs.Root{Path: rootfs, Readonly: sc.GetReadonlyRootfs()}
	spec.Hostname = ""
	p := spec.Process
	// The shim holds the terminal and logs it (see runtime.CreateOptions).
	p.Terminal = cfg.Tty
	p.Rlimits = nil
	p.NoNewPrivileges = sc.GetNoNewPrivs()
	p.Args = commandLine(img, cfg.Command, cfg.Args)
	if len(p.Args) == 0 {
		return nil, fmt.Errorf("no command: the image has no entrypoint or cmd and the container gives none")
	}
	p.Env = mergeEnv(img.Env, cfg.Envs)
	if cfg.Tty && !hasEnv(p.Env, "TERM") {
		p.Env = append(p.Env, "TERM=xterm") // as containerd's WithTTY
	}
	p.Cwd = cfg.WorkingDir
	if p.Cwd == "" {
		p.Cwd = img.WorkingDir
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	user, err := resolveUser(rootfs, img.User, sc)
	if err != nil {
		return nil, err
	}
	p.User = user
	caps := capabilities(sc, privileged)
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	if user.UID != 0 {
		// A non-root process keeps no effective capabilities, as with Docker.
		p.Capabilities.Effective, p.Capabilities.Permitted = nil, nil
	}
	if spec.Linux.Seccomp, err = seccompProfile(sc, caps); err != nil {
		return nil, err
	}
	if r := cfg.GetLinux().GetResources(); r != nil {
		if r.OomScoreAdj != 0 {
			adj := int(r.OomScoreAdj)
			p.OOMScoreAdj = &adj
		}
		spec.Linux.Resources = resources(r)
	}

	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if nsOpts == nil {
		nsOpts = namespaceOptions(sb.Config)
	}
	join := func(t specs.LinuxNamespaceType, name string) specs.LinuxNamespace {
		return specs.LinuxNamespace{Type: t, Path: fmt.Sprintf("/proc/%d/ns/%s", pausePid, name)}
	}
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace}}
	switch nsOpts.Pid {
	case runtimeapi.NamespaceMode_POD:
		ns = append(ns, join(specs.PIDNamespace, "pid"))
	case runtimeapi.NamespaceMode_CONTAINER:
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	if nsOpts.Ipc != runtimeapi.NamespaceMode_NODE {
		ns = append(ns, join(specs.IPCNamespace, "ipc"))
	}
	if nsOpts.Network != runtimeapi.NamespaceMode_NODE {
		ns = append(ns, join(specs.NetworkNamespace, "net"), join(specs.UTSNamespace, "uts"))
	}
	spec.Linux.Namespaces = ns
	spec.Linux.CgroupsPath = cgroupPath(sb.Config.GetLinux().GetCgroupParent(), c.ID)

	ro := sc.GetReadonlyRootfs()
	for _, f := range []string{"hostname", "resolv.conf"} {
		spec.Mounts = append(spec.Mounts, bindMount(filepath.Join(sandboxDir, f), "/etc/"+f, ro, runtimeapi.MountPropagation_PROPAGATION_PRIVATE))
	}
	for _, m := range cfg.Mounts {
		if m.ContainerPath == "" || m.HostPath == "" {
			return nil, fmt.Errorf("mount with an empty path: %v", m)
		}
		spec.Mounts = append(spec.Mounts, bindMount(m.HostPath, m.ContainerPath, m.Readonly, m.Propagation))
	}
	if privileged {
		spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = nil, nil
		spec.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		for i := range spec.Mounts {
			if spec.Mounts[i].Destination == "/sys" || spec.Mounts[i].Destination == "/sys/fs/cgroup" {
				spec.Mounts[i].Options = without(spec.Mounts[i].Options, "ro")
			}
		}
	}
	spec.Annotations = map[string]string{}
	for k, v := range cfg.Annotations {
		spec.Annotations[k] = v
	}
	spec.Annotations["io.kubernetes.cri.container-type"] = "container"
	spec.Annotations["io.kubernetes.cri.sandbox-id"] = sb.ID
	return spec, nil
}

// commandLine merges the image's entrypoint and cmd with the container's
// command and args, as Kubernetes defines it.
func commandLine(img *image.Config, command, args []string) []string {
	switch {
	case len(command) > 0:
		return append(append([]string{}, command...), args...)
	case len(args) > 0:
		return append(append([]string{}, img.Entrypoint...), args...)
	default:
		return append(append([]string{}, img.Entrypoint...), img.Cmd...)
	}
}

// mergeEnv starts from the image's environment; the container's variables
// replace those of the same name.
func mergeEnv(image []string, kv []*runtimeapi.KeyValue) []string {
	env := append([]string{}, image...)
	index := map[string]int{}
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		index[k] = i
	}
	for _, v := range kv {
		e := v.Key + "=" + string(v.Value)
		if i, ok := index[v.Key]; ok {
			env[i] = e
			continue
		}
		index[v.Key] = len(env)
		env = append(env, e)
	}
	return env
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}

func capabilities(sc *runtimeapi.LinuxContainerSecurityContext, privileged bool) []string {
	if privileged {
		return append([]string{}, allCapabilities...)
	}
	set := map[string]bool{}
	for _, c := range defaultCapabilities {
		set[c] = true
	}
	norm := func(c string) string {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		return c
	}
	for _, c := range sc.GetCapabilities().GetAddCapabilities() {
		if strings.EqualFold(c, "ALL") {
			for _, a := range allCapabilities {
				set[a] = true
			}
			continue
		}
		set[norm(c)] = true
	}
	for _, c := range sc.GetCapabilities().GetDropCapabilities() {
		if strings.EqualFold(c, "ALL") {
			set = map[string]bool{}
			for _, a := range sc.GetCapabilities().GetAddCapabilities() {
				if !strings.EqualFold(a, "ALL") {
					set[norm(a)] = true
				}
			}
			continue
		}
		delete(set, norm(c))
	}
	var out []string
	for _, c := range allCapabilities {
		if set[c] {
			out = append(out, c)
		}
	}
	return out
}

func resources(r *runtimeapi.LinuxContainerResources) *specs.LinuxResources {
	res := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	if r.MemoryLimitInBytes > 0 {
		limit := r.MemoryLimitInBytes
		swap := limit // no swap beyond the limit, as the kubelet's default
		if r.MemorySwapLimitInBytes > 0 {
			swap = r.MemorySwapLimitInBytes
		}
		res.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &swap}
	}
	cpu := &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
	if r.CpuShares > 0 {
		shares := uint64(r.CpuShares)
		cpu.Shares = &shares
	}
	if r.CpuQuota > 0 {
		quota := r.CpuQuota
		cpu.Quota = &quota
	}
	if r.CpuPeriod > 0 {
		period := uint64(r.CpuPeriod)
		cpu.Period = &period
	}
	res.CPU = cpu
	return res
}

func bindMount(src, dst string, readonly bool, prop runtimeapi.MountPropagation) specs.Mount {
	opts := []string{"rbind"}
	if readonly {
		opts = append(opts, "ro")
	}
	switch prop {
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		opts = append(opts, "rslave")
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		opts = append(opts, "rshared")
	default:
		opts = append(opts, "rprivate")
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
}

func without(opts []string, drop string) []string {
	var out []string
	for _, o := range opts {
		if o != drop {
			out = append(out, o)
		}
	}
	return out
}

// resolveUser picks the process's user: the security context's, else the
// image's ("uid", "uid:gid", or names looked up in the image's /etc/passwd
// and /etc/group).
func resolveUser(rootfs, imageUser string, sc *runtimeapi.LinuxContainerSecurityContext) (specs.User, error) {
	var u specs.User
	name, group, _ := strings.Cut(imageUser, ":")
	switch {
	case sc.GetRunAsUser() != nil:
		u.UID = uint32(sc.GetRunAsUser().Value)
		name = ""
		if gid, ok := passwdGID(rootfs, u.UID); ok {
			u.GID = gid
		}
	case sc.GetRunAsUsername() != "":
		name = sc.GetRunAsUsername()
		fallthrough
	case name != "":
		uid, gid, err := lookupUser(rootfs, name)
		if err != nil {
			return u, err
		}
		u.UID, u.GID = uid, gid
	}
	if group != "" && sc.GetRunAsGroup() == nil {
		gid, err := lookupGroup(rootfs, group)
		if err != nil {
			return u, err
		}
		u.GID = gid
	}
	if g := sc.GetRunAsGroup(); g != nil {
		u.GID = uint32(g.Value)
	}
	for _, g := range sc.GetSupplementalGroups() {
		u.AdditionalGids = append(u.AdditionalGids, uint32(g))
	}
	return u, nil
}

// passwdFields reads name:x:uid:gid lines of an /etc/passwd or /etc/group
// in the image.
func passwdFields(rootfs, file string) [][]string {
	f, err := os.Open(filepath.Join(rootfs, "etc", file))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Split(s.Text(), ":"); len(fields) >= 3 {
			out = append(out, fields)
		}
	}
	return out
}

func lookupUser(rootfs, name string) (uint32, uint32, error) {
	if uid, err := strconv.ParseUint(name, 10, 32); err == nil {
		gid, _ := passwdGID(rootfs, uint32(uid))
		return uint32(uid), gid, nil
	}
	for _, f := range passwdFields(rootfs, "passwd") {
		if f[0] == name && len(f) >= 4 {
			uid, err1 := strconv.ParseUint(f[2], 10, 32)
			gid, err2 := strconv.ParseUint(f[3], 10, 32)
			if err1 == nil && err2 == nil {
				return uint32(uid), uint32(gid), nil
			}
		}
	}
	return 0, 0, fmt.Errorf("user %q is not in the image's /etc/passwd", name)
}

func passwdGID(rootfs string, uid uint32) (uint32, bool) {
	for _, f := range passwdFields(rootfs, "passwd") {
		if len(f) >= 4 && f[2] == strconv.Itoa(int(uid)) {
			if gid, err := strconv.ParseUint(f[3], 10, 32); err == nil {
				return uint32(gid), true
			}
		}
	}
	return 0, false
}

func lookupGroup(rootfs, name string) (uint32, error) {
	if gid, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(gid), nil
	}
	for _, f := range passwdFields(rootfs, "group") {
		if f[0] == name {
			if gid, err := strconv.ParseUint(f[2], 10, 32); err == nil {
				return uint32(gid), nil
			}
		}
	}
	return 0, fmt.Errorf("group %q is not in the image's /etc/group", name)
}

// writeBundle writes config.json into a bundle directory.
func writeBundle(dir string, spec *specs.Spec) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
}

// loadBundleProcess reads the process of a container's bundle, which exec
// starts from.
func loadBundleProcess(dir string) (*specs.Process, error) {
	spec, err := runtime.LoadSpec(dir)
	if err != nil {
		return nil, err
	}
	return spec.Process, nil
}
