package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Whiteout names of the OCI image layer format.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// maxEntryName bounds a tar entry's path, against hostile headers.
const maxEntryName = 4096

func (s *Store) layerDir(diffID v1.Hash) string {
	return filepath.Join(s.root, "layers", diffID.Algorithm, diffID.Hex)
}

// unpack extracts every layer of img not yet unpacked. Each layer is
// extracted into a temporary directory and renamed into place, so a
// failed or interrupted unpack leaves nothing half-done.
func (s *Store) unpack(img *Image) error {
	for _, l := range img.Layers {
		dir := s.layerDir(l.DiffID)
		if _, err := os.Stat(dir); err == nil {
			continue
		}
		_, err, _ := s.flight.Do("layer:"+l.DiffID.String(), func() (any, error) {
			if _, err := os.Stat(dir); err == nil {
				return nil, nil
			}
			return nil, s.unpackLayer(l, dir)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) unpackLayer(l Layer, dir string) error {
	f, err := s.openBlob(l.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompress(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	defer r.Close()
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	hr := &hashingReader{r: r, h: sha256.New()}
	if err := extract(tar.NewReader(hr), tmp); err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	// Hash to the end of the stream, padding included.
	io.Copy(io.Discard, hr)
	if got := hex.EncodeToString(hr.h.Sum(nil)); got != l.DiffID.Hex {
		return fmt.Errorf("layer %s: %w: uncompressed content hashes to sha256:%s, not %s", l.Digest, ErrDigestMismatch, got, l.DiffID)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process unpacked the same layer first.
		if _, serr := os.Stat(dir); serr == nil {
			return nil
		}
		return err
	}
	return nil
}

// decompress recognises gzip and zstd by their magic bytes; anything else
// is taken as an uncompressed tar.
func decompress(r *bufio.Reader) (io.ReadCloser, error) {
	magic, _ := r.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return gzip.NewReader(r)
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		d, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}

// extract writes a layer's entries under root, turning OCI whiteouts into
// overlayfs ones. No entry is written outside root: paths are cleaned, no
// parent may be a symlink, hard links must point inside, and device nodes
// (other than whiteouts) are skipped.
func extract(tr *tar.Reader, root string) error {
	type dirTimes struct {
		path  string
		mtime time.Time
	}
	var dirs []dirTimes
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		if len(hdr.Name) > maxEntryName || len(hdr.Linkname) > maxEntryName {
			return fmt.Errorf("entry name longer than %d bytes", maxEntryName)
		}
		rel := filepath.Clean("/" + hdr.Name)
		if rel == "/" {
			continue
		}
		parent, base := filepath.Split(rel)
		parentDir, err := safeParent(root, parent)
		if err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
		if base == whiteoutOpaque {
			if err := unix.Setxattr(parentDir, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return fmt.Errorf("opaque %s: %w", parent, err)
			}
			continue
		}
		if strings.HasPrefix(base, whiteoutPrefix) {
			hidden := strings.TrimPrefix(base, whiteoutPrefix)
			if hidden == "" || hidden == "." || hidden == ".." || strings.Contains(hidden, "/") {
				return fmt.Errorf("invalid whiteout %q", hdr.Name)
			}
			target := filepath.Join(parentDir, hidden)
			os.RemoveAll(target)
			if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
				return fmt.Errorf("whiteout %s: %w", hdr.Name, err)
			}
			continue
		}
		path := filepath.Join(parentDir, base)
		// A later entry replaces an earlier one, except a directory over a
		// directory, which keeps its contents.
		if fi, err := os.Lstat(path); err == nil && !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			os.RemoveAll(path)
		}
		// FileInfo().Mode() carries setuid, setgid and sticky as Go's
		// own bits (plain tar mode bits would lose them in os.Chmod).
		mode := hdr.FileInfo().Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			dirs = append(dirs, dirTimes{path, hdr.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			// The target is read inside the container's root: kept as is.
			if err := os.Symlink(hdr.Linkname, path); err != nil {
				return err
			}
		case tar.TypeLink:
			target, err := safeParent(root, filepath.Dir(filepath.Clean("/"+hdr.Linkname)))
			if err != nil {
				return fmt.Errorf("hard link %s: %w", hdr.Name, err)
			}
			target = filepath.Join(target, filepath.Base(filepath.Clean("/"+hdr.Linkname)))
			if fi, err := os.Lstat(target); err != nil || fi.IsDir() {
				return fmt.Errorf("hard link %s: target %s is not a file in the layer", hdr.Name, hdr.Linkname)
			}
			if err := os.Link(target, path); err != nil {
				return err
			}
			continue
		case tar.TypeFifo:
			if err := unix.Mkfifo(path, uint32(mode.Perm())); err != nil {
				return err
			}
		case tar.TypeChar, tar.TypeBlock:
			continue // devices come from the runtime, not from images
		default:
			continue
		}
		if err := os.Lchown(path, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		for k, v := range hdr.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && !strings.HasPrefix(name, "trusted.overlay.") {
				unix.Lsetxattr(path, name, []byte(v), 0)
			}
		}
		if hdr.Typeflag != tar.TypeSymlink {
			if err := os.Chmod(path, mode); err != nil {
				return err
			}
			os.Chtimes(path, hdr.AccessTime, hdr.ModTime)
		} else {
			ts := []unix.Timespec{unix.NsecToTimespec(hdr.AccessTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
			unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
	// Directory times last: writing inside a directory changes its mtime.
	// A later entry may have replaced the directory by a symlink: never
	// follow one.
	for i := len(dirs) - 1; i >= 0; i-- {
		ts := unix.NsecToTimespec(dirs[i].mtime.UnixNano())
		unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// safeParent resolves dir (a cleaned absolute path inside the layer) under
// root, creating missing directories and refusing any component that is a
// symlink or not a directory, so nothing can be written through a link.
func safeParent(root, dir string) (string, error) {
	cur := root
	for _, part := range strings.Split(strings.Trim(dir, "/"), "/") {
		if part == "" {
			continue
		}
		if part == ".." {
			return "", errors.New("path escapes the layer")
		}
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case fi.Mode()&os.ModeSymlink != 0:
			return "", fmt.Errorf("path goes through symlink %s", strings.TrimPrefix(cur, root))
		case !fi.IsDir():
			return "", fmt.Errorf("%s is not a directory", strings.TrimPrefix(cur, root))
		}
	}
	return cur, nil
}
