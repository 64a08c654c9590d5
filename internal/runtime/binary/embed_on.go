//go:build embedruntime

package binary

import _ "embed"

// embedded is skiff-runtime itself, copied here by `make build`.
//
//go:embed skiff-runtime
var embedded []byte
