package nsinit

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// RunPause is a pod's infra process: it holds the pod's namespaces, reaps
// whatever is reparented to it, and ends on SIGINT or SIGTERM, as the
// Kubernetes pause container does.
func RunPause() int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGCHLD)
	for s := range sigs {
		if s != unix.SIGCHLD {
			return 0
		}
		for {
			var ws unix.WaitStatus
			if pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
	return 0
}
