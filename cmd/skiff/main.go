// Command skiff is a whole Kubernetes-compatible cluster in one binary. Each
// subcommand parses its flags into a typed config and runs one role.
package main

import (
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
