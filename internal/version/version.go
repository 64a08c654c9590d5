// Package version reports skiff's build and the Kubernetes version whose API
// it serves.
package version

import (
	"fmt"
	"runtime"
	"strings"

	k8sversion "k8s.io/apimachinery/pkg/version"
)

// Set at build time with -ldflags -X.
var (
	// Version is skiff's own version.
	Version = "dev"
	// GitCommit is the commit the binary was built from.
	GitCommit = ""
	// BuildDate is when the binary was built (RFC 3339).
	BuildDate = "1970-01-01T00:00:00Z"
)

// Kubernetes is the Kubernetes release whose API skiff serves.
const Kubernetes = "v1.37.2"

// Info is what /version returns: the Kubernetes version with skiff's build
// as semver build metadata, as k3s does ("v1.37.2+skiff.dev").
func Info() k8sversion.Info {
	build := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, Version)
	return k8sversion.Info{
		Major:        "1",
		Minor:        "37",
		GitVersion:   fmt.Sprintf("%s+skiff.%s", Kubernetes, strings.TrimPrefix(build, "v")),
		GitCommit:    GitCommit,
		GitTreeState: "clean",
		BuildDate:    BuildDate,
		GoVersion:    runtime.Version(),
		Compiler:     runtime.Compiler,
		Platform:     runtime.GOOS + "/" + runtime.GOARCH,
	}
}
