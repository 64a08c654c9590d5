//go:build !amd64 && !arm64

package seccomp

// nativeArches: none yet on this architecture (gen_syscalls.go can add
// its table), so Compile refuses filters.
var nativeArches []archTable
