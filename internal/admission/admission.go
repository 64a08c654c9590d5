// Package admission changes and checks objects on their way into the store,
// after validation: the namespace lifecycle (no content in missing or
// terminating namespaces), the ServiceAccount plugin (a pod's service
// account and its API credentials volume), and the allocation of Service
// cluster IPs and node ports, PodPreset injection (podpreset.go), the
// default StorageClass of claims (storageclass.go), which claims may grow
// (resize.go) and the protection finalizers of claims and volumes
// (storageprotection.go).
package admission

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/store"
)

// Store is what admission reads.
type Store interface {
	Get(ctx context.Context, key string) (runtime.Object, error)
	List(ctx context.Context, prefix string, opts store.ListOptions) (*store.ListResult, error)
}

// Chain is skiff's admission: every plugin in order.
type Chain struct {
	store           Store
	serviceAccounts *serviceAccounts
	podPresets      *podPresets
	services        *serviceIPs
}

var _ apiserver.Admission = (*Chain)(nil)

// New returns the admission chain. serviceCIDR is the range cluster IPs
// come from.
func New(st Store, serviceCIDR netip.Prefix) *Chain {
	return &Chain{store: st, serviceAccounts: newServiceAccounts(st), podPresets: &podPresets{store: st}, services: &serviceIPs{store: st, cidr: serviceCIDR, reserved: map[netip.Addr]bool{}, reservedPorts: map[int32]bool{}}}
}

// SetRecorder gives the chain a way to record events (the server's client
// exists only once the API it serves does).
func (c *Chain) SetRecorder(r EventRecorder) {
	c.podPresets.mu.Lock()
	defer c.podPresets.mu.Unlock()
	c.podPresets.rec = r
}

// Admit implements apiserver.Admission.
func (c *Chain) Admit(ctx context.Context, op apiserver.Operation, r *registry.Resource, obj, old runtime.Object) error {
	if op == apiserver.Create && r.Namespaced {
		if err := c.namespaceOpen(ctx, obj); err != nil {
			return err
		}
	}
	if pod, ok := obj.(*corev1.Pod); ok && op == apiserver.Create {
		// In kube-apiserver's order: PodPreset, then ServiceAccount.
		applied, err := c.podPresets.admit(ctx, pod)
		if err != nil {
			return err
		}
		// The pod was validated before admission; what presets added is
		// validated now, as kube-apiserver validates after mutation.
		if applied && r.Validate != nil {
			if errs := r.Validate(pod); len(errs) > 0 {
				return apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, pod.Name, errs)
			}
		}
		if err := c.serviceAccounts.admit(ctx, pod); err != nil {
			return err
		}
	}
	if op == apiserver.Create {
		protectStorage(obj)
	}
	if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
		switch op {
		case apiserver.Create:
			return c.defaultStorageClass(ctx, pvc)
		case apiserver.Update:
			if old, ok := old.(*corev1.PersistentVolumeClaim); ok {
				return c.claimResize(ctx, pvc, old)
			}
		}
	}
	if svc, ok := obj.(*corev1.Service); ok {
		var oldSvc *corev1.Service
		if old != nil {
			oldSvc = old.(*corev1.Service)
		}
		return c.services.admit(ctx, svc, oldSvc)
	}
	return nil
}

// Released implements apiserver.Admission.
func (c *Chain) Released(ctx context.Context, r *registry.Resource, obj runtime.Object) {
	if svc, ok := obj.(*corev1.Service); ok {
		c.services.release(svc)
	}
}

// namespaceOpen refuses content in a namespace that does not exist or is
// being deleted, with kube-apiserver's messages.
func (c *Chain) namespaceOpen(ctx context.Context, obj runtime.Object) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	ns := m.GetNamespace()
	got, err := c.store.Get(ctx, "/registry/namespaces/"+ns)
	if errors.Is(err, store.ErrNotFound) {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, ns)
	}
	if err != nil {
		return err
	}
	if n := got.(*corev1.Namespace); n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating {
		gvk := obj.GetObjectKind().GroupVersionKind()
		return apierrors.NewForbidden(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, m.GetName(),
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
	}
	return nil
}

// serviceIPs hands out cluster IPs and node ports. What is in use is read
// from the stored Services; reservations cover creates still in flight.
type serviceIPs struct {
	store         Store
	cidr          netip.Prefix
	mu            sync.Mutex
	reserved      map[netip.Addr]bool
	reservedPorts map[int32]bool
}

const (
	nodePortMin = 30000
	nodePortMax = 32767
)

func (s *serviceIPs) inUse(ctx context.Context) (map[netip.Addr]bool, map[int32]bool, error) {
	res, err := s.store.List(ctx, "/registry/services/", store.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	ips, ports := map[netip.Addr]bool{}, map[int32]bool{}
	for _, it := range res.Items {
		svc := it.(*corev1.Service)
		if a, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil {
			ips[a] = true
		}
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				ports[p.NodePort] = true
			}
		}
	}
	return ips, ports, nil
}

func (s *serviceIPs) admit(ctx context.Context, svc, old *corev1.Service) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old != nil {
		// The cluster IP is kept through updates (validation refuses changes).
		if svc.Spec.ClusterIP == "" {
			svc.Spec.ClusterIP = old.Spec.ClusterIP
			svc.Spec.ClusterIPs = old.Spec.ClusterIPs
		}
	}
	used, usedPorts, err := s.inUse(ctx)
	if err != nil {
		return err
	}
	if svc.Spec.Type != corev1.ServiceTypeExternalName && (old == nil || old.Spec.ClusterIP == "") {
		if err := s.assignIP(svc, used); err != nil {
			return err
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		if err := s.assignNodePorts(svc, old, usedPorts); err != nil {
			return err
		}
	}
	return nil
}

func (s *serviceIPs) assignIP(svc *corev1.Service, used map[netip.Addr]bool) error {
	path := field.NewPath("spec", "clusterIPs").Index(0)
	switch ip := svc.Spec.ClusterIP; ip {
	case corev1.ClusterIPNone:
		svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
		return nil
	case "":
		// The first address is the network; the next is the kubernetes
		// service's, handed out like any other.
		for a := s.cidr.Masked().Addr().Next(); s.cidr.Contains(a); a = a.Next() {
			if used[a] || s.reserved[a] {
				continue
			}
			if !s.cidr.Contains(a.Next()) {
				break // the broadcast address
			}
			s.reserved[a] = true
			svc.Spec.ClusterIP = a.String()
			svc.Spec.ClusterIPs = []string{a.String()}
			return nil
		}
		return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: range is full"))
	default:
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return invalidService(svc, field.Invalid(path, ip, "must be a valid IP address"))
		}
		if !s.cidr.Contains(a) {
			return invalidService(svc, field.Invalid(path, ip, fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, ip, s.cidr)))
		}
		if used[a] || s.reserved[a] {
			return invalidService(svc, field.Invalid(path, ip, fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", ip)))
		}
		s.reserved[a] = true
		svc.Spec.ClusterIPs = []string{ip}
		return nil
	}
}

func (s *serviceIPs) assignNodePorts(svc, old *corev1.Service, used map[int32]bool) error {
	next := int32(nodePortMin)
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.NodePort != 0 {
			if old != nil && ownsNodePort(old, p.NodePort) {
				continue
			}
			if p.NodePort < nodePortMin || p.NodePort > nodePortMax {
				return invalidService(svc, field.Invalid(field.NewPath("spec", "ports").Index(i).Child("nodePort"), p.NodePort,
					fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", nodePortMin, nodePortMax)))
			}
			if used[p.NodePort] || s.reservedPorts[p.NodePort] {
				return invalidService(svc, field.Invalid(field.NewPath("spec", "ports").Index(i).Child("nodePort"), p.NodePort, "provided port is already allocated"))
			}
			s.reservedPorts[p.NodePort] = true
			continue
		}
		for ; next <= nodePortMax && (used[next] || s.reservedPorts[next]); next++ {
		}
		if next > nodePortMax {
			return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: range is full"))
		}
		p.NodePort = next
		s.reservedPorts[next] = true
	}
	return nil
}

func ownsNodePort(svc *corev1.Service, port int32) bool {
	for _, p := range svc.Spec.Ports {
		if p.NodePort == port {
			return true
		}
	}
	return false
}

func (s *serviceIPs) release(svc *corev1.Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil {
		delete(s.reserved, a)
	}
	for _, p := range svc.Spec.Ports {
		delete(s.reservedPorts, p.NodePort)
	}
}

func invalidService(svc *corev1.Service, err *field.Error) error {
	return apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, svc.Name, field.ErrorList{err})
}
