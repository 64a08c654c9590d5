//go:build !embedruntime

package binary

// embedded is empty in development builds: skiff-runtime is found beside skiff.
var embedded []byte
