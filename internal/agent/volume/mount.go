package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// mountTmpfs makes dir (and its parents) and mounts a tmpfs of size bytes
// there (the kernel's default size for 0) unless one is there already;
// mounted says whether it mounted now. The tmpfs root keeps tmpfs's mode
// 1777, as under the kubelet.
func mountTmpfs(dir string, size int64) (mounted bool, err error) {
	if _, err := makeDir(dir); err != nil {
		return false, err
	}
	ok, err := isTmpfs(dir)
	if err != nil || ok {
		return false, err
	}
	var data string
	if size > 0 {
		data = "size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, data); err != nil {
		return false, fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return true, nil
}

// isTmpfs reports whether a tmpfs is mounted on dir. A mount point has
// another device than its parent, even when both are tmpfs; anything else
// mounted there is an error, not something to mount over.
func isTmpfs(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		return false, fmt.Errorf("stat %s: %w", filepath.Dir(dir), err)
	}
	if st.Dev == parent.Dev {
		return false, nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return false, fmt.Errorf("statfs %s: %w", dir, err)
	}
	if fs.Type != unix.TMPFS_MAGIC {
		return false, fmt.Errorf("%s is a mount point but not a tmpfs (type %#x)", dir, fs.Type)
	}
	return true, nil
}

// unmountAll unmounts every mount on or under dir, the deepest first, and
// fails unless none is left: the caller removes dir next, which must not
// reach into a mounted filesystem.
func unmountAll(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Mounts stacked on one point come off one per round.
	for range 8 {
		points, err := mountsUnder(real)
		if err != nil || len(points) == 0 {
			return err
		}
		for _, p := range points {
			err := unix.Unmount(p, 0)
			if errors.Is(err, unix.EBUSY) {
				// A process of this mount namespace still uses it; containers
				// have their own copies. Detaching leaves dir free to remove.
				err = unix.Unmount(p, unix.MNT_DETACH)
			}
			if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("unmount %s: %w", p, err)
			}
		}
	}
	points, err := mountsUnder(real)
	if err == nil && len(points) > 0 {
		err = fmt.Errorf("still mounted: %s", strings.Join(points, ", "))
	}
	return err
}

// mountsUnder lists the mount points on or under dir, the deepest first.
func mountsUnder(dir string) ([]string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, err
	}
	points := make([]string, 0, len(mounts))
	for _, m := range mounts {
		points = append(points, m.Mountpoint)
	}
	slices.SortStableFunc(points, func(a, b string) int { return len(b) - len(a) })
	return points, nil
}
