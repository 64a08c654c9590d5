// Command skiff-runtime is skiff's OCI runtime: a runc-compatible command
// line, and the shim and init processes behind every container. It is kept
// small (no Kubernetes or etcd libraries) because it runs on every
// container start.
package main

import (
	"os"
	goruntime "runtime"

	"github.com/skiff-sh/skiff/internal/runtime/cli"
)

func init() {
	// The container init must stay on the main thread: namespaces joined
	// with setns and capabilities apply per thread and carry over execve.
	if len(os.Args) > 1 && (os.Args[1] == "init" || os.Args[1] == "exec-init") {
		goruntime.LockOSThread()
	}
}

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
