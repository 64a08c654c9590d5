// Package binary locates skiff-runtime, the small executable that runs
// every container's shim and init. Release builds of skiff carry it inside
// (build tag embedruntime, set by `make build`) and write it out once under
// /run/skiff/bin; development builds find it beside the skiff executable.
package binary

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Dir is where the embedded binary is written out.
const Dir = "/run/skiff/bin"

// Path returns an executable skiff-runtime.
func Path() (string, error) {
	if len(embedded) > 0 {
		sum := sha256.Sum256(embedded)
		path := filepath.Join(Dir, "skiff-runtime-"+hex.EncodeToString(sum[:6]))
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
		if err := os.MkdirAll(Dir, 0o755); err != nil {
			return "", err
		}
		tmp, err := os.CreateTemp(Dir, ".skiff-runtime-*")
		if err != nil {
			return "", err
		}
		defer os.Remove(tmp.Name())
		if _, err := tmp.Write(embedded); err != nil {
			tmp.Close()
			return "", err
		}
		if err := tmp.Chmod(0o755); err != nil {
			tmp.Close()
			return "", err
		}
		if err := tmp.Close(); err != nil {
			return "", err
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return "", err
		}
		return path, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	path := filepath.Join(filepath.Dir(self), "skiff-runtime")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("skiff-runtime is neither embedded in this build nor beside %s: %w", self, errors.Unwrap(err))
	}
	return path, nil
}
