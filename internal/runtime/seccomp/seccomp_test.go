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
	info, _ := arch.GetInfo("")
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
// ecosystem uses, on every syscall this architecture has.
func TestSyscallTablesAgreeWithGoSeccompBPF(t *testing.T) {
	info, err := arch.GetInfo("")
	if err != nil {
		t.Skip(err)
	}
	if uint32(info.ID) != nativeArch {
		t.Errorf("native audit arch %#x, go-seccomp-bpf says %#x", nativeArch, uint32(info.ID))
	}
	for name, want := range info.SyscallNames {
		if got, ok := syscallNr(name); !ok || got != uint32(want) {
			t.Errorf("syscall %s: %d (found %v), want %d", name, got, ok, want)
		}
	}
	if _, ok := syscallNr("no_such_syscall"); ok {
		t.Error("an unknown name was found")
	}
}
