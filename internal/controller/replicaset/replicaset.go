// Package replicaset keeps a ReplicaSet's replicas of pods running (to be written: this is the wiring's placeholder).
package replicaset

import (
	"context"
	"log/slog"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

// Controller is the replicaset controller.
type Controller struct{}

// New makes the controller on factory's informers; start the factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	return &Controller{}
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
