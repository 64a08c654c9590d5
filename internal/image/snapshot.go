package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

var validKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (s *Store) snapshotDir(key string) string { return filepath.Join(s.root, "snapshots", key) }

// Prepare makes a writable snapshot of img for one container: an overlayfs
// whose lower layers are the image's shared, read-only unpacked layers and
// whose upper directory is the snapshot's own. It returns the mounted root.
func (s *Store) Prepare(key string, img *Image) (string, error) {
	if !validKey.MatchString(key) {
		return "", fmt.Errorf("invalid snapshot key %q", key)
	}
	unlock, err := s.lock(false)
	if err != nil {
		return "", err
	}
	defer unlock()
	dir := s.snapshotDir(key)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("snapshot %s already exists", key)
		}
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	// What the snapshot uses, so that prune keeps it even if the
	// reference later names other layers.
	var used []string
	for _, l := range img.Layers {
		used = append(used, l.DiffID.Hex)
	}
	if err := os.WriteFile(filepath.Join(dir, "layers"), []byte(strings.Join(used, "\n")), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "image"), []byte(img.Ref), 0o644); err != nil {
		return "", err
	}
	// Top layer first, as overlayfs wants; each through its short link
	// (see mountOverlay).
	lowers := make([]string, 0, len(img.Layers))
	for i := len(img.Layers) - 1; i >= 0; i-- {
		l, err := s.shortLink(img.Layers[i].DiffID.Hex)
		if err != nil {
			return "", fmt.Errorf("layer %s: %w", img.Layers[i].DiffID, err)
		}
		lowers = append(lowers, l)
	}
	if len(lowers) == 0 {
		// An image without layers still needs a lower directory.
		empty := filepath.Join(dir, "empty")
		os.Mkdir(empty, 0o755)
		lowers = append(lowers, empty)
	}
	merged := filepath.Join(dir, "merged")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lowers, ":"),
		filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if len(opts) >= 4096 {
		return "", fmt.Errorf("snapshot %s: %d layers do not fit in overlay's mount options", key, len(img.Layers))
	}
	if err := s.mountOverlay(merged, opts); err != nil {
		return "", fmt.Errorf("mount snapshot %s: %w", key, err)
	}
	ok = true
	return merged, nil
}

// shortLink returns "l/<id>", a short name (relative to the store's root)
// for an unpacked layer, as Docker's overlay2 driver keeps: the mount
// options must fit in one page, which long absolute paths of many layers
// would not.
func (s *Store) shortLink(hex string) (string, error) {
	layer := filepath.Join(s.root, "layers", "sha256", hex)
	if _, err := os.Stat(layer); err != nil {
		return "", fmt.Errorf("not unpacked: %w", ErrNotFound)
	}
	rel := filepath.Join("l", hex[:16])
	link := filepath.Join(s.root, rel)
	if _, err := os.Lstat(link); err == nil {
		return rel, nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return "", err
	}
	if err := os.Symlink(filepath.Join("..", "layers", "sha256", hex), link); err != nil && !os.IsExist(err) {
		return "", err
	}
	return rel, nil
}

// mountOverlay mounts with lower directories relative to the store's root:
// on a thread of its own whose working directory (unshared from the rest
// of the process) is the root. The thread is discarded afterwards.
func (s *Store) mountOverlay(target, opts string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		if err := unix.Chdir(s.root); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount("overlay", target, "overlay", 0, opts)
	}()
	return <-errc
}

// Remove unmounts a snapshot and deletes its writable layer.
func (s *Store) Remove(key string) error {
	if !validKey.MatchString(key) {
		return fmt.Errorf("invalid snapshot key %q", key)
	}
	dir := s.snapshotDir(key)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("snapshot %s: %w", key, ErrNotFound)
	}
	merged := filepath.Join(dir, "merged")
	if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount snapshot %s: %w", key, err)
	}
	return os.RemoveAll(dir)
}

// Snapshots lists the snapshot keys and the image each uses.
func (s *Store) Snapshots() (map[string]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		ref, err := os.ReadFile(filepath.Join(s.root, "snapshots", e.Name(), "image"))
		if err == nil {
			out[e.Name()] = string(ref)
		}
	}
	return out, nil
}

// snapshotLayers returns the diffIDs (hex) every snapshot uses.
func (s *Store) snapshotLayers() (map[string]bool, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(s.root, "snapshots", e.Name(), "layers"))
		if err != nil {
			continue
		}
		for _, h := range strings.Fields(string(data)) {
			out[h] = true
		}
	}
	return out, nil
}
