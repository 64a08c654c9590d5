package runtime

import (
	"maps"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
)

// v1Paths stands in for the library's own lookup of each controller's
// mount: it must find the same directories.
func TestV1PathsAreTheLibrarys(t *testing.T) {
	if cgroups.IsCgroup2UnifiedMode() {
		t.Skip("a cgroup v2 host has no v1 paths")
	}
	cg := &cgroups.Cgroup{Path: "/skiff-test/paths", Resources: &cgroups.Resources{}}
	m, err := fs.NewManager(cg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v1Paths(cg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if want := m.GetPaths(); !maps.Equal(got, want) {
		t.Errorf("v1Paths = %v\nthe library's = %v", got, want)
	}
}
