package server

import (
	"context"
	"log/slog"
	"path/filepath"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/controller/persistentvolume"
	"github.com/skiff-sh/skiff/internal/controller/storageprotection"
	"github.com/skiff-sh/skiff/internal/events"
)

// storageControllers are the persistentvolume binder with the built-in
// local-path provisioner (bootstrap made its default StorageClass), and
// the storage protection controller.
func storageControllers(ctx context.Context, client kubernetes.Interface, factory informers.SharedInformerFactory, cfg Config, log *slog.Logger) []runner {
	rec := events.NewRecorder(ctx, client, "persistentvolume-controller")
	context.AfterFunc(ctx, rec.Shutdown)
	// Volume paths are hostPaths, which must be absolute.
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		dataDir = cfg.DataDir
	}
	pv := persistentvolume.New(persistentvolume.Config{DataDir: dataDir},
		client, factory, rec, log.With("controller", "persistentvolume"))
	return []runner{pv, storageprotection.New(client, factory, log.With("controller", "storageprotection"))}
}
