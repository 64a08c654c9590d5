//go:build embedruntime

package binary

import _ "embed"

// The binaries themselves, copied here by `make build`.
var (
	//go:embed skiff-runtime
	embeddedRuntime []byte
	//go:embed skiff-init
	embeddedInit []byte
)
