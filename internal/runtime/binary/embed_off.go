//go:build !embedruntime

package binary

// Empty in development builds: the binaries are found beside skiff.
var embeddedRuntime, embeddedInit []byte
