// Command skiff-runtime is skiff's OCI runtime with a runc-compatible
// command line. The processes behind each container run from skiff-init,
// which it expects beside itself.
package main

import (
	"os"

	"github.com/skiff-sh/skiff/internal/runtime/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
