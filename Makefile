# skiff's build. `make run` starts a single-node cluster; `make test` installs
# what the tests need and runs them all.
GO         ?= go
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
K8S_VERSION = v1.37.2
DATA_DIR   ?= $(CURDIR)/data

# kubectl and client-go print and check their own version: set it to the
# Kubernetes release skiff's API follows.
LDFLAGS = -s -w \
  -X github.com/skiff-sh/skiff/internal/version.Version=$(VERSION) \
  -X github.com/skiff-sh/skiff/internal/version.GitCommit=$(COMMIT) \
  -X github.com/skiff-sh/skiff/internal/version.BuildDate=$(BUILD_DATE) \
  -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=37 \
  -X k8s.io/component-base/version.gitTreeState=clean \
  -X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VERSION) \
  -X k8s.io/client-go/pkg/version.gitMajor=1 \
  -X k8s.io/client-go/pkg/version.gitMinor=37

.PHONY: build run test test-unit test-e2e deps bench fuzz clean

# skiff carries skiff-runtime (the OCI runtime's command line), skiff-init
# (the small binary behind every container) and, compressed, skiff-kubectl
# inside itself; all are also left in bin/ for direct use.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/skiff-init ./cmd/skiff-init
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/skiff-runtime ./cmd/skiff-runtime
	cp bin/skiff-runtime bin/skiff-init internal/runtime/binary/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/skiff-kubectl ./cmd/skiff-kubectl
	gzip -1 -c bin/skiff-kubectl > internal/kubectlbin/skiff-kubectl.gz
	CGO_ENABLED=0 $(GO) build -trimpath -tags embedruntime,embedkubectl -ldflags '$(LDFLAGS)' -o bin/skiff ./cmd/skiff

run: build
	@echo "Starting skiff server with data in $(DATA_DIR)."
	@echo "In another shell:  export KUBECONFIG=$(DATA_DIR)/kubeconfig.yaml; bin/skiff kubectl get nodes,ns"
	@echo "              or:  SKIFF_DATA_DIR=$(DATA_DIR) bin/skiff kubectl get ns"
	bin/skiff server --data-dir $(DATA_DIR) --write-kubeconfig $(DATA_DIR)/kubeconfig.yaml

# deps installs what the tests need beyond Go: busybox-static for the
# runtime tests' root filesystems, and crictl (built from the Go module
# proxy) to inspect a node's CRI socket. (The external etcd of the datastore
# tests is built from the etcd module skiff uses.)
CRICTL_VERSION = v1.37.0
deps: bin/crictl
	@test -x /bin/busybox || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null; }

bin/crictl:
	GOBIN=$(CURDIR)/bin GOFLAGS=-mod=mod CGO_ENABLED=0 $(GO) install sigs.k8s.io/cri-tools/cmd/crictl@$(CRICTL_VERSION)

test: deps build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...

test-unit:
	$(GO) test -count=1 $(shell $(GO) list ./... | grep -v /test/e2e)

test-e2e: build
	$(GO) test -count=1 -timeout 25m ./test/e2e/...

# bench compares against runc and crun, from Debian's packages.
bench: deps build
	@command -v runc >/dev/null && command -v crun >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc crun >/dev/null
	$(GO) test -run '^$$' -bench . -benchtime 1x ./bench/...

clean:
	rm -rf bin
