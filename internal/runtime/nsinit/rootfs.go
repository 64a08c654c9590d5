package nsinit

import (
	"errors"

	"fmt"
	securejoin "github.com/cyphar/filepath-securejoin"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mountFlags maps mount(8) options to flags; clear reports options that
// remove a flag.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
	"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
}

var propagationFlags = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions splits options into flags, propagation flags and the
// filesystem's data string.
func parseMountOptions(opts []string) (flags uintptr, propagation []uintptr, data string) {
	var rest []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if p, ok := propagationFlags[o]; ok {
			propagation = append(propagation, p)
			continue
		}
		rest = append(rest, o)
	}
	return flags, propagation, strings.Join(rest, ",")
}

// setupRootfs prepares the new mount namespace: the root, the spec's mounts
// in order, /dev, then pivot_root and the masked and read-only paths.
func setupRootfs(spec *specs.Spec, rootfs string, cgroupPaths map[string]string) error {
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if spec.Linux != nil && spec.Linux.RootfsPropagation != "" {
		p, ok := propagationFlags[spec.Linux.RootfsPropagation]
		if !ok {
			return fmt.Errorf("unknown rootfsPropagation %q", spec.Linux.RootfsPropagation)
		}
		prop = p
	}
	// By default nothing we mount propagates back to the host; a spec may
	// ask for shared propagation (bidirectional volumes).
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("make / %v: %w", prop, err)
	}
	// pivot_root refuses a new root whose parent mount is shared: make
	// that one mount private, as runc does. (After a recursive slave or
	// private, none is.)
	if prop&unix.MS_SHARED != 0 {
		if err := makeParentMountPrivate(rootfs); err != nil {
			return err
		}
	}
	// pivot_root needs the new root to be a mount point.
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s: %w", rootfs, err)
	}
	devMounted := false
	for _, m := range spec.Mounts {
		if err := mountInto(rootfs, m, cgroupPaths); err != nil {
			return err
		}
		if filepath.Clean(m.Destination) == "/dev" {
			devMounted = true
		}
	}
	if devMounted {
		if err := populateDev(rootfs, spec); err != nil {
			return err
		}
	}
	return pivotRoot(rootfs)
}

// hardenRootfs masks and write-protects paths and makes the root
// read-only, after the sysctls (which write to /proc/sys) are applied.
func hardenRootfs(spec *specs.Spec) error {
	if spec.Linux != nil {
		for _, p := range spec.Linux.MaskedPaths {
			if err := maskPath(p); err != nil {
				return err
			}
		}
		for _, p := range spec.Linux.ReadonlyPaths {
			if err := readonlyPath(p); err != nil {
				return err
			}
		}
	}
	if spec.Root != nil && spec.Root.Readonly {
		if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("make root read-only: %w", err)
		}
	}
	// The root's own propagation, as the spec asks (default: none back).
	if spec.Linux != nil && spec.Linux.RootfsPropagation != "" {
		unix.Mount("", "/", "", propagationFlags[spec.Linux.RootfsPropagation], "")
	}
	return nil
}

// makeParentMountPrivate makes the mount that holds path private (not
// recursively), if it is shared.
func makeParentMountPrivate(path string) error {
	mnt, shared, err := mountOf(path)
	if err != nil || !shared {
		return err
	}
	if err := unix.Mount("", mnt, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", mnt, err)
	}
	return nil
}

// mountOf returns the mount point holding path (the longest mount-point
// prefix in mountinfo) and whether it is shared.
func mountOf(path string) (string, bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false, err
	}
	best, shared := "", false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		mp := f[4]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, shared = mp, false
			for _, opt := range f[6:] {
				if opt == "-" {
					break
				}
				if strings.HasPrefix(opt, "shared:") {
					shared = true
				}
			}
		}
	}
	return best, shared, nil
}

// securePath resolves dest inside rootfs, following the image's symlinks
// as the container would see them (relative to its root), so that no
// mount or file lands outside the rootfs (/var/run -> /run resolves to
// <rootfs>/run, a link to /etc on the host to <rootfs>/etc).
func securePath(rootfs, dest string) (string, error) {
	p, err := securejoin.SecureJoin(rootfs, dest)
	if err != nil {
		return "", fmt.Errorf("mount destination %s: %w", dest, err)
	}
	if p != rootfs && !strings.HasPrefix(p, rootfs+"/") {
		return "", fmt.Errorf("mount destination %s escapes the rootfs", dest)
	}
	return p, nil
}

func mountInto(rootfs string, m specs.Mount, cgroupPaths map[string]string) error {
	dest, err := securePath(rootfs, m.Destination)
	if err != nil {
		return err
	}
	flags, prop, data := parseMountOptions(m.Options)
	typ := m.Type
	if typ == "bind" {
		flags |= unix.MS_BIND
	}
	if flags&unix.MS_BIND != 0 {
		st, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("bind mount source %s: %w", m.Source, err)
		}
		if err := createMountpoint(dest, st.IsDir()); err != nil {
			return err
		}
		if err := unix.Mount(m.Source, dest, "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", m.Source, m.Destination, err)
		}
		// Bind mounts take their other flags through a remount, which must
		// keep the flags the source mount is locked with (a nosuid,noexec
		// source stays so).
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rest != 0 {
			rest |= lockedFlags(dest)
			if err := unix.Mount("", dest, "", rest|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
				return fmt.Errorf("remount %s: %w", m.Destination, err)
			}
		}
	} else {
		if typ == "cgroup" || typ == "cgroup2" {
			return mountCgroup(dest, flags, cgroupPaths)
		}
		if err := createMountpoint(dest, true); err != nil {
			return err
		}
		if err := unix.Mount(m.Source, dest, typ, flags, data); err != nil {
			if typ == "sysfs" && errors.Is(err, unix.EPERM) {
				// A sysfs of the host's network namespace cannot be mounted
				// from another: bind the host's, read-only, instead.
				return bindReadonly("/sys", dest)
			}
			return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, typ, m.Destination, err)
		}
	}
	for _, p := range prop {
		if err := unix.Mount("", dest, "", p, ""); err != nil {
			return fmt.Errorf("set propagation of %s: %w", m.Destination, err)
		}
	}
	return nil
}

// bindReadonly binds src on dest read-only, every mount below it included
// (a remount of the top alone would leave the v1 cgroup controllers under
// /sys/fs/cgroup writable).
func bindReadonly(src, dest string) error {
	if err := unix.Mount(src, dest, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(-1, dest, unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("make %s read-only: %w", dest, err)
	}
	return nil
}

// lockedFlags are the flags of the mount at path that a bind remount must
// repeat.
func lockedFlags(path string) uintptr {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return 0
	}
	var f uintptr
	for _, m := range []struct{ st, ms uintptr }{
		{unix.ST_RDONLY, unix.MS_RDONLY}, {unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(st.Flags)&m.st != 0 {
			f |= m.ms
		}
	}
	return f
}

// mountCgroup gives the container a read-only view of its own cgroups:
// the cgroup2 filesystem where the host is unified (the cgroup namespace
// roots it at the container's cgroup), else a tmpfs holding, per v1
// controller, the container's own cgroup directory, as runc does, so that
// /sys/fs/cgroup/memory/memory.limit_in_bytes is the container's limit.
func mountCgroup(dest string, flags uintptr, paths map[string]string) error {
	if err := createMountpoint(dest, true); err != nil {
		return err
	}
	if cgroupV2Host() {
		if err := unix.Mount("cgroup2", dest, "cgroup2", flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mount cgroup2: %w", err)
		}
		return nil
	}
	if err := unix.Mount("tmpfs", dest, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return fmt.Errorf("mount cgroup tmpfs: %w", err)
	}
	for name, src := range paths {
		switch {
		case name == "":
			name = "unified"
		case strings.HasPrefix(name, "name="):
			name = strings.TrimPrefix(name, "name=")
		}
		target := filepath.Join(dest, name)
		if err := unix.Mkdir(target, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", target, err)
		}
		if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				unix.Rmdir(target) // a controller the manager skipped
				continue
			}
			return fmt.Errorf("bind %s: %w", src, err)
		}
	}
	// Read-only from now on, the tmpfs and every controller below it, in
	// one change.
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(-1, dest, unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("make %s read-only: %w", dest, err)
	}
	return nil
}

func createMountpoint(dest string, dir bool) error {
	if dir {
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", dest, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", filepath.Dir(dest), err)
	}
	f, err := os.OpenFile(dest, os.O_CREATE, 0o644)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", dest, err)
	}
	if f != nil {
		f.Close()
	}
	return nil
}

// defaultDevices are the nodes every container's /dev gets.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

func populateDev(rootfs string, spec *specs.Spec) error {
	old := unix.Umask(0)
	defer unix.Umask(old)
	// The default nodes and links go straight into the tmpfs just mounted
	// on /dev, by name, with no paths to resolve.
	devPath, err := securePath(rootfs, "/dev")
	if err != nil {
		return err
	}
	dev, err := unix.Open(devPath, unix.O_DIRECTORY|unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", devPath, err)
	}
	defer unix.Close(dev)
	for _, d := range defaultDevices {
		name := strings.TrimPrefix(d.Path, "/dev/")
		if err := unix.Mknodat(dev, name, unix.S_IFCHR|0o666, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
			return fmt.Errorf("mknod %s: %w", d.Path, err)
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
		{"/proc/kcore", "core"},
	}
	var st unix.Stat_t
	if unix.Fstatat(dev, "pts/ptmx", &st, 0) == nil {
		links = append(links, [2]string{"pts/ptmx", "ptmx"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], dev, l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	// The spec's own devices, wherever they go; one may replace a default.
	if spec.Linux == nil {
		return nil
	}
	for _, d := range spec.Linux.Devices {
		p, err := securePath(rootfs, d.Path)
		if err != nil {
			return err
		}
		mode := uint32(0o666)
		if d.FileMode != nil {
			mode = uint32(*d.FileMode)
		}
		switch d.Type {
		case "c", "u":
			mode |= unix.S_IFCHR
		case "b":
			mode |= unix.S_IFBLK
		case "p":
			mode |= unix.S_IFIFO
		default:
			return fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.Remove(p)
		if err := unix.Mknod(p, mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
			return fmt.Errorf("mknod %s: %w", d.Path, err)
		}
		uid, gid := 0, 0
		if d.UID != nil {
			uid = int(*d.UID)
		}
		if d.GID != nil {
			gid = int(*d.GID)
		}
		os.Lchown(p, uid, gid)
	}
	return nil
}

// pivotRoot makes rootfs the root and detaches the old one, with the
// pivot_root(".", ".") sequence that needs no directory for the old root.
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir rootfs: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", rootfs, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	// Stop the old root's unmount from reaching the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// maskPath hides a path: /dev/null over a file, an empty read-only tmpfs
// over a directory.
func maskPath(p string) error {
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	if st.IsDir() {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	} else {
		// Only the real /dev/null may hide a file: an image's own
		// /dev/null could be a link to something writable.
		var ns unix.Stat_t
		if err := unix.Lstat("/dev/null", &ns); err != nil || ns.Mode&unix.S_IFMT != unix.S_IFCHR || ns.Rdev != unix.Mkdev(1, 3) {
			return fmt.Errorf("mask %s: /dev/null is not the null device", p)
		}
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("readonly %s: %w", p, err)
	}
	if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("readonly %s: %w", p, err)
	}
	return nil
}
