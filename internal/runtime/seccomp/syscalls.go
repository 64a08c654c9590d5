package seccomp

import "slices"

//go:generate go run gen_syscalls.go

// syscallNumber is one entry of the tables in syscalls_<arch>.go.
type syscallNumber struct {
	name string
	nr   uint32
}

// x32Bit marks the numbers of x32 calls on x86_64 (__X32_SYSCALL_BIT).
const x32Bit = 0x40000000

// syscallNr is the number of the named syscall on this architecture.
func syscallNr(name string) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(syscallNumbers, name, func(s syscallNumber, name string) int {
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
	return syscallNumbers[i].nr, true
}
