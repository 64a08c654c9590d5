// Package kubectlbin locates skiff-kubectl, the real kubectl built on its
// own. Release builds of skiff carry it gzip-compressed (build tag
// embedkubectl, set by `make build`) and unpack it once into the user's
// cache directory; development builds find it beside skiff.
package kubectlbin

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Path returns an executable skiff-kubectl.
func Path() (string, error) {
	if len(embedded) > 0 {
		sum := sha256.Sum256(embedded)
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "skiff", hex.EncodeToString(sum[:6]))
		path := filepath.Join(dir, "skiff-kubectl")
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		return path, unpack(path)
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	path := filepath.Join(filepath.Dir(self), "skiff-kubectl")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("skiff-kubectl is neither embedded in this build nor beside %s", self)
	}
	return path, nil
}

func unpack(path string) error {
	zr, err := gzip.NewReader(bytes.NewReader(embedded))
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".skiff-kubectl-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, zr); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
