package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func ownedConfigMap(name string, owner *appsv1.Deployment, block bool) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: owner.Namespace,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: owner.Name, UID: owner.UID,
			Controller: ptr(true), BlockOwnerDeletion: ptr(block)}}}}
}

func ptr[T any](v T) *T { return &v }

func newDeployment(t *testing.T, c kubernetes.Interface, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
	d, err := c.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func gone(c kubernetes.Interface, ns, cm string) func() error {
	return func() error {
		_, err := c.CoreV1().ConfigMaps(ns).Get(context.Background(), cm, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("configmap %s still there (err %v)", cm, err)
	}
}

func TestDeletingAnOwnerInTheBackgroundDeletesItsDependents(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()
	d := newDeployment(t, c, "owner-bg")
	if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, ownedConfigMap("dep-bg", d, false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bg := metav1.DeletePropagationBackground
	if err := c.AppsV1().Deployments("default").Delete(ctx, d.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, gone(c, "default", "dep-bg"))
}

func TestForegroundDeletionWaitsForDependents(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()
	d := newDeployment(t, c, "owner-fg")
	dep := ownedConfigMap("dep-fg", d, true)
	// A finalizer holds the dependent, so the owner must wait for it.
	dep.Finalizers = []string{"example.com/hold"}
	if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fg := metav1.DeletePropagationForeground
	if err := c.AppsV1().Deployments("default").Delete(ctx, d.Name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		cm, err := c.CoreV1().ConfigMaps("default").Get(ctx, "dep-fg", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.DeletionTimestamp == nil {
			return fmt.Errorf("dependent not being deleted yet")
		}
		return nil
	})
	got, err := c.AppsV1().Deployments("default").Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp == nil {
		t.Fatalf("owner should wait, being deleted, for its dependent: %v %v", got, err)
	}
	// Release the dependent: it goes, then the owner.
	cm, _ := c.CoreV1().ConfigMaps("default").Get(ctx, "dep-fg", metav1.GetOptions{})
	cm.Finalizers = nil
	if _, err := c.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		_, err := c.AppsV1().Deployments("default").Get(ctx, d.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("owner still there: %v", err)
	})
}

func TestOrphanDeletionKeepsDependentsWithoutTheOwnerReference(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()
	d := newDeployment(t, c, "owner-orphan")
	if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, ownedConfigMap("dep-orphan", d, false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.mustKubectl("delete", "deployment", d.Name, "--cascade=orphan")
	cm, err := c.CoreV1().ConfigMaps("default").Get(ctx, "dep-orphan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.OwnerReferences) != 0 {
		t.Errorf("orphaned dependent still has owner references: %v", cm.OwnerReferences)
	}
}

func TestResetRemovesTheDataDirButNotWhileTheServerRuns(t *testing.T) {
	s := startServer(t)
	out, err := runSkiff("reset", "--data-dir", s.dataDir)
	if err == nil {
		t.Fatalf("reset of a running server's data dir succeeded: %s", out)
	}
	s.stop()
	if out, err := runSkiff("reset", "--data-dir", s.dataDir); err != nil {
		t.Fatalf("reset: %v: %s", err, out)
	}
	if _, err := os.Stat(s.dataDir); !os.IsNotExist(err) {
		t.Errorf("data dir still there after reset: %v", err)
	}
}
