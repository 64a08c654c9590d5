package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// Store keeps images under one root directory.
type Store struct {
	root       string
	registries *Registries
	keychain   authn.Keychain
	transport  http.RoundTripper
	platform   v1.Platform
	flight     singleflight.Group
}

// Options configure a Store.
type Options struct {
	// Keychain resolves registry credentials; nil means ~/.docker/config.json.
	Keychain authn.Keychain
	// Transport reaches registries; nil means the default.
	Transport http.RoundTripper
	// Platform picks the image from a multi-platform index; zero means
	// this host's (linux/GOARCH).
	Platform v1.Platform
	// Registries holds mirrors and per-registry credentials and TLS.
	Registries *Registries
}

// New opens (creating if needed) a store at root.
func New(root string, opts Options) (*Store, error) {
	// Absolute: overlay options are built relative to the root (see
	// mountOverlay) and must not resolve twice.
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"blobs/sha256", "layers/sha256", "images", "snapshots"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, err
		}
	}
	s := &Store{root: root, keychain: opts.Keychain, transport: opts.Transport, platform: opts.Platform, registries: opts.Registries}
	if s.keychain == nil {
		s.keychain = authn.DefaultKeychain
	}
	if s.transport == nil {
		s.transport = remote.DefaultTransport
	}
	if s.platform.OS == "" {
		s.platform = v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
	}
	return s, nil
}

// Layer is one layer of an image.
type Layer struct {
	Digest    v1.Hash `json:"digest"`
	DiffID    v1.Hash `json:"diffID"`
	Size      int64   `json:"size"`
	MediaType string  `json:"mediaType"`
}

// Image is a stored image.
type Image struct {
	// Ref is the normalised reference it was pulled or imported as.
	Ref string `json:"ref"`
	// Repo and Tag split Ref for listings ("<none>" when pulled by digest).
	Repo string `json:"repo"`
	Tag  string `json:"tag"`
	// Digest is the manifest's digest.
	Digest v1.Hash   `json:"digest"`
	Config v1.Hash   `json:"config"`
	Layers []Layer   `json:"layers"`
	Size   int64     `json:"size"`
	Pulled time.Time `json:"pulled"`
}

// Normalize expands a reference as Docker does: nginx →
// docker.io/library/nginx:latest.
func Normalize(ref string) (string, error) {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return "", fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return displayRef(r), nil
}

func displayRef(r name.Reference) string {
	repo := r.Context()
	reg := repo.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	sep := ":"
	if _, ok := r.(name.Digest); ok {
		sep = "@"
	}
	return reg + "/" + repo.RepositoryStr() + sep + r.Identifier()
}

func (s *Store) recordPath(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(s.root, "images", hex.EncodeToString(sum[:])+".json")
}

func (s *Store) writeRecord(img *Image) error {
	data, err := json.Marshal(img)
	if err != nil {
		return err
	}
	path := s.recordPath(img.Ref)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".record-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Get returns the image stored under ref.
func (s *Store) Get(ref string) (*Image, error) {
	norm, err := Normalize(ref)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.recordPath(norm))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("image %s: %w", norm, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var img Image
	return &img, json.Unmarshal(data, &img)
}

// List returns every stored image, sorted by reference.
func (s *Store) List() ([]*Image, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "images"))
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.root, "images", e.Name()))
		if err != nil {
			continue
		}
		var img Image
		if json.Unmarshal(data, &img) == nil {
			out = append(out, &img)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// Pull fetches ref from its registry, storing what is missing. Concurrent
// pulls of one reference share one download; blobs already stored are not
// fetched again.
func (s *Store) Pull(ctx context.Context, ref string) (*Image, error) {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	norm := displayRef(r)
	// The shared pull must not end when the first caller gives up: it
	// runs detached from any one caller, and each caller waits on its own
	// context. (Progress is reported to the caller that started it.)
	ch := s.flight.DoChan(norm, func() (any, error) { return s.pull(context.WithoutCancel(ctx), r, norm) })
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("pull %s: %w", norm, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Image), nil
	}
}

func (s *Store) pull(ctx context.Context, r name.Reference, norm string) (*Image, error) {
	base := []remote.Option{remote.WithContext(ctx), remote.WithPlatform(s.platform)}
	cands, err := s.candidates(r, base)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", norm, err)
	}
	// Each candidate in turn (mirrors, then the registry), for the whole
	// image: a mirror that serves the manifest but not a blob falls
	// through to the next, as containerd does.
	var errs []error
	for _, c := range cands {
		desc, err := remote.Get(c.ref, c.opts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.ref.Context().RegistryStr(), err))
			continue
		}
		img, err := desc.Image() // resolves an index to this platform's image
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.ref.Context().RegistryStr(), err))
			continue
		}
		out, err := s.storeImage(ctx, norm, img)
		if err != nil {
			if errors.Is(err, ErrDigestMismatch) || ctx.Err() != nil {
				return nil, fmt.Errorf("pull %s: %w", norm, err)
			}
			errs = append(errs, fmt.Errorf("%s: %w", c.ref.Context().RegistryStr(), err))
			continue
		}
		return out, nil
	}
	return nil, fmt.Errorf("pull %s: %w", norm, errors.Join(errs...))
}

func (s *Store) storeImage(ctx context.Context, norm string, img v1.Image) (*Image, error) {
	unlock, err := s.lock(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	manifest, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	mdigest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if !s.HasBlob(m.Config.Digest) {
		cfg, err := img.RawConfigFile()
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := s.writeBlob(m.Config.Digest, strings.NewReader(string(cfg))); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	cfgData, err := s.readBlob(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(cfgData, &cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("config lists %d layers, manifest %d", len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	for _, l := range m.Layers {
		if s.HasBlob(l.Digest) {
			continue
		}
		d := l.Digest
		g.Go(func() error {
			_, err, _ := s.flight.Do("blob:"+d.String(), func() (any, error) {
				if gctx.Err() != nil {
					return nil, gctx.Err()
				}
				layer, err := img.LayerByDigest(d)
				if err != nil {
					return nil, fmt.Errorf("layer %s: %w", d, err)
				}
				rc, err := layer.Compressed()
				if err != nil {
					return nil, fmt.Errorf("layer %s: %w", d, err)
				}
				defer rc.Close()
				var r io.Reader = rc
				if p := progressFrom(ctx); p != nil {
					size, _ := layer.Size()
					r = p.Layer(d, size, rc)
				}
				return nil, s.writeBlob(d, r)
			})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := s.writeBlob(mdigest, strings.NewReader(string(manifest))); err != nil {
		return nil, err
	}
	out := &Image{Ref: norm, Digest: mdigest, Config: m.Config.Digest, Pulled: time.Now().UTC()}
	out.Repo, out.Tag = splitRef(norm)
	for i, l := range m.Layers {
		out.Layers = append(out.Layers, Layer{Digest: l.Digest, DiffID: cfg.RootFS.DiffIDs[i], Size: l.Size, MediaType: string(l.MediaType)})
		out.Size += l.Size
	}
	if err := s.unpack(out); err != nil {
		return nil, err
	}
	if err := s.writeRecord(out); err != nil {
		return nil, err
	}
	return out, nil
}

func splitRef(ref string) (repo, tag string) {
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		return ref[:i], "<none>"
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

// Progress follows a pull's layer downloads.
type Progress interface {
	// Layer wraps the reader of one layer blob of size bytes.
	Layer(digest v1.Hash, size int64, r io.Reader) io.Reader
}

type progressKey struct{}

// WithProgress makes pulls under ctx report their downloads to p.
func WithProgress(ctx context.Context, p Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

func progressFrom(ctx context.Context) Progress {
	p, _ := ctx.Value(progressKey{}).(Progress)
	return p
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }
