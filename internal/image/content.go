// Package image is skiff's image store: blobs kept by digest, image records
// by reference, layers unpacked once each, and a copy-on-write overlayfs
// snapshot per container over the layers an image shares with others.
//
// Layout under the store's root (<data-dir>/agent/images):
//
//	blobs/sha256/<hex>       content, verified on write
//	layers/sha256/<hex>      an unpacked layer, named by its diffID
//	images/<hex>.json        an image record, named by the hash of its reference
//	snapshots/<key>/         upper, work and merged of one snapshot
package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// ErrDigestMismatch means content did not hash to its digest.
var ErrDigestMismatch = errors.New("digest mismatch")

// ErrNotFound means no such image, blob or snapshot.
var ErrNotFound = errors.New("not found")

// ErrInUse means a snapshot still uses the image.
var ErrInUse = errors.New("in use")

func (s *Store) blobPath(d v1.Hash) string {
	return filepath.Join(s.root, "blobs", d.Algorithm, d.Hex)
}

// HasBlob reports whether the blob is stored.
func (s *Store) HasBlob(d v1.Hash) bool {
	_, err := os.Stat(s.blobPath(d))
	return err == nil
}

// writeBlob stores r under its digest, hashing as it writes; a mismatch
// leaves nothing behind.
func (s *Store) writeBlob(d v1.Hash, r io.Reader) error {
	if d.Algorithm != "sha256" {
		return fmt.Errorf("unsupported digest algorithm %q", d.Algorithm)
	}
	if s.HasBlob(d) {
		return nil
	}
	dir := filepath.Join(s.root, "blobs", d.Algorithm)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		tmp.Close()
		return fmt.Errorf("blob %s: %w", d, err)
	}
	// On disk before it is named: a crash must not leave a truncated
	// blob under a verified digest.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Hex {
		return fmt.Errorf("blob %s: %w: content hashes to sha256:%s", d, ErrDigestMismatch, got)
	}
	return os.Rename(tmp.Name(), s.blobPath(d))
}

// openBlob opens a stored blob.
func (s *Store) openBlob(d v1.Hash) (*os.File, error) {
	f, err := os.Open(s.blobPath(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	return f, err
}

// readBlob reads a small stored blob (a manifest or a config).
func (s *Store) readBlob(d v1.Hash) ([]byte, error) {
	data, err := os.ReadFile(s.blobPath(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	return data, err
}

// putBytes stores small content and returns its digest.
func (s *Store) putBytes(data []byte) (v1.Hash, error) {
	sum := sha256.Sum256(data)
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	return d, s.writeBlob(d, strings.NewReader(string(data)))
}

// hashingReader hashes what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	return n, err
}

// lock takes the store-wide lock: shared for what adds content or uses it
// (pull, import, prepare), exclusive for what removes it (delete, prune),
// so that a prune never sweeps what a pull has stored but not yet
// recorded, across processes (the CLI and the agent) too.
func (s *Store) lock(exclusive bool) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock image store: %w", err)
	}
	return func() { f.Close() }, nil
}
