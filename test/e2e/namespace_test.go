package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNewNamespaceGetsDefaultServiceAccountAndRootCA(t *testing.T) {
	s := startServer(t)
	s.mustKubectl("create", "namespace", "fresh")
	c := s.client()
	ctx := context.Background()
	eventually(t, 20*time.Second, func() error {
		if _, err := c.CoreV1().ServiceAccounts("fresh").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return err
		}
		cm, err := c.CoreV1().ConfigMaps("fresh").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !strings.Contains(cm.Data["ca.crt"], "BEGIN CERTIFICATE") {
			return errorf("kube-root-ca.crt without a certificate: %v", cm.Data)
		}
		return nil
	})
	s.mustKubectl("run", "p", "-n", "fresh", "--image=busybox")
	out := s.mustKubectl("get", "pod", "p", "-n", "fresh", "-o", "jsonpath={.spec.serviceAccountName}")
	if out != "default" {
		t.Errorf("pod service account = %q, want default", out)
	}
}
