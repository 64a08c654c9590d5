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

// storageControllers are the persistentvolume binder and the built-in
// local-path provisioner, which first makes sure the default StorageClass
// exists, and the storage protection controller.
func storageControllers(ctx context.Context, client kubernetes.Interface, factory informers.SharedInformerFactory, cfg Config, log *slog.Logger) []runner {
	rec := events.NewRecorder(ctx, client, "persistentvolume-controller")
	context.AfterFunc(ctx, rec.Shutdown)
	// Volume paths are hostPaths, which must be absolute.
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		dataDir = cfg.DataDir
	}
	pv := persistentvolume.New(persistentvolume.Config{DataDir: dataDir, NodeName: cfg.NodeName},
		client, factory, rec, log.With("controller", "persistentvolume"))
	return []runner{storageRunner{client: client, pv: pv, log: log},
		storageprotection.New(client, factory, log.With("controller", "storageprotection"))}
}

// storageRunner creates the default class, then runs the binder.
type storageRunner struct {
	client kubernetes.Interface
	pv     *persistentvolume.Controller
	log    *slog.Logger
}

func (r storageRunner) Run(ctx context.Context) error {
	if err := persistentvolume.EnsureDefaultClass(ctx, r.client); err != nil {
		// Claims naming a class still bind; say why the default is missing.
		r.log.Warn("default storage class", "err", err)
	}
	return r.pv.Run(ctx)
}
