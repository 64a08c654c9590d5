package network

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A network namespace belongs to a thread, so code that enters one runs on
// its own goroutine, locked to its OS thread, and moves the thread back
// before unlocking it. A thread that cannot be moved back stays locked: its
// goroutine ends and the Go runtime ends the thread with it, so no other
// goroutine ever runs in the wrong namespace.

// pin creates a network namespace and pins it at path with a bind mount of
// its nsfs file, so that it lives until unpin, whatever processes come and go.
// A path that already holds a namespace is kept; created says whether a new
// one was made.
func pin(path string) (created bool, err error) {
	if isPinned(path) {
		return false, nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return false, fmt.Errorf("pin netns %s: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread() // unshare failed: the thread is unchanged
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		merr := unix.Mount(src, path, "", unix.MS_BIND, "")
		if merr != nil {
			merr = fmt.Errorf("bind mount %s: %w", src, merr)
		}
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(merr, fmt.Errorf("restore netns: %w", err))
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- merr
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return false, fmt.Errorf("pin netns %s: %w", path, err)
	}
	return true, nil
}

// unpin unmounts and removes a pinned namespace; a missing one is no error.
// The namespace itself goes when nothing else holds it.
func unpin(path string) error {
	// Bounded: a path mounted over more than once needs one unmount each.
	for range 8 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not (or no longer) a mount point
		}
		if err != nil {
			return fmt.Errorf("unpin netns %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin netns %s: %w", path, err)
	}
	return nil
}

// isPinned reports whether path holds a network namespace.
func isPinned(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// inNetns runs fn in the network namespace pinned at path.
func inNetns(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread() // setns failed: the thread is unchanged
			errc <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// handleAt opens a netlink handle in the namespace pinned at path. Its
// socket stays in that namespace, so the handle works from any thread.
func handleAt(path string) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := inNetns(path, func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return h, nil
}
