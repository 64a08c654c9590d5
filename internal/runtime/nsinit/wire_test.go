package nsinit

import (
	"os"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func ptr[T any](v T) *T { return &v }

// fullProcess sets every process field an init uses. (An empty list
// travels as nil, which means the same in a spec.)
func fullProcess() *specs.Process {
	return &specs.Process{
		Terminal: true,
		User:     specs.User{UID: 1000, GID: 1001, Umask: ptr(uint32(0o027)), AdditionalGids: []uint32{5, 6}},
		Args:     []string{"sh", "-c", "echo 'a\nb'"},
		Env:      []string{"PATH=/bin", "EMPTY="},
		Cwd:      "/work dir",
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_CHOWN"},
			Inheritable: nil, Permitted: []string{"CAP_KILL", "CAP_CHOWN"}, Ambient: nil},
		Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1 << 62, Soft: 1024}},
		NoNewPrivileges: true,
		OOMScoreAdj:     ptr(-999),
	}
}

func fullConfig() *Config {
	return &Config{
		Rootfs: "/var/lib/c/rootfs", ExecFIFO: "/run/c/exec.fifo", ConsoleSocket: "/tmp/console.sock", ConsoleFD: 5,
		CgroupPaths: map[string]string{"": "/sys/fs/cgroup/unified/c", "memory": "/sys/fs/cgroup/memory/c"},
		Seccomp:     []unix.SockFilter{{Code: 0x20, K: 4}, {Code: 0x15, Jt: 1, Jf: 255, K: 0xffffffff}},
		Spec: &specs.Spec{
			Hostname: "box", Domainname: "example.org",
			Root:    &specs.Root{Path: "rootfs", Readonly: true},
			Process: fullProcess(),
			Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"},
				{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "ro"}}},
			Linux: &specs.Linux{
				Namespaces:        []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}},
				Sysctl:            map[string]string{"net.ipv4.ip_forward": "1"},
				MaskedPaths:       []string{"/proc/kcore"},
				ReadonlyPaths:     []string{"/proc/sys"},
				RootfsPropagation: "rslave",
				Devices: []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229,
					FileMode: ptr(os.FileMode(0o666)), UID: ptr(uint32(0)), GID: nil}},
			},
		},
	}
}

func TestConfigSurvivesTheWire(t *testing.T) {
	want := fullConfig()
	got, err := DecodeConfig(EncodeConfig(want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

func TestWireCarriesOnlyWhatTheInitUses(t *testing.T) {
	c := fullConfig()
	c.Spec.Annotations = map[string]string{"a": "b"}
	c.Spec.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(5))}}
	c.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	got, err := DecodeConfig(EncodeConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Annotations != nil || got.Spec.Linux.Resources != nil || got.Spec.Linux.Seccomp != nil {
		t.Errorf("fields the init does not use travelled: %+v", got.Spec)
	}
	if !reflect.DeepEqual(got, fullConfig()) {
		t.Errorf("the fields the init uses changed")
	}
}

func TestExecConfigSurvivesTheWire(t *testing.T) {
	for _, want := range []*ExecConfig{
		{Process: fullProcess(), ContainerPid: 4242, ConsoleFD: -1, Seccomp: []unix.SockFilter{{Code: 6, K: 0x7fff0000}}},
		{ContainerPid: 1, ConsoleFD: 5},
	} {
		got, err := DecodeExecConfig(EncodeExecConfig(want))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
		}
	}
}

func TestShimConfigSurvivesTheWire(t *testing.T) {
	want := &ShimConfig{StateDir: "/run/c", Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID, MemoryCgroup: "/sys/fs/cgroup/memory/c",
		CgroupV2: true, PidNamespace: "/proc/9/ns/pid", CloneIntoCgroup: "/sys/fs/cgroup/c", LogPath: "/var/log/c.log",
		Terminal: true, OpenStdin: true, StdinOnce: true}
	got, err := DecodeShimConfig(EncodeShimConfig(want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if _, err := DecodeShimConfig(EncodeConfig(fullConfig())); err == nil {
		t.Error("DecodeShimConfig of a Config gave no error")
	}
}

func TestBadWireInputIsAnError(t *testing.T) {
	data := EncodeConfig(fullConfig())
	for _, bad := range [][]byte{nil, {0}, data[:len(data)-1], append(append([]byte{}, data...), 0),
		EncodeExecConfig(&ExecConfig{Process: fullProcess()})} {
		if _, err := DecodeConfig(bad); err == nil {
			t.Errorf("DecodeConfig(%q) gave no error", bad)
		}
	}
	if _, err := DecodeExecConfig(data); err == nil {
		t.Error("DecodeExecConfig of a Config gave no error")
	}
}

// FuzzDecodeConfig: any input decodes or fails cleanly, and what decodes
// encodes to something that decodes the same.
func FuzzDecodeConfig(f *testing.F) {
	f.Add(EncodeConfig(fullConfig()))
	f.Add(EncodeConfig(&Config{}))
	f.Add(EncodeExecConfig(&ExecConfig{Process: fullProcess()}))
	f.Add(EncodeShimConfig(&ShimConfig{StateDir: "/run/c", LogPath: "/l"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := DecodeConfig(data); err == nil {
			if again := EncodeConfig(c); string(again) != string(data) {
				// Only a map's order may differ, and a decoded
				// config re-encodes to a fixed point.
				if c2, err := DecodeConfig(again); err != nil || !reflect.DeepEqual(c, c2) {
					t.Fatalf("re-encoding changed the config: %v", err)
				}
			}
		}
		if c, err := DecodeShimConfig(data); err == nil {
			if c2, err := DecodeShimConfig(EncodeShimConfig(c)); err != nil || !reflect.DeepEqual(c, c2) {
				t.Fatalf("re-encoding changed the shim config: %v", err)
			}
		}
		if c, err := DecodeExecConfig(data); err == nil {
			if _, err := DecodeExecConfig(EncodeExecConfig(c)); err != nil {
				t.Fatal(err)
			}
		}
	})
}
