package e2e

import (
	"archive/tar"
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// busyboxImage is a one-layer image holding busybox-static, as the runtime
// tests use.
func busyboxImage(t *testing.T) (string, func()) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal("needs busybox-static: ", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb))})
	tw.Write(bb)
	tw.WriteHeader(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox"})
	tw.Close()
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	img, _ := mutate.AppendLayers(empty.Image, layer)
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = []string{"/bin/sh"}
	cfg.Config.Env = []string{"PATH=/bin"}
	img, _ = mutate.ConfigFile(img, cfg)
	srv := httptest.NewServer(registry.New())
	ref := strings.TrimPrefix(srv.URL, "http://") + "/busybox:1.35"
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return ref, srv.Close
}

func TestSkiffImagePullListInspectRemovePrune(t *testing.T) {
	ref, stop := busyboxImage(t)
	defer stop()
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, err := runSkiff(append([]string{"image", "--data-dir", dir, "--registries-config", filepath.Join(dir, "none.yaml")}, args...)...)
		if err != nil {
			t.Fatalf("skiff image %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	out := run("pull", ref)
	if !strings.HasPrefix(out, ref+" sha256:") {
		t.Errorf("pull printed %q", out)
	}
	out = run("ls")
	if !strings.Contains(out, "REPOSITORY") || !strings.Contains(out, "1.35") || !strings.Contains(out, strings.Split(ref, ":")[0]) {
		t.Errorf("ls:\n%s", out)
	}
	out = run("inspect", ref)
	if !strings.Contains(out, `"/bin/sh"`) || !strings.Contains(out, "linux/amd64") {
		t.Errorf("inspect:\n%s", out)
	}
	run("rm", ref)
	out = run("prune")
	if !strings.Contains(out, "Removed") {
		t.Errorf("prune: %s", out)
	}
	if out := run("ls"); strings.Count(out, "\n") != 1 {
		t.Errorf("images left after rm and prune:\n%s", out)
	}
	if _, err := runSkiff("image", "--data-dir", dir, "pull", "Not A Ref"); err == nil {
		t.Error("pull of an invalid reference succeeded")
	}
}

func TestServerImportsAirgapImagesAtStart(t *testing.T) {
	ref, stop := busyboxImage(t)
	defer stop()
	// A server with its agent imports at start what the import directory
	// holds; the tarball is made with skiff itself: pulled into a scratch
	// store and exported.
	s, _ := startAgentServer(t, func(dataDir string) {
		scratch := t.TempDir()
		if out, err := runSkiff("image", "--data-dir", scratch, "pull", ref); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		tarball := filepath.Join(dataDir, "agent", "images", "import", "skiff-made.tar")
		if out, err := runSkiff("image", "--data-dir", scratch, "export", ref, tarball); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	})
	eventually(t, 30*time.Second, func() error {
		out, err := runSkiff("image", "--data-dir", s.dataDir, "ls")
		if err != nil || !strings.Contains(out, "1.35") || !strings.Contains(out, "skiff.test/busybox") {
			return errorf("image ls: %v %s", err, out)
		}
		return nil
	})
}
