package server

import (
	"context"
	"crypto/rsa"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/admission"
	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/store"
)

func TestServiceAccountKeyIsKeptInTheDataDir(t *testing.T) {
	cfg := Config{DataDir: t.TempDir(), ServiceCIDR: netip.MustParsePrefix("10.43.0.0/16")}
	first, err := ensureCredentials(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, "server", "tls", "service-account.key")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", path, fi, err)
	}
	again, err := ensureCredentials(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !first.serviceAccountKey.(*rsa.PrivateKey).Equal(again.serviceAccountKey) {
		t.Error("a restart made a new service account key: every issued token would stop working")
	}
}

// TestPodCredentialsWorkUntilThePodIsDeleted runs the API server with the
// admission chain and a signing key as Run wires them, and follows a pod's
// credentials the way the node agent and the pod use them.
func TestPodCredentialsWorkUntilThePodIsDeleted(t *testing.T) {
	ctx := context.Background()
	ds, err := etcd.Open(ctx, etcd.Config{DataDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	st := store.New(ds.Client, store.NewJSONCodec(registry.Scheme), nil, nil)
	key, err := apiserver.LoadOrCreateServiceAccountKey(filepath.Join(t.TempDir(), "service-account.key"))
	if err != nil {
		t.Fatal(err)
	}
	const admin = "admin-token"
	api := apiserver.New(apiserver.Config{
		Tokens:            map[string]apiserver.User{admin: {Name: "admin", Groups: []string{"system:masters"}}},
		ServiceAccountKey: key,
		Admission:         admission.New(st, netip.MustParsePrefix("10.43.0.0/16")),
	}, st, registry.All())
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL, BearerToken: admin})

	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Volumes) != 1 || !strings.HasPrefix(pod.Spec.Volumes[0].Name, "kube-api-access-") ||
		len(pod.Spec.Containers[0].VolumeMounts) != 1 || pod.Spec.Containers[0].VolumeMounts[0].MountPath != "/var/run/secrets/kubernetes.io/serviceaccount" {
		t.Fatalf("the stored pod lacks its credentials: %+v", pod.Spec)
	}

	// The agent's request for the volume's token.
	tr, err := client.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: pod.Spec.Volumes[0].Projected.Sources[0].ServiceAccountToken.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	asPod := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL, BearerToken: tr.Status.Token})
	if _, err := asPod.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("the pod's token: %v", err)
	}
	if err := client.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	if _, err := asPod.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("the deleted pod's token: %v, want Unauthorized", err)
	}
}
