package image_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skiff-sh/skiff/internal/image"
)

// testRegistry is a registry on loopback that counts blob downloads and can
// corrupt them.
type testRegistry struct {
	*httptest.Server
	blobGets atomic.Int64
	corrupt  atomic.Bool
}

func newRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	inner := registry.New()
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
			r.blobGets.Add(1)
			if r.corrupt.Load() {
				rec := httptest.NewRecorder()
				inner.ServeHTTP(rec, req)
				body := rec.Body.Bytes()
				if len(body) > 0 {
					body[len(body)/2] ^= 0xff
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				w.Write(body)
				return
			}
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *testRegistry) ref(repo string) string {
	return strings.TrimPrefix(r.URL, "http://") + "/" + repo
}

type entry struct {
	name, body, link string
	typ              byte
}

func layer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typ, Linkname: e.link}
		switch e.typ {
		case 0, tar.TypeReg:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		case tar.TypeDir:
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	gz.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func buildImage(t *testing.T, arch string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Config.Cmd = []string{"/bin/sh"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func push(t *testing.T, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d
}

func newStore(t *testing.T) (*image.Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := image.New(root, image.Options{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (overlay mounts, device nodes, ownership); CI runs as root, so it runs there")
	}
}

func TestNormalizeFollowsDocker(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                 "docker.io/library/nginx:latest",
		"nginx:1.27":            "docker.io/library/nginx:1.27",
		"user/app":              "docker.io/user/app:latest",
		"localhost:5000/app:v1": "localhost:5000/app:v1",
		"quay.io/org/app@sha256:" + strings.Repeat("a", 64): "quay.io/org/app@sha256:" + strings.Repeat("a", 64),
	} {
		got, err := image.Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := image.Normalize("UPPER/Case"); err == nil {
		t.Error("an invalid reference was accepted")
	}
}

func TestPullByTagAndDigestAndSecondPullFetchesNoBlobs(t *testing.T) {
	reg := newRegistry(t)
	img := buildImage(t, "amd64", layer(t, entry{name: "bin/hello", body: "hi"}), layer(t, entry{name: "etc/motd", body: "welcome"}))
	digest := push(t, reg.ref("app:v1"), img)
	s, _ := newStore(t)
	ctx := context.Background()
	got, err := s.Pull(ctx, reg.ref("app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digest || len(got.Layers) != 2 || got.Tag != "v1" {
		t.Fatalf("pulled %+v", got)
	}
	before := reg.blobGets.Load()
	if _, err := s.Pull(ctx, reg.ref("app:v1")); err != nil {
		t.Fatal(err)
	}
	if n := reg.blobGets.Load() - before; n != 0 {
		t.Errorf("second pull fetched %d blobs", n)
	}
	byDigest, err := s.Pull(ctx, reg.ref("app@"+digest.String()))
	if err != nil || byDigest.Digest != digest || byDigest.Tag != "<none>" {
		t.Fatalf("pull by digest: %+v %v", byDigest, err)
	}
	list, _ := s.List()
	if len(list) != 2 {
		t.Errorf("listed %d images, want 2 references", len(list))
	}
}

func TestPullFromIndexChoosesTheHostPlatform(t *testing.T) {
	reg := newRegistry(t)
	amd := buildImage(t, "amd64", layer(t, entry{name: "arch", body: "amd64"}))
	arm := buildImage(t, "arm64", layer(t, entry{name: "arch", body: "arm64"}))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	r, _ := name.ParseReference(reg.ref("multi:latest"))
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t)
	got, err := s.Pull(context.Background(), reg.ref("multi:latest"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := amd.Digest()
	if got.Digest != want {
		t.Errorf("pulled %s, want the linux/amd64 image %s", got.Digest, want)
	}
}

func TestCorruptedBlobIsRefusedAndLeavesNothing(t *testing.T) {
	reg := newRegistry(t)
	push(t, reg.ref("bad:v1"), buildImage(t, "amd64", layer(t, entry{name: "f", body: strings.Repeat("x", 4096)})))
	reg.corrupt.Store(true)
	s, root := newStore(t)
	_, err := s.Pull(context.Background(), reg.ref("bad:v1"))
	if err == nil || !(strings.Contains(err.Error(), "digest") || strings.Contains(err.Error(), "sha256")) {
		t.Fatalf("pull of a corrupted blob: %v", err)
	}
	for _, dir := range []string{"blobs/sha256", "layers/sha256", "images"} {
		entries, _ := os.ReadDir(filepath.Join(root, dir))
		if len(entries) != 0 {
			t.Errorf("%s holds %d entries after a failed pull", dir, len(entries))
		}
	}
	if _, err := s.Get(reg.ref("bad:v1")); err == nil {
		t.Error("image record exists after a failed pull")
	}
}

func TestSnapshotsApplyWhiteoutsAndShareLowerLayers(t *testing.T) {
	requireRoot(t)
	reg := newRegistry(t)
	base := layer(t, entry{name: "a/", typ: tar.TypeDir}, entry{name: "a/gone", body: "old"}, entry{name: "a/kept", body: "kept"},
		entry{name: "d/", typ: tar.TypeDir}, entry{name: "d/x", body: "x"}, entry{name: "d/y", body: "y"})
	top := layer(t, entry{name: "a/.wh.gone", body: ""}, entry{name: "d/.wh..wh..opq", body: ""}, entry{name: "d/z", body: "z"})
	push(t, reg.ref("wh:v1"), buildImage(t, "amd64", base, top))
	s, root := newStore(t)
	img, err := s.Pull(context.Background(), reg.ref("wh:v1"))
	if err != nil {
		t.Fatal(err)
	}
	one, err := s.Prepare("one", img)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Remove("one")
	two, err := s.Prepare("two", img)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Remove("two")
	if _, err := os.Stat(filepath.Join(one, "a/gone")); !os.IsNotExist(err) {
		t.Errorf("a whited-out file is visible: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(one, "a/kept")); string(b) != "kept" {
		t.Errorf("a/kept = %q", b)
	}
	entries, _ := os.ReadDir(filepath.Join(one, "d"))
	if len(entries) != 1 || entries[0].Name() != "z" {
		t.Errorf("opaque directory d shows %v, want only z", entries)
	}
	ino := func(p string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	lower := filepath.Join(root, "layers", img.Layers[0].DiffID.Algorithm, img.Layers[0].DiffID.Hex, "a/kept")
	if ino(filepath.Join(one, "a/kept")) != ino(lower) || ino(filepath.Join(two, "a/kept")) != ino(lower) {
		t.Errorf("snapshots do not share the lower layer's file")
	}
	os.WriteFile(filepath.Join(one, "a/kept"), []byte("changed in one"), 0o644)
	if b, _ := os.ReadFile(filepath.Join(two, "a/kept")); string(b) != "kept" {
		t.Errorf("a write in one snapshot shows in the other: %q", b)
	}
	if b, _ := os.ReadFile(lower); string(b) != "kept" {
		t.Errorf("a write in a snapshot changed the shared layer: %q", b)
	}
	if err := s.Remove("one"); err != nil {
		t.Fatal(err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), filepath.Join(root, "snapshots", "one")) {
		t.Error("snapshot still mounted after Remove")
	}
}

func TestHostileLayersAreRefusedOrContained(t *testing.T) {
	requireRoot(t)
	outside := t.TempDir()
	for name, l := range map[string]v1.Layer{
		"dotdot":        layer(t, entry{name: "../../../" + outside + "/escaped", body: "x"}),
		"symlink-out":   layer(t, entry{name: "link", typ: tar.TypeSymlink, link: outside}, entry{name: "link/escaped", body: "x"}),
		"hardlink-out":  layer(t, entry{name: "hl", typ: tar.TypeLink, link: "../../../../etc/passwd"}),
		"huge-name":     layer(t, entry{name: strings.Repeat("a/", 3000) + "f", body: "x"}),
		"absolute-name": layer(t, entry{name: outside + "/escaped", body: "x"}),
	} {
		t.Run(name, func(t *testing.T) {
			reg := newRegistry(t)
			push(t, reg.ref("evil:v1"), buildImage(t, "amd64", l))
			s, root := newStore(t)
			img, err := s.Pull(context.Background(), reg.ref("evil:v1"))
			if err == nil {
				// Contained: whatever was written is inside the layer.
				if _, err := s.Prepare("x", img); err == nil {
					s.Remove("x")
				}
			}
			if _, err := os.Stat(filepath.Join(outside, "escaped")); err == nil {
				t.Fatalf("a layer wrote outside the store")
			}
			filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode()&os.ModeSymlink == 0 && fi.Name() == "passwd" {
					t.Errorf("hard link to the host's passwd at %s", p)
				}
				return nil
			})
		})
	}
	_ = fmt.Sprint
}
