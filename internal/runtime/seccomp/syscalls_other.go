//go:build !amd64 && !arm64

package seccomp

// No tables for this architecture yet (see gen_syscalls.go): Compile
// refuses filters here.
const nativeArch = 0

var syscallNumbers []syscallNumber
