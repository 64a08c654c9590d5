// Command skiff-init is what runs behind every container: its shim (the
// container's parent, which records how it exits), its init (which builds
// the container and execs its program) and the init of processes exec'd
// into it, and a pod's pause process. It links only what that needs, so that each of these processes
// starts in about the time of an empty Go program; skiff-runtime, beside
// it, is the command line.
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/skiff-sh/skiff/internal/runtime/nsinit"
)

func init() {
	// The inits must stay on the main thread: namespaces joined with setns
	// and capabilities apply per thread and carry over execve.
	if len(os.Args) > 1 && (os.Args[1] == "init" || os.Args[1] == "exec-init") {
		runtime.LockOSThread()
	}
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "shim":
			os.Exit(nsinit.RunShim())
		case "init":
			os.Exit(nsinit.RunInit())
		case "exec-init":
			os.Exit(nsinit.RunExecInit())
		case "pause":
			os.Exit(nsinit.RunPause())
		}
	}
	fmt.Fprintln(os.Stderr, "skiff-init is started by skiff-runtime; it is not run by hand")
	os.Exit(2)
}
