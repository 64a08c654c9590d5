//go:build embedkubectl

package kubectlbin

import _ "embed"

// embedded is skiff-kubectl, gzip-compressed by `make build`.
//
//go:embed skiff-kubectl.gz
var embedded []byte
