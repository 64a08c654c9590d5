package image

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Export writes a stored image as a `docker save` tarball that Import (or
// `docker load`) reads back.
func (s *Store) Export(ref string, w io.Writer) error {
	img, err := s.Get(ref)
	if err != nil {
		return err
	}
	v, err := s.view(img)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(img.Ref, name.WeakValidation)
	if err != nil {
		// An image pulled by digest has no tag; name it by its repository.
		tag, err = name.NewTag(img.Repo+":latest", name.WeakValidation)
		if err != nil {
			return err
		}
	}
	return tarball.Write(tag, v, w)
}

// view is a stored image as a v1.Image, read from the content store.
func (s *Store) view(img *Image) (v1.Image, error) {
	manifest, err := s.readBlob(img.Digest)
	if err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", img.Ref, err)
	}
	return partial.CompressedToImage(&storedImage{s: s, img: img, manifest: manifest, m: &m})
}

type storedImage struct {
	s        *Store
	img      *Image
	manifest []byte
	m        *v1.Manifest
}

func (i *storedImage) RawConfigFile() ([]byte, error) { return i.s.readBlob(i.img.Config) }
func (i *storedImage) MediaType() (types.MediaType, error) {
	if i.m.MediaType != "" {
		return i.m.MediaType, nil
	}
	return types.OCIManifestSchema1, nil
}
func (i *storedImage) RawManifest() ([]byte, error) { return i.manifest, nil }

func (i *storedImage) LayerByDigest(d v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.m.Layers {
		if l.Digest == d {
			return &storedLayer{s: i.s, desc: l}, nil
		}
	}
	if d == i.m.Config.Digest {
		return &storedLayer{s: i.s, desc: i.m.Config}, nil
	}
	return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
}

type storedLayer struct {
	s    *Store
	desc v1.Descriptor
}

func (l *storedLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *storedLayer) Compressed() (io.ReadCloser, error)  { return l.s.openBlob(l.desc.Digest) }
