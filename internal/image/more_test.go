package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"

	"github.com/skiff-sh/skiff/internal/image"
)

func TestConcurrentPullsShareOneDownload(t *testing.T) {
	reg := newRegistry(t)
	img := buildImage(t, "amd64", layer(t, entry{name: "one", body: "1"}), layer(t, entry{name: "two", body: "2"}))
	push(t, reg.ref("shared:v1"), img)
	s, _ := newStore(t)
	before := reg.blobGets.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Pull(context.Background(), reg.ref("shared:v1"))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Two layers and one config: three blobs, each fetched once.
	if n := reg.blobGets.Load() - before; n != 3 {
		t.Errorf("8 concurrent pulls fetched %d blobs, want 3", n)
	}
}

func TestZstdLayersAndHardLinksUnpack(t *testing.T) {
	requireRoot(t)
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "data/orig", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg})
	tw.Write([]byte("hello"))
	tw.WriteHeader(&tar.Header{Name: "data/link", Typeflag: tar.TypeLink, Linkname: "data/orig"})
	tw.WriteHeader(&tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8})
	tw.Close()
	var zbuf bytes.Buffer
	zw, _ := zstd.NewWriter(&zbuf)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	data := zbuf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t)
	push(t, reg.ref("zstd:v1"), buildImage(t, "amd64", l))
	s, _ := newStore(t)
	img, err := s.Pull(context.Background(), reg.ref("zstd:v1"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.Prepare("z", img)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Remove("z")
	if b, _ := os.ReadFile(filepath.Join(root, "data/link")); string(b) != "hello" {
		t.Errorf("hard link reads %q", b)
	}
	a, _ := os.Stat(filepath.Join(root, "data/orig"))
	b, _ := os.Stat(filepath.Join(root, "data/link"))
	if !os.SameFile(a, b) {
		t.Error("hard link is a copy, not a link")
	}
	if _, err := os.Stat(filepath.Join(root, "dev/sda")); err == nil {
		t.Error("a device node from a layer was created")
	}
}

func TestImportDirImportsEveryTarball(t *testing.T) {
	s, _ := newStore(t)
	dir := t.TempDir()
	for _, n := range []string{"a", "b"} {
		tag, _ := name.NewTag("example.com/" + n + ":v1")
		img := buildImage(t, "amd64", layer(t, entry{name: n, body: n}))
		if err := tarball.WriteToFile(filepath.Join(dir, n+".tar"), tag, img); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "README"), []byte("not an image"), 0o644)
	imgs, err := s.ImportDir(context.Background(), dir)
	if err != nil || len(imgs) != 2 {
		t.Fatalf("ImportDir: %d images, %v", len(imgs), err)
	}
	if imgs, err := s.ImportDir(context.Background(), filepath.Join(dir, "missing")); err != nil || len(imgs) != 0 {
		t.Errorf("a missing import dir: %v %v", imgs, err)
	}
}

func TestSnapshotOfAnImageWithManyLayers(t *testing.T) {
	requireRoot(t)
	var layers []v1.Layer
	for i := range 80 {
		layers = append(layers, layer(t, entry{name: fmt.Sprintf("f%02d", i), body: fmt.Sprint(i)}))
	}
	reg := newRegistry(t)
	push(t, reg.ref("many:v1"), buildImage(t, "amd64", layers...))
	s, _ := newStore(t)
	img, err := s.Pull(context.Background(), reg.ref("many:v1"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.Prepare("many", img)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Remove("many")
	if b, _ := os.ReadFile(filepath.Join(root, "f79")); string(b) != "79" {
		t.Errorf("top layer file reads %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "f00")); string(b) != "0" {
		t.Errorf("bottom layer file reads %q", b)
	}
}

func TestExportedImageImportsIntoAnotherStore(t *testing.T) {
	reg := newRegistry(t)
	want := push(t, reg.ref("exp:v1"), buildImage(t, "amd64", layer(t, entry{name: "x", body: "exported"})))
	s, _ := newStore(t)
	if _, err := s.Pull(context.Background(), reg.ref("exp:v1")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "exp.tar")
	f, _ := os.Create(path)
	if err := s.Export(reg.ref("exp:v1"), f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	other, _ := newStore(t)
	imgs, err := other.Import(context.Background(), path)
	if err != nil || len(imgs) != 1 {
		t.Fatalf("import of an export: %v %v", imgs, err)
	}
	if imgs[0].Ref != reg.ref("exp:v1") {
		t.Errorf("imported as %s", imgs[0].Ref)
	}
	if imgs[0].Layers[0].DiffID != mustGet(t, s, reg.ref("exp:v1")).Layers[0].DiffID {
		t.Error("the exported layer differs")
	}
	_ = want
}

func mustGet(t *testing.T, s *image.Store, ref string) *image.Image {
	t.Helper()
	img, err := s.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPullOfOCIMediaTypeImageAndIndex(t *testing.T) {
	reg := newRegistry(t)
	img := mutate.MediaType(buildImage(t, "amd64", layer(t, entry{name: "oci", body: "yes"})), types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}}), types.OCIImageIndex)
	r, _ := name.ParseReference(reg.ref("oci:v1"))
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t)
	got, err := s.Pull(context.Background(), reg.ref("oci:v1"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if got.Digest != want {
		t.Errorf("pulled %s, want %s", got.Digest, want)
	}
}

func TestWhiteoutNamesThatEscapeAreRefused(t *testing.T) {
	requireRoot(t)
	for _, n := range []string{".wh...", "a/.wh...", ".wh..", ".wh."} {
		t.Run(n, func(t *testing.T) {
			reg := newRegistry(t)
			base := layer(t, entry{name: "keep", body: "k"})
			evil := layer(t, entry{name: "a/", typ: tar.TypeDir}, entry{name: n, body: ""})
			push(t, reg.ref("wh:v1"), buildImage(t, "amd64", base, evil))
			s, root := newStore(t)
			if _, err := s.Pull(context.Background(), reg.ref("wh:v1")); err == nil {
				t.Error("a whiteout escaping its directory was accepted")
			}
			if fi, err := os.Stat(filepath.Join(root, "layers", "sha256")); err != nil || !fi.IsDir() {
				t.Fatalf("the layers directory was destroyed: %v", err)
			}
		})
	}
}

func TestSpecialModeBitsSurviveUnpacking(t *testing.T) {
	requireRoot(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777})
	tw.WriteHeader(&tar.Header{Name: "bin/su", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	data := buf.Bytes()
	l, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	reg := newRegistry(t)
	push(t, reg.ref("modes:v1"), buildImage(t, "amd64", l))
	s, _ := newStore(t)
	img, err := s.Pull(context.Background(), reg.ref("modes:v1"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.Prepare("m", img)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Remove("m")
	if fi, _ := os.Stat(filepath.Join(root, "tmp")); fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("/tmp lost its sticky bit: %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(root, "bin/su")); fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("setuid bit lost: %v", fi.Mode())
	}
}

func TestPruneKeepsLayersASnapshotUsesAfterItsTagMoved(t *testing.T) {
	requireRoot(t)
	reg := newRegistry(t)
	push(t, reg.ref("moving:latest"), buildImage(t, "amd64", layer(t, entry{name: "v", body: "one"})))
	s, _ := newStore(t)
	old, err := s.Pull(context.Background(), reg.ref("moving:latest"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.Prepare("running", old)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Remove("running")
	push(t, reg.ref("moving:latest"), buildImage(t, "amd64", layer(t, entry{name: "v", body: "two"})))
	if _, err := s.Pull(context.Background(), reg.ref("moving:latest")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "v")); err != nil || string(b) != "one" {
		t.Errorf("the running snapshot lost its layer: %q %v", b, err)
	}
}
