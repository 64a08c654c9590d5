package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Config is what a container needs from its image's configuration.
type Config struct {
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	User         string            `json:"user,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Volumes      []string          `json:"volumes,omitempty"`
	StopSignal   string            `json:"stopSignal,omitempty"`
	Platform     string            `json:"platform"`
}

// Inspect returns an image's configuration.
func (s *Store) Inspect(ref string) (*Image, *Config, error) {
	img, err := s.Get(ref)
	if err != nil {
		return nil, nil, err
	}
	data, err := s.readBlob(img.Config)
	if err != nil {
		return nil, nil, err
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(data, &cf); err != nil {
		return nil, nil, fmt.Errorf("config of %s: %w", img.Ref, err)
	}
	c := &Config{Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd, Env: cf.Config.Env,
		WorkingDir: cf.Config.WorkingDir, User: cf.Config.User, Labels: cf.Config.Labels,
		StopSignal: cf.Config.StopSignal, Platform: cf.OS + "/" + cf.Architecture}
	for p := range cf.Config.ExposedPorts {
		c.ExposedPorts = append(c.ExposedPorts, p)
	}
	for v := range cf.Config.Volumes {
		c.Volumes = append(c.Volumes, v)
	}
	return img, c, nil
}

// inUse returns the references that snapshots use.
func (s *Store) inUse() (map[string]bool, error) {
	snaps, err := s.Snapshots()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, ref := range snaps {
		used[ref] = true
	}
	return used, nil
}

// Delete removes an image's record; a snapshot still using it refuses.
// Its blobs and layers go with the next Prune.
func (s *Store) Delete(ref string) error {
	unlock, err := s.lock(true)
	if err != nil {
		return err
	}
	defer unlock()
	img, err := s.Get(ref)
	if err != nil {
		return err
	}
	used, err := s.inUse()
	if err != nil {
		return err
	}
	if used[img.Ref] {
		return fmt.Errorf("image %s: %w by a container's snapshot", img.Ref, ErrInUse)
	}
	return os.Remove(s.recordPath(img.Ref))
}

// PruneResult says what Prune removed.
type PruneResult struct {
	Images     []string
	Blobs      int
	Layers     int
	BytesFreed int64
}

// Prune removes images no snapshot uses, then every blob and unpacked
// layer that no remaining image refers to.
func (s *Store) Prune() (*PruneResult, error) {
	unlock, err := s.lock(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &PruneResult{}
	used, err := s.inUse()
	if err != nil {
		return nil, err
	}
	images, err := s.List()
	if err != nil {
		return nil, err
	}
	keepBlobs := map[string]bool{}
	keepLayers, err := s.snapshotLayers()
	if err != nil {
		return nil, err
	}
	for _, img := range images {
		if !used[img.Ref] {
			if err := os.Remove(s.recordPath(img.Ref)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			res.Images = append(res.Images, img.Ref)
			continue
		}
		keepBlobs[img.Digest.Hex], keepBlobs[img.Config.Hex] = true, true
		for _, l := range img.Layers {
			keepBlobs[l.Digest.Hex], keepLayers[l.DiffID.Hex] = true, true
		}
	}
	sweep := func(dir string, keep map[string]bool, n *int) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if keep[e.Name()] || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(dir, e.Name())
			res.BytesFreed += du(p)
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			*n++
		}
		return nil
	}
	if err := sweep(filepath.Join(s.root, "blobs", "sha256"), keepBlobs, &res.Blobs); err != nil {
		return nil, err
	}
	if err := sweep(filepath.Join(s.root, "layers", "sha256"), keepLayers, &res.Layers); err != nil {
		return nil, err
	}
	// Short links of removed layers now dangle.
	links, _ := os.ReadDir(filepath.Join(s.root, "l"))
	for _, e := range links {
		p := filepath.Join(s.root, "l", e.Name())
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			os.Remove(p)
		}
	}
	return res, nil
}

func du(path string) int64 {
	var n int64
	filepath.Walk(path, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
