// Package nodestate records where a node agent put things outside its data
// dir (runtime state, the bridge, routes), so that `skiff reset` can find
// and remove them after the agent has gone.
package nodestate

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// State is <data-dir>/agent/node.json.
type State struct {
	RunDir      string `json:"runDir"`
	Bridge      string `json:"bridge"`
	ClusterCIDR string `json:"clusterCIDR"`
	ServiceCIDR string `json:"serviceCIDR"`
	PodCIDR     string `json:"podCIDR,omitempty"`
}

func path(dataDir string) string { return filepath.Join(dataDir, "agent", "node.json") }

// Write records s for dataDir.
func Write(dataDir string, s State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path(dataDir)), 0o700); err != nil {
		return err
	}
	tmp := path(dataDir) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path(dataDir))
}

// Read returns what was recorded for dataDir (os.ErrNotExist when no agent
// ever ran there).
func Read(dataDir string) (State, error) {
	var s State
	data, err := os.ReadFile(path(dataDir))
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(data, &s)
}
