package reset

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestResetUnmountsBeforeRemovingAndSparesWhatMountsShow(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (bind mounts); CI runs as root, so it runs there")
	}
	outside := t.TempDir()
	precious := filepath.Join(outside, "precious")
	os.WriteFile(precious, []byte("keep me"), 0o644)
	data := t.TempDir()
	mnt := filepath.Join(data, "agent", "mnt with space")
	os.MkdirAll(mnt, 0o755)
	if err := syscall.Mount(outside, mnt, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Run(context.Background(), Config{DataDir: data}, &out); err != nil {
		syscall.Unmount(mnt, syscall.MNT_DETACH)
		t.Fatal(err)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("reset removed a file through a mount: %v", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data dir still there: %v", err)
	}
}
