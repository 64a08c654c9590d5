//go:build !embedkubectl

package kubectlbin

// embedded is empty in development builds: skiff-kubectl is found beside skiff.
var embedded []byte
