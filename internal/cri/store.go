package cri

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sandbox is what the service remembers of a pod sandbox; it is written to
// <root>/sandboxes/<id>/sandbox.json.
type sandbox struct {
	ID        string                       `json:"id"`
	Config    *runtimeapi.PodSandboxConfig `json:"-"`
	RawConfig json.RawMessage              `json:"config"`
	CreatedAt int64                        `json:"createdAt"`
	Netns     string                       `json:"netns,omitempty"` // empty: the node's network
	IP        string                       `json:"ip,omitempty"`
	Stopped   bool                         `json:"stopped,omitempty"`
	Handler   string                       `json:"runtimeHandler,omitempty"`
}

// container is what the service remembers of a container; it is written to
// <root>/containers/<id>/container.json. Its state comes from the runtime.
type container struct {
	ID         string                      `json:"id"`
	SandboxID  string                      `json:"sandboxId"`
	Config     *runtimeapi.ContainerConfig `json:"-"`
	RawConfig  json.RawMessage             `json:"config"`
	Image      string                      `json:"image"`    // as asked for
	ImageRef   string                      `json:"imageRef"` // the image's id
	CreatedAt  int64                       `json:"createdAt"`
	StartedAt  int64                       `json:"startedAt,omitempty"`
	LogPath    string                      `json:"logPath,omitempty"` // absolute
	StopSignal string                      `json:"stopSignal,omitempty"`
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (s *Service) saveSandbox(sb *sandbox) error {
	raw, err := protojson.Marshal(sb.Config)
	if err != nil {
		return err
	}
	sb.RawConfig = raw
	return writeJSON(filepath.Join(s.sandboxDir(sb.ID), "sandbox.json"), sb)
}

func (s *Service) saveContainer(c *container) error {
	raw, err := protojson.Marshal(c.Config)
	if err != nil {
		return err
	}
	c.RawConfig = raw
	return writeJSON(filepath.Join(s.containerDir(c.ID), "container.json"), c)
}

// load reads the records of an earlier run. A directory without a record
// is a creation that did not finish: it is removed.
func (s *Service) load() error {
	dirs, err := os.ReadDir(s.sandboxDir(""))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		var sb sandbox
		if err := readJSON(filepath.Join(s.sandboxDir(d.Name()), "sandbox.json"), &sb); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		sb.Config = &runtimeapi.PodSandboxConfig{}
		if err := protojson.Unmarshal(sb.RawConfig, sb.Config); err != nil {
			return fmt.Errorf("sandbox %s: %w", sb.ID, err)
		}
		s.sandboxes[sb.ID] = &sb
	}
	dirs, err = os.ReadDir(s.containerDir(""))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		var c container
		if err := readJSON(filepath.Join(s.containerDir(d.Name()), "container.json"), &c); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		c.Config = &runtimeapi.ContainerConfig{}
		if err := protojson.Unmarshal(c.RawConfig, c.Config); err != nil {
			return fmt.Errorf("container %s: %w", c.ID, err)
		}
		s.containers[c.ID] = &c
	}
	return nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
