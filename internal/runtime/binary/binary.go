// Package binary locates skiff-runtime, the OCI runtime's command line,
// and skiff-init beside it, the small executable behind every container.
// Release builds of skiff carry both inside (build tag embedruntime, set by
// `make build`) and write them out once under /run/skiff/bin; development
// builds find them beside the skiff executable.
package binary

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// Dir is where the embedded binaries are written out.
const Dir = "/run/skiff/bin"

// Path returns an executable skiff-runtime with skiff-init beside it.
func Path() (string, error) {
	if len(embeddedRuntime) > 0 && len(embeddedInit) > 0 {
		h := sha256.New()
		h.Write(embeddedRuntime)
		h.Write(embeddedInit)
		dir := filepath.Join(Dir, hex.EncodeToString(h.Sum(nil))[:12])
		rt := filepath.Join(dir, "skiff-runtime")
		if _, err := os.Stat(rt); err == nil {
			return rt, nil
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		// skiff-init first: skiff-runtime's presence means both are there.
		if err := writeExecutable(filepath.Join(dir, "skiff-init"), embeddedInit); err != nil {
			return "", err
		}
		if err := writeExecutable(rt, embeddedRuntime); err != nil {
			return "", err
		}
		return rt, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(self)
	for _, name := range []string{"skiff-runtime", "skiff-init"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("%s is neither embedded in this build nor beside %s", name, self)
		}
	}
	return filepath.Join(dir, "skiff-runtime"), nil
}

// writeExecutable writes data to path through a temporary file.
func writeExecutable(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
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
