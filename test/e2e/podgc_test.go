package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod bound to a node that does not exist is collected once the node
// has been missing for the quarantine (40 s, checked every 20 s).
func TestPodsOfANodeThatIsGoneAreCollected(t *testing.T) {
	_, c := startAgentServer(t)
	ctx := context.Background()
	ghost := shPod("haunted", "true", corev1.RestartPolicyNever)
	ghost.Spec.NodeName = "no-such-node"
	createPod(t, c, ghost)
	kept := shPod("kept", "sleep 3600", corev1.RestartPolicyNever)
	createPod(t, c, kept)
	eventually(t, 90*time.Second, func() error {
		if _, err := c.CoreV1().Pods("default").Get(ctx, "haunted", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return errorf("pod on a missing node still there: %v", err)
		}
		return nil
	})
	if _, err := c.CoreV1().Pods("default").Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Errorf("a pod on a real node was collected: %v", err)
	}
}
