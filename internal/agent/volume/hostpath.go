package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// setupHostPath checks src's type, creating the path for the OrCreate types
// as the kubelet does, and returns the path itself.
func setupHostPath(src *corev1.HostPathVolumeSource) (string, error) {
	p := src.Path
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("hostPath %q: must be an absolute path", p)
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return "", fmt.Errorf("hostPath %q: must not contain '..'", p)
	}
	var t corev1.HostPathType
	if src.Type != nil {
		t = *src.Type
	}
	if err := checkHostPath(p, t); err != nil {
		return "", fmt.Errorf("hostPath type check failed: %w", err)
	}
	return p, nil
}

// hostPathKinds says, for each type that checks, what the path must be.
var hostPathKinds = map[corev1.HostPathType]struct {
	what string
	is   func(fs.FileMode) bool
}{
	corev1.HostPathDirectoryOrCreate: {"a directory", fs.FileMode.IsDir},
	corev1.HostPathDirectory:         {"a directory", fs.FileMode.IsDir},
	corev1.HostPathFileOrCreate:      {"a file", fs.FileMode.IsRegular},
	corev1.HostPathFile:              {"a file", fs.FileMode.IsRegular},
	corev1.HostPathSocket:            {"a socket file", func(m fs.FileMode) bool { return m&fs.ModeSocket != 0 }},
	corev1.HostPathCharDev:           {"a character device", func(m fs.FileMode) bool { return m&fs.ModeCharDevice != 0 }},
	corev1.HostPathBlockDev: {"a block device", func(m fs.FileMode) bool {
		return m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0
	}},
}

// checkHostPath makes sure p is what t says, following symlinks.
func checkHostPath(p string, t corev1.HostPathType) error {
	if t == corev1.HostPathUnset {
		return nil
	}
	kind, ok := hostPathKinds[t]
	if !ok {
		return fmt.Errorf("%q is not a valid hostPath type", t)
	}
	info, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist) && t == corev1.HostPathDirectoryOrCreate:
		// MkdirAll's mode is filtered by the umask; the kubelet's 0755 is meant.
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("create directory %s: %w", p, err)
		}
		return os.Chmod(p, 0o755)
	case errors.Is(err, fs.ErrNotExist) && t == corev1.HostPathFileOrCreate:
		// As in Kubernetes the parent directory must exist already.
		f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) { // made meanwhile: check what it is
			return checkHostPath(p, corev1.HostPathFile)
		}
		if err != nil {
			return fmt.Errorf("create file %s: %w", p, err)
		}
		f.Close()
		return os.Chmod(p, 0o644)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist (type %s)", p, t)
	case err != nil:
		return err
	}
	if !kind.is(info.Mode()) {
		return fmt.Errorf("%s is not %s (type %s)", p, kind.what, t)
	}
	return nil
}
