package image_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skiff-sh/skiff/internal/image"
)

// tarDir packs a directory into a tarball.
func tarDir(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	defer tw.Close()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h, _ := tar.FileInfoHeader(fi, "")
		h.Name = rel
		tw.WriteHeader(h)
		if fi.Mode().IsRegular() {
			src, _ := os.Open(p)
			io.Copy(tw, src)
			src.Close()
		}
		return nil
	})
}

func TestImportedDockerSaveAndOCILayoutTarballsMakeSnapshots(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s, _ := newStore(t)
	dir := t.TempDir()

	saved := buildImage(t, "amd64", layer(t, entry{name: "etc/from", body: "docker-save"}))
	tag, _ := name.NewTag("example.com/saved:v1")
	dockerTar := filepath.Join(dir, "saved.tar")
	if err := tarball.WriteToFile(dockerTar, tag, saved); err != nil {
		t.Fatal(err)
	}
	imgs, err := s.Import(ctx, dockerTar)
	if err != nil || len(imgs) != 1 || imgs[0].Ref != "example.com/saved:v1" {
		t.Fatalf("docker save import: %+v %v", imgs, err)
	}

	oci := buildImage(t, "amd64", layer(t, entry{name: "etc/from", body: "oci-layout"}))
	layoutDir := filepath.Join(dir, "layout")
	p, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(oci, layout.WithAnnotations(map[string]string{"io.containerd.image.name": "example.com/oci:v2"})); err != nil {
		t.Fatal(err)
	}
	ociTar := filepath.Join(dir, "oci.tar")
	tarDir(t, layoutDir, ociTar)
	imgs, err = s.Import(ctx, ociTar)
	if err != nil || len(imgs) != 1 || imgs[0].Ref != "example.com/oci:v2" {
		t.Fatalf("OCI layout import: %+v %v", imgs, err)
	}

	for ref, want := range map[string]string{"example.com/saved:v1": "docker-save", "example.com/oci:v2": "oci-layout"} {
		img, err := s.Get(ref)
		if err != nil {
			t.Fatal(err)
		}
		root, err := s.Prepare(filepath.Base(ref[:len(ref)-3]), img)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(root, "etc/from"))
		s.Remove(filepath.Base(ref[:len(ref)-3]))
		if string(b) != want {
			t.Errorf("%s snapshot has %q, want %q", ref, b, want)
		}
	}

	junk := filepath.Join(dir, "junk.tar")
	os.WriteFile(junk, []byte("not a tarball at all"), 0o644)
	if _, err := s.Import(ctx, junk); err == nil {
		t.Error("importing junk succeeded")
	}
}

func TestDeleteRefusesAnImageInUseAndPruneRemovesUnused(t *testing.T) {
	requireRoot(t)
	reg := newRegistry(t)
	push(t, reg.ref("used:v1"), buildImage(t, "amd64", layer(t, entry{name: "a", body: "used"})))
	push(t, reg.ref("unused:v1"), buildImage(t, "amd64", layer(t, entry{name: "b", body: "unused"})))
	s, root := newStore(t)
	ctx := context.Background()
	used, err := s.Pull(ctx, reg.ref("used:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx, reg.ref("unused:v1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare("c1", used); err != nil {
		t.Fatal(err)
	}
	defer s.Remove("c1")
	if err := s.Delete(reg.ref("used:v1")); !errors.Is(err, image.ErrInUse) {
		t.Errorf("delete of an image in use: %v", err)
	}
	res, err := s.Prune()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || res.Blobs < 2 || res.Layers != 1 {
		t.Errorf("prune removed %+v; want the unused image, its blobs and its layer", res)
	}
	if _, err := s.Get(reg.ref("used:v1")); err != nil {
		t.Errorf("prune removed the image in use: %v", err)
	}
	layers, _ := os.ReadDir(filepath.Join(root, "layers", "sha256"))
	if len(layers) != 1 {
		t.Errorf("%d unpacked layers remain, want 1", len(layers))
	}
	_, cfg, err := s.Inspect(reg.ref("used:v1"))
	if err != nil || len(cfg.Cmd) != 1 || cfg.Cmd[0] != "/bin/sh" || cfg.Platform != "linux/amd64" {
		t.Errorf("inspect: %+v %v", cfg, err)
	}
	_ = v1.Hash{}
}
