package seccomp

import (
	"encoding/binary"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// run evaluates a compiled filter on the seccomp_data of one call, as the
// kernel would, with golang.org/x/net/bpf's interpreter.
func run(t *testing.T, filter []unix.SockFilter, archID uint32, name string, args ...uint64) uint32 {
	t.Helper()
	info := infoOf(t, archID)
	raw := make([]bpf.RawInstruction, len(filter))
	for i, f := range filter {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insts, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	// The interpreter loads words big-endian, as from a packet; the kernel
	// loads them in the machine's order. Each word is laid out so that the
	// interpreter reads what the kernel would: an argument's low word at
	// its offset, its high word 4 bytes on (a little-endian machine).
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[offNr:], uint32(info.SyscallNames[name]))
	binary.BigEndian.PutUint32(data[offArch:], archID)
	for i, a := range args {
		binary.BigEndian.PutUint32(data[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[offArgs+8*i+4:], uint32(a>>32))
	}
	ret, err := vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(ret)
}

// infoOf is go-seccomp-bpf's table of an architecture (the native one's
// for an architecture it lacks).
func infoOf(t *testing.T, archID uint32) *arch.Info {
	for _, name := range []string{"amd64", "386", "arm64", "arm"} {
		if info, err := arch.GetInfo(name); err == nil && uint32(info.ID) == archID {
			return info
		}
	}
	info, _ := arch.GetInfo("")
	return info
}

func TestEveryOperatorCompilesToItsMeaning(t *testing.T) {
	native, _ := arch.GetInfo("")
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	rule := func(op specs.LinuxSeccompOperator, v, v2 uint64) []unix.SockFilter {
		f, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: v, ValueTwo: v2, Op: op}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	big := uint64(5)<<32 | 7
	for _, c := range []struct {
		op      specs.LinuxSeccompOperator
		v, v2   uint64
		arg     uint64
		allowed bool
	}{
		{specs.OpEqualTo, big, 0, big, true}, {specs.OpEqualTo, big, 0, 7, false}, {specs.OpEqualTo, big, 0, 5 << 32, false},
		{specs.OpNotEqual, big, 0, big, false}, {specs.OpNotEqual, big, 0, 7, true}, {specs.OpNotEqual, big, 0, 6<<32 | 7, true},
		{specs.OpGreaterThan, big, 0, big + 1, true}, {specs.OpGreaterThan, big, 0, big, false}, {specs.OpGreaterThan, big, 0, 6 << 32, true}, {specs.OpGreaterThan, big, 0, 8, false},
		{specs.OpGreaterEqual, big, 0, big, true}, {specs.OpGreaterEqual, big, 0, big - 1, false},
		{specs.OpLessThan, big, 0, big - 1, true}, {specs.OpLessThan, big, 0, big, false}, {specs.OpLessThan, big, 0, 4<<32 | 0xffffffff, true}, {specs.OpLessThan, big, 0, 6 << 32, false},
		{specs.OpLessEqual, big, 0, big, true}, {specs.OpLessEqual, big, 0, big + 1, false},
		{specs.OpMaskedEqual, 0xff, 0x11, 0x1211, true}, {specs.OpMaskedEqual, 0xff, 0x11, 0x1212, false},
		{specs.OpMaskedEqual, 1 << 40, 1 << 40, 1<<40 | 3, true}, {specs.OpMaskedEqual, 1 << 40, 0, 1 << 40, false},
	} {
		want := eperm
		if c.allowed {
			want = allow
		}
		if got := run(t, rule(c.op, c.v, c.v2), uint32(native.ID), "personality", 0, c.arg); got != want {
			t.Errorf("%s %#x (valueTwo %#x) on %#x: got %#x, want %#x", c.op, c.v, c.v2, c.arg, got, want)
		}
	}
	// Another architecture's calls fail with ENOSYS.
	if got := run(t, rule(specs.OpEqualTo, 0, 0), 0x40000003 /* i386 */, "personality", 0, 0); got != unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS) {
		t.Errorf("foreign architecture: got %#x", got)
	}
}

// A rule on arguments that does not match must leave the next rules the
// syscall number, not the argument it loaded: here the argument of the
// first rule equals the number of the call the second rule allows.
func TestAFailedArgumentRuleLeavesNoStrayValue(t *testing.T) {
	native, _ := arch.GetInfo("")
	kexec := uint64(native.SyscallNames["kexec_load"])
	f, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
		{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
		{Names: []string{"kexec_load"}, Action: specs.ActAllow},
	}})
	if err != nil {
		t.Fatal(err)
	}
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	if got := run(t, f, uint32(native.ID), "personality", 0xffffffff); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("the second rule for one call was not reached: %#x", got)
	}
	if got := run(t, f, uint32(native.ID), "personality", kexec); got != eperm {
		t.Errorf("personality(%d) allowed by kexec_load's rule: %#x", kexec, got)
	}
}

// The generated tables must agree with go-seccomp-bpf's, which runc's
// ecosystem uses, on the syscalls of every architecture.
func TestSyscallTablesAgreeWithGoSeccompBPF(t *testing.T) {
	for goarch, table := range map[string]archTable{"amd64": archX86_64, "386": archI386, "arm64": archAarch64, "arm": archARM} {
		info, err := arch.GetInfo(goarch)
		if err != nil {
			t.Fatal(err)
		}
		if uint32(info.ID) != table.audit {
			t.Errorf("%s: audit arch %#x, go-seccomp-bpf says %#x", goarch, table.audit, uint32(info.ID))
		}
		// go-seccomp-bpf also names a few calls x/sys does not (arm's
		// private cacheflush and set_tls, 32-bit names on arm64): a rule
		// naming one is skipped. Every name both know must agree.
		known := 0
		for name, want := range info.SyscallNames {
			if got, ok := table.nr(name); ok {
				known++
				if got != uint32(want) {
					t.Errorf("%s: syscall %s: %d, want %d", goarch, name, got, want)
				}
			}
		}
		if known < len(info.SyscallNames)*9/10 {
			t.Errorf("%s: only %d of go-seccomp-bpf's %d syscalls known", goarch, known, len(info.SyscallNames))
		}
		if _, ok := table.nr("no_such_syscall"); ok {
			t.Errorf("%s: an unknown name was found", goarch)
		}
	}
}

// A spec that lists the architecture beside the native one (as Docker's
// default profile lists x86 on x86_64) gets its calls judged by their own
// numbers; one that does not, ENOSYS for them.
func TestTheArchitectureBesideTheNativeOneIsCovered(t *testing.T) {
	if len(nativeArches) < 2 {
		t.Skip("no second architecture here")
	}
	native, beside := nativeArches[0], nativeArches[1]
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	enosys := unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	profile := func(arches ...specs.Arch) []unix.SockFilter {
		// Enough rules that the second block lies beyond a conditional
		// jump's reach from the architecture checks.
		var names []string
		for _, s := range native.syscalls[:300] {
			names = append(names, s.name)
		}
		f, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: arches, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid", "personality"}, Action: specs.ActAllow, Args: nil},
			{Names: names, Action: specs.ActLog},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	both := profile(native.name, beside.name)
	for _, a := range []archTable{native, beside} {
		if got := run(t, both, a.audit, "getpid"); got != unix.SECCOMP_RET_ALLOW {
			t.Errorf("%s getpid: %#x, want allow", a.name, got)
		}
		if got := run(t, both, a.audit, "kexec_load"); got != eperm && got != unix.SECCOMP_RET_LOG {
			t.Errorf("%s kexec_load: %#x, want the default or the log rule", a.name, got)
		}
	}
	// getpid's number on the native architecture is another call on the
	// other: the filter must not mix them up.
	if nr, _ := native.nr("getpid"); true {
		other := ""
		for _, s := range beside.syscalls {
			if s.nr == nr {
				other = s.name
			}
		}
		if other != "" && other != "getpid" && other != "personality" {
			if got := run(t, both, beside.audit, other); got == unix.SECCOMP_RET_ALLOW {
				t.Errorf("%s %s (number %d, getpid's on %s) was allowed", beside.name, other, nr, native.name)
			}
		}
	}
	nativeOnly := profile(native.name)
	if got := run(t, nativeOnly, beside.audit, "getpid"); got != enosys {
		t.Errorf("%s not listed: getpid gave %#x, want ENOSYS", beside.name, got)
	}
	if got := run(t, nativeOnly, native.audit, "getpid"); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("%s getpid: %#x, want allow", native.name, got)
	}
}
