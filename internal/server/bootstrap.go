package server

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/controller/persistentvolume"
)

// systemNamespaces exist in every cluster.
var systemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

// bootstrap creates what every cluster starts with: the system namespaces,
// the kubernetes service in default pointing at this server and, where the
// controllers run (and with them the local-path provisioner), the default
// StorageClass, so that no claim made once the server is ready misses it.
func bootstrap(ctx context.Context, client kubernetes.Interface, cfg Config) error {
	// The API server may take a moment to accept its first request.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := client.Discovery().ServerVersion()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	for _, name := range systemNamespaces {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("namespace %s: %w", name, err)
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: firstServiceIP(cfg.ServiceCIDR).String(),
			Ports:     []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(int32(cfg.HTTPSPort))}},
		},
	}
	_, err := client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, svc.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = client.CoreV1().Services(metav1.NamespaceDefault).Create(ctx, svc, metav1.CreateOptions{})
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubernetes service: %w", err)
	}
	if cfg.NodeIP.IsValid() {
		ep := &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault},
			Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: cfg.NodeIP.String()}},
				Ports:     []corev1.EndpointPort{{Name: "https", Port: int32(cfg.HTTPSPort), Protocol: corev1.ProtocolTCP}},
			}},
		}
		_, err := client.CoreV1().Endpoints(metav1.NamespaceDefault).Create(ctx, ep, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			cur, gerr := client.CoreV1().Endpoints(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
			if gerr == nil {
				ep.ResourceVersion = cur.ResourceVersion
				_, err = client.CoreV1().Endpoints(metav1.NamespaceDefault).Update(ctx, ep, metav1.UpdateOptions{})
			}
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("kubernetes endpoints: %w", err)
		}
	}
	if !cfg.DisableControllerManager {
		return persistentvolume.EnsureDefaultClass(ctx, client)
	}
	return nil
}
