package image

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Annotations naming an image in an OCI layout.
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerdRef = "io.containerd.image.name"
)

// importRegistry names imported images that carry no reference of their own.
const importRegistry = "import.local"

// Import stores the images of a tarball: `docker save` output or an OCI
// image layout. It returns what it stored.
func (s *Store) Import(ctx context.Context, path string) ([]*Image, error) {
	// Compressed tarballs (k3s ships .tar.gz and .tar.zst air-gap images)
	// are decompressed to a temporary file first.
	plain, cleanup, err := s.decompressedTar(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	defer cleanup()
	imgs, err := s.importTar(ctx, plain)
	if err != nil && plain != path {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return imgs, err
}

func (s *Store) decompressedTar(path string) (string, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(4)
	gz := len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b
	zst := len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd
	if !gz && !zst {
		return path, func() {}, nil
	}
	r, err := decompress(br)
	if err != nil {
		return "", nil, err
	}
	defer r.Close()
	tmp, err := os.CreateTemp(s.root, ".import-*.tar")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.Remove(tmp.Name()) }
	_, err = io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, err
	}
	return tmp.Name(), cleanup, nil
}

func (s *Store) importTar(ctx context.Context, path string) ([]*Image, error) {
	names, err := tarNames(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	switch {
	case names["manifest.json"]:
		return s.importDockerSave(ctx, path)
	case names["index.json"] && names["oci-layout"]:
		return s.importOCILayout(ctx, path)
	}
	return nil, fmt.Errorf("import %s: neither a docker save tarball (manifest.json) nor an OCI layout (index.json, oci-layout)", path)
}

// ImportDir imports every tarball in dir, as k3s does with its airgap
// images directory at agent start. Failures are collected, not fatal.
func (s *Store) ImportDir(ctx context.Context, dir string) ([]*Image, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Image
	var errs []error
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !(strings.HasSuffix(n, ".tar") || strings.HasSuffix(n, ".tar.gz") || strings.HasSuffix(n, ".tgz") || strings.HasSuffix(n, ".tar.zst")) {
			continue
		}
		imgs, err := s.Import(ctx, filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, imgs...)
	}
	return out, errors.Join(errs...)
}

func tarNames(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not a tar archive: %w", err)
		}
		names[strings.TrimPrefix(filepath.Clean(h.Name), "./")] = true
	}
}

func (s *Store) importDockerSave(ctx context.Context, path string) ([]*Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(path) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	var out []*Image
	for _, d := range m {
		tags := d.RepoTags
		if len(tags) == 0 {
			tags = []string{""}
		}
		for _, t := range tags {
			var tag *name.Tag
			if t != "" {
				parsed, err := name.NewTag(t, name.WeakValidation)
				if err != nil {
					return nil, fmt.Errorf("import %s: tag %q: %w", path, t, err)
				}
				tag = &parsed
			}
			img, err := tarball.Image(opener, tag)
			if err != nil {
				return nil, fmt.Errorf("import %s: %w", path, err)
			}
			ref, err := s.importRef(t, img, true)
			if err != nil {
				return nil, err
			}
			stored, err := s.storeImage(ctx, ref, img)
			if err != nil {
				return nil, fmt.Errorf("import %s: %w", path, err)
			}
			out = append(out, stored)
		}
	}
	return out, nil
}

// importRef is the reference an imported image is kept under: ref itself
// when it is a full reference (docker save's RepoTags always are; an OCI
// ref.name is when it names a repository), else
// import.local/<config>:<ref as a tag>.
func (s *Store) importRef(ref string, img v1.Image, full bool) (string, error) {
	if ref != "" && (full || strings.Contains(ref, "/")) {
		if norm, err := Normalize(ref); err == nil {
			return norm, nil
		}
	}
	cfg, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	tag := ref
	if tag == "" || strings.ContainsAny(tag, "/:@") {
		tag = "latest"
	}
	return fmt.Sprintf("%s/%s:%s", importRegistry, cfg.Hex[:12], tag), nil
}

func (s *Store) importOCILayout(ctx context.Context, path string) ([]*Image, error) {
	dir, err := os.MkdirTemp(filepath.Join(s.root), ".import-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := untarLayout(path, dir); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	var out []*Image
	for _, desc := range im.Manifests {
		img, err := s.imageForPlatform(idx, desc)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		ref, full := desc.Annotations[annotationContainerdRef], true
		if ref == "" {
			ref, full = desc.Annotations[annotationRefName], false
		}
		norm, err := s.importRef(ref, img, full)
		if err != nil {
			return nil, err
		}
		stored, err := s.storeImage(ctx, norm, img)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		out = append(out, stored)
	}
	return out, nil
}

// imageForPlatform resolves a layout entry, picking this host's platform
// from a nested index.
func (s *Store) imageForPlatform(idx v1.ImageIndex, desc v1.Descriptor) (v1.Image, error) {
	if !desc.MediaType.IsIndex() {
		return idx.Image(desc.Digest)
	}
	child, err := idx.ImageIndex(desc.Digest)
	if err != nil {
		return nil, err
	}
	cm, err := child.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, m := range cm.Manifests {
		if m.Platform != nil && m.Platform.OS == s.platform.OS && m.Platform.Architecture == s.platform.Architecture {
			return child.Image(m.Digest)
		}
	}
	return nil, fmt.Errorf("no %s/%s image in index %s", s.platform.OS, s.platform.Architecture, desc.Digest)
}

// untarLayout unpacks an OCI layout tarball: regular files and directories
// only, never outside dir.
func untarLayout(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rel := filepath.Clean("/" + h.Name)
		if len(h.Name) > maxEntryName {
			return fmt.Errorf("entry name longer than %d bytes", maxEntryName)
		}
		target := filepath.Join(dir, rel)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg, tar.TypeRegA:
			if _, err := safeParent(dir, filepath.Dir(rel)); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				return err
			}
		}
	}
}
