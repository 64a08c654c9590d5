package bench

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skiff-sh/skiff/internal/image"
)

// randomLayer is a gzipped layer of files of random (incompressible) data.
func randomLayer(b *testing.B, files, size int) v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := make([]byte, size)
	for i := range files {
		rand.Read(data)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d/f%04d", i), Mode: 0o644, Size: int64(size)})
		tw.Write(data)
	}
	tw.Close()
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		b.Fatal(err)
	}
	return l
}

func pushImage(b *testing.B, srv *httptest.Server, repo string, layers ...v1.Layer) string {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		b.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	img, _ = mutate.ConfigFile(img, cfg)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/" + repo
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		b.Fatal(err)
	}
	return ref
}

// BenchmarkPullAndUnpack pulls a ~100 MB image (4 layers of 25 MB of
// incompressible files) from a registry on loopback into an empty store and
// unpacks it: MB/s of compressed image.
func BenchmarkPullAndUnpack(b *testing.B) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	var layers []v1.Layer
	var total int64
	for range 4 {
		l := randomLayer(b, 100, 256<<10)
		n, _ := l.Size()
		total += n
		layers = append(layers, l)
	}
	ref := pushImage(b, srv, "big:v1", layers...)
	var rates []float64
	for range b.N {
		s, err := image.New(b.TempDir(), image.Options{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := s.Pull(context.Background(), ref); err != nil {
			b.Fatal(err)
		}
		rates = append(rates, float64(total)/1e6/time.Since(start).Seconds())
	}
	b.ReportMetric(float64(total)/1e6, "MB-image")
	b.ReportMetric(medianFloat(rates), "MB/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSnapshotPrepare times Prepare+Remove of a snapshot for images of
// 1, 10 and 50 layers (needs root for the overlay mount).
func BenchmarkSnapshotPrepare(b *testing.B) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("layers-%d", n), func(b *testing.B) {
			var layers []v1.Layer
			for range n {
				layers = append(layers, randomLayer(b, 2, 1024))
			}
			ref := pushImage(b, srv, fmt.Sprintf("layers%d:v1", n), layers...)
			s, err := image.New(b.TempDir(), image.Options{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
			if err != nil {
				b.Fatal(err)
			}
			img, err := s.Pull(context.Background(), ref)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				key := fmt.Sprintf("s%d", i)
				if _, err := s.Prepare(key, img); err != nil {
					b.Fatal(err)
				}
				if err := s.Remove(key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func medianFloat(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
