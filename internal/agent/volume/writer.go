package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// file is one file of a volume's payload.
type file struct {
	data []byte
	mode os.FileMode // permission bits
}

// The kubelet's AtomicWriter layout. A volume directory holds:
//
//	..2024_05_01_10_00_00.123456789/  one version of the payload (timestamped)
//	..data -> ..2024_05_01_10_00_00.123456789
//	key -> ..data/key                  one symlink per top-level name
//
// A new version is written beside the old one and ..data is swapped to it
// with a rename, so a container that bind-mounts the directory sees either
// the old payload or the new one, never a mix; the directory itself (the
// bind mount's source) never changes.
const (
	dataDir    = "..data"
	newDataDir = "..data_tmp"
)

// writeAtomic makes dir (which exists) show exactly payload, keyed by paths
// relative to dir. It writes nothing when dir shows payload already. With a
// fsGroup the files get its group and group read, as the kubelet does.
func writeAtomic(dir string, payload map[string]file, gid *int64) error {
	files, err := cleanPayload(payload, gid)
	if err != nil {
		return err
	}
	old, err := os.Readlink(filepath.Join(dir, dataDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", dataDir, err)
	}
	var oldFiles map[string]bool
	if old != "" {
		if oldFiles, err = listFiles(filepath.Join(dir, old)); err != nil {
			return err
		}
	}
	same, err := shows(filepath.Join(dir, old), oldFiles, files)
	if err != nil {
		return err
	}
	if !same {
		if err := writeVersion(dir, files, gid); err != nil {
			return err
		}
	}
	// Even with nothing new, redo the links and clean-up: an earlier write
	// may have stopped between the swap and here.
	return link(dir, topNames(files))
}

// cleanPayload validates payload's paths and returns it keyed by clean path,
// with each file's mode as it is on disk.
func cleanPayload(payload map[string]file, gid *int64) (map[string]file, error) {
	files := make(map[string]file, len(payload))
	for p, f := range payload {
		if err := checkPath(p); err != nil {
			return nil, err
		}
		f.mode &= fs.ModePerm
		if gid != nil {
			f.mode |= 0o440 // what applyFSGroup adds to a read-only volume
		}
		files[filepath.Clean(p)] = f
	}
	for p := range files {
		// A file also used as a directory ("a" and "a/b") cannot be written.
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			if _, ok := files[d]; ok {
				return nil, fmt.Errorf("invalid path %q: %q is a file", p, d)
			}
		}
	}
	return files, nil
}

// checkPath applies the API's rules for a file path in a volume: relative,
// no ".." element, and not starting with ".." (names the writer keeps for
// itself).
func checkPath(p string) error {
	switch {
	case p == "" || filepath.Clean(p) == ".":
		return fmt.Errorf("invalid path %q: must name a file", p)
	case filepath.IsAbs(p):
		return fmt.Errorf("invalid path %q: must be relative", p)
	case len(p) > 4096:
		return fmt.Errorf("invalid path %q: longer than 4096 characters", p)
	}
	elems := strings.Split(p, "/")
	for _, e := range elems {
		if e == ".." {
			return fmt.Errorf("invalid path %q: must not contain '..'", p)
		}
		if len(e) > 255 {
			return fmt.Errorf("invalid path %q: element longer than 255 characters", p)
		}
	}
	if strings.HasPrefix(elems[0], "..") {
		return fmt.Errorf("invalid path %q: must not start with '..'", p)
	}
	return nil
}

// listFiles returns the paths of the regular files under dir, relative to it.
func listFiles(dir string) (map[string]bool, error) {
	files := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			files[rel] = true
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a dangling ..data: write anew
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return files, nil
}

// shows reports whether version (holding the files onDisk) has exactly
// files, with the same contents and modes.
func shows(version string, onDisk map[string]bool, files map[string]file) (bool, error) {
	if onDisk == nil || len(onDisk) != len(files) {
		return false, nil
	}
	for p, f := range files {
		if !onDisk[p] {
			return false, nil
		}
		path := filepath.Join(version, p)
		info, err := os.Lstat(path)
		if err != nil {
			return false, fmt.Errorf("compare %s: %w", path, err)
		}
		if info.Mode().Perm() != f.mode {
			return false, nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return false, fmt.Errorf("compare %s: %w", path, err)
		}
		if !bytes.Equal(data, f.data) {
			return false, nil
		}
	}
	return true, nil
}

// writeVersion writes files into a new timestamped directory of dir and
// points ..data at it.
func writeVersion(dir string, files map[string]file, gid *int64) error {
	version, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return fmt.Errorf("make payload directory: %w", err)
	}
	if err := writeFiles(version, files); err != nil {
		os.RemoveAll(version)
		return err
	}
	if err := applyFSGroup(dir, gid, true); err != nil {
		os.RemoveAll(version)
		return err
	}
	tmp := filepath.Join(dir, newDataDir)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", newDataDir, err)
	}
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		os.RemoveAll(version)
		return fmt.Errorf("link %s: %w", newDataDir, err)
	}
	// rename(2) replaces the old link in one step: this is the swap.
	if err := os.Rename(tmp, filepath.Join(dir, dataDir)); err != nil {
		os.Remove(tmp)
		os.RemoveAll(version)
		return fmt.Errorf("swap %s: %w", dataDir, err)
	}
	return nil
}

// writeFiles writes files under version: directories 0755, each file with
// its mode whatever the umask.
func writeFiles(version string, files map[string]file) error {
	for p, f := range files {
		path := filepath.Join(version, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.WriteFile(path, f.data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.Chmod(path, f.mode); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return filepath.WalkDir(version, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chmod(p, 0o755)
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		return nil
	})
}

// topNames returns the first element of each path of files.
func topNames(files map[string]file) map[string]bool {
	names := make(map[string]bool, len(files))
	for p := range files {
		top, _, _ := strings.Cut(p, "/")
		names[top] = true
	}
	return names
}

// link makes dir's user-visible entries the links name -> ..data/name for
// names, removes links of names no longer there and versions other than the
// one ..data points at.
func link(dir string, names map[string]bool) error {
	current, err := os.Readlink(filepath.Join(dir, dataDir))
	if err != nil {
		return fmt.Errorf("read %s: %w", dataDir, err)
	}
	for name := range names {
		target := filepath.Join(dataDir, name)
		p := filepath.Join(dir, name)
		if t, err := os.Readlink(p); err == nil && t == target {
			continue
		}
		if err := os.Symlink(target, p); err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case name == dataDir || name == current || names[name]:
		case strings.HasPrefix(name, "..") && e.IsDir():
			err = os.RemoveAll(p) // an old version
		case e.Type()&fs.ModeSymlink != 0:
			if t, _ := os.Readlink(p); strings.HasPrefix(t, dataDir+"/") {
				err = os.Remove(p) // a name the payload dropped
			}
		}
		if err != nil {
			return fmt.Errorf("clean up %s: %w", name, err)
		}
	}
	return nil
}
