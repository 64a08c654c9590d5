package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

//go:generate go run gen_syscalls.go

// syscallNumber is one entry of the tables in ztable_*_gen.go.
type syscallNumber struct {
	name string
	nr   uint32
}

// archTable is an architecture a filter can cover.
type archTable struct {
	audit    uint32     // AUDIT_ARCH_*, as seccomp_data.arch has it
	name     specs.Arch // as a spec's architectures name it
	syscalls []syscallNumber
}

var (
	archX86_64  = archTable{unix.AUDIT_ARCH_X86_64, specs.ArchX86_64, syscallsX86_64}
	archI386    = archTable{unix.AUDIT_ARCH_I386, specs.ArchX86, syscallsI386}
	archAarch64 = archTable{unix.AUDIT_ARCH_AARCH64, specs.ArchAARCH64, syscallsAarch64}
	archARM     = archTable{unix.AUDIT_ARCH_ARM, specs.ArchARM, syscallsArm}
)

// x32Bit marks the numbers of x32 calls on x86_64 (__X32_SYSCALL_BIT).
const x32Bit = 0x40000000

// filterArches are the architectures a filter covers: this machine's
// (nativeArches[0]), always, and the one beside it when listed.
func filterArches(listed []specs.Arch) []archTable {
	if len(nativeArches) == 0 {
		return nil
	}
	out := nativeArches[:1]
	for _, a := range nativeArches[1:] {
		if slices.Contains(listed, a.name) {
			out = append(out[:len(out):len(out)], a)
		}
	}
	return out
}

// nr is the number of the named syscall on this architecture.
func (a archTable) nr(name string) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(a.syscalls, name, func(s syscallNumber, name string) int {
		switch {
		case s.name < name:
			return -1
		case s.name > name:
			return 1
		}
		return 0
	})
	if !ok {
		return 0, false
	}
	return a.syscalls[i].nr, true
}
