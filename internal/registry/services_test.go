package registry

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func newService() *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80}},
		},
	}
	defaultService(svc)
	return svc
}

func TestDefaultServiceFillsKubernetesDefaults(t *testing.T) {
	svc := newService()
	spec := svc.Spec
	checks := []struct {
		name      string
		got, want any
	}{
		{"type", spec.Type, corev1.ServiceTypeClusterIP},
		{"sessionAffinity", spec.SessionAffinity, corev1.ServiceAffinityNone},
		{"protocol", spec.Ports[0].Protocol, corev1.ProtocolTCP},
		{"targetPort", spec.Ports[0].TargetPort, intstr.FromInt32(80)},
		{"internalTrafficPolicy", *spec.InternalTrafficPolicy, corev1.ServiceInternalTrafficPolicyCluster},
		{"ipFamilyPolicy", *spec.IPFamilyPolicy, corev1.IPFamilyPolicySingleStack},
		{"ipFamilies", len(spec.IPFamilies) == 1 && spec.IPFamilies[0] == corev1.IPv4Protocol, true},
		{"externalTrafficPolicy", spec.ExternalTrafficPolicy, corev1.ServiceExternalTrafficPolicy("")},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if errs := validateService(svc); len(errs) > 0 {
		t.Errorf("defaulted service does not validate: %v", errs)
	}

	np := newService()
	np.Spec.Type = corev1.ServiceTypeNodePort
	np.Spec.ExternalTrafficPolicy = ""
	defaultService(np)
	if np.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster {
		t.Errorf("NodePort externalTrafficPolicy = %q, want Cluster", np.Spec.ExternalTrafficPolicy)
	}

	ext := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"},
	}
	defaultService(ext)
	if ext.Spec.IPFamilyPolicy != nil || ext.Spec.IPFamilies != nil || ext.Spec.InternalTrafficPolicy != nil {
		t.Errorf("ExternalName service got IP fields: %+v", ext.Spec)
	}
	if errs := validateService(ext); len(errs) > 0 {
		t.Errorf("ExternalName service does not validate: %v", errs)
	}
}

func TestValidateServiceReportsFieldPaths(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Service)
		want   []string
	}{
		{"no ports", func(s *corev1.Service) { s.Spec.Ports = nil }, []string{"FieldValueRequired spec.ports"}},
		{"headless without ports", func(s *corev1.Service) {
			s.Spec.Ports = nil
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
		}, nil},
		{"name not a DNS label", func(s *corev1.Service) { s.Name = "web.app" }, []string{"FieldValueInvalid metadata.name"}},
		{"port out of range", func(s *corev1.Service) { s.Spec.Ports[0].Port = 0 }, []string{"FieldValueInvalid spec.ports[0].port"}},
		{"unknown protocol", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "ICMP" },
			[]string{"FieldValueNotSupported spec.ports[0].protocol"}},
		{"second port needs a name", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(443)})
		}, []string{"FieldValueRequired spec.ports[0].name"}},
		{"unknown type", func(s *corev1.Service) { s.Spec.Type = "Magic" }, []string{"FieldValueNotSupported spec.type"}},
		{"bad selector", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "we b"} },
			[]string{"FieldValueInvalid spec.selector"}},
		{"node port on ClusterIP", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30001 },
			[]string{"FieldValueForbidden spec.ports[0].nodePort"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := newService()
			tt.mutate(svc)
			wantErrors(t, validateService(svc), tt.want...)
		})
	}
}

func TestServiceClusterIPIsImmutable(t *testing.T) {
	old := newService()
	old.ResourceVersion = "3"
	old.Spec.ClusterIP, old.Spec.ClusterIPs = "10.43.0.10", []string{"10.43.0.10"}

	same := old.DeepCopy()
	wantErrors(t, validateServiceUpdate(same, old))

	omitted := old.DeepCopy()
	omitted.Spec.ClusterIP, omitted.Spec.ClusterIPs = "", nil
	wantErrors(t, validateServiceUpdate(omitted, old))

	changed := old.DeepCopy()
	changed.Spec.ClusterIP, changed.Spec.ClusterIPs = "10.43.0.11", []string{"10.43.0.11"}
	wantErrors(t, validateServiceUpdate(changed, old), "FieldValueInvalid spec.clusterIPs[0]")

	external := changed.DeepCopy()
	external.Spec.Type = corev1.ServiceTypeExternalName
	wantErrors(t, validateServiceUpdate(external, old))
}

func TestServiceCells(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Service)
		want   []any
	}{
		{"cluster IP", func(s *corev1.Service) {
			s.Spec.ClusterIPs = []string{"10.43.0.10"}
		}, []any{"ClusterIP", "10.43.0.10", "<none>", "80/TCP"}},
		{"node port", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ClusterIPs = []string{"10.43.0.10"}
			s.Spec.Ports[0].NodePort = 30001
		}, []any{"NodePort", "10.43.0.10", "<none>", "80:30001/TCP"}},
		{"pending load balancer", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
		}, []any{"LoadBalancer", "<none>", "<pending>", "80/TCP"}},
		{"load balancer", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.7"}}
		}, []any{"LoadBalancer", "<none>", "192.0.2.7", "80/TCP"}},
		{"external name", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com"
			s.Spec.Ports = nil
		}, []any{"ExternalName", "<none>", "db.example.com", "<none>"}},
	}
	table := services().Table
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := newService()
			tt.mutate(svc)
			got := table.Cells(svc)
			for i, w := range tt.want {
				if got[i] != w {
					t.Errorf("cell %s = %v, want %v", table.Columns[i].Name, got[i], w)
				}
			}
			if sel := got[len(got)-1]; sel != "app=web" {
				t.Errorf("selector = %v, want app=web", sel)
			}
		})
	}
}
