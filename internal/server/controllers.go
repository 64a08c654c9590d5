package server

import (
	"context"
	"log/slog"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/controller/cronjob"
	"github.com/skiff-sh/skiff/internal/controller/daemonset"
	"github.com/skiff-sh/skiff/internal/controller/deployment"
	"github.com/skiff-sh/skiff/internal/controller/job"
	"github.com/skiff-sh/skiff/internal/controller/podgc"
	"github.com/skiff-sh/skiff/internal/controller/replicaset"
	"github.com/skiff-sh/skiff/internal/controller/statefulset"
	"github.com/skiff-sh/skiff/internal/events"
)

// runner is a control loop.
type runner interface {
	Run(ctx context.Context) error
}

// workloadControllers are kube-controller-manager's workload loops, each
// recording events as the component Kubernetes names.
func workloadControllers(ctx context.Context, client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger) []runner {
	rec := func(component string) record.EventRecorder {
		r := events.NewRecorder(ctx, client, component)
		context.AfterFunc(ctx, r.Shutdown)
		return r
	}
	return []runner{
		replicaset.New(client, factory, rec("replicaset-controller"), log.With("controller", "replicaset")),
		deployment.New(client, factory, rec("deployment-controller"), log.With("controller", "deployment")),
		daemonset.New(client, factory, rec("daemonset-controller"), log.With("controller", "daemonset")),
		statefulset.New(client, factory, rec("statefulset-controller"), log.With("controller", "statefulset")),
		job.New(client, factory, rec("job-controller"), log.With("controller", "job")),
		cronjob.New(client, factory, rec("cronjob-controller"), log.With("controller", "cronjob")),
		podgc.New(client, factory, rec("pod-garbage-collector"), log.With("controller", "podgc")),
	}
}
