package registry

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func services() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "services"},
		Kind:                 "Service",
		SingularName:         "service",
		Namespaced:           true,
		ShortNames:           []string{"svc"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &corev1.Service{} },
		NewList:              func() runtime.Object { return &corev1.ServiceList{} },
		Status:               true,
		Default:              func(obj runtime.Object) { defaultService(obj.(*corev1.Service)) },
		PrepareForCreate:     func(obj runtime.Object) { obj.(*corev1.Service).Status = corev1.ServiceStatus{} },
		Validate:             func(obj runtime.Object) field.ErrorList { return validateService(obj.(*corev1.Service)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateServiceUpdate(obj.(*corev1.Service), old.(*corev1.Service))
		},
		Fields: func(obj runtime.Object) fields.Set {
			svc := obj.(*corev1.Service)
			return fields.Set{"spec.clusterIP": svc.Spec.ClusterIP, "spec.type": string(svc.Spec.Type)}
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				column("Type", "string", corev1.ServiceSpec{}.SwaggerDoc()["type"]),
				column("Cluster-IP", "string", corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"]),
				column("External-IP", "string", corev1.ServiceSpec{}.SwaggerDoc()["externalIPs"]),
				column("Port(s)", "string", corev1.ServiceSpec{}.SwaggerDoc()["ports"]),
				ageColumn(),
				wideColumn("Selector", "string", corev1.ServiceSpec{}.SwaggerDoc()["selector"]),
			},
			Cells: func(obj runtime.Object) []any {
				svc := obj.(*corev1.Service)
				clusterIP := "<none>"
				if len(svc.Spec.ClusterIPs) > 0 {
					clusterIP = svc.Spec.ClusterIPs[0]
				}
				return []any{string(svc.Spec.Type), clusterIP, serviceExternalIP(svc), orNone(servicePorts(svc.Spec.Ports)),
					age(svc.CreationTimestamp), labels.FormatLabels(svc.Spec.Selector)}
			},
		},
	}
}

// defaultService fills the type, session affinity, port protocols and
// target ports, traffic policies, and the IP family fields. Allocating the
// cluster IP itself is not done here.
func defaultService(svc *corev1.Service) {
	spec := &svc.Spec
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	switch spec.SessionAffinity {
	case corev1.ServiceAffinityNone:
		spec.SessionAffinityConfig = nil
	case corev1.ServiceAffinityClientIP:
		if c := spec.SessionAffinityConfig; c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{
				ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: new(corev1.DefaultClientIPServiceAffinitySeconds)},
			}
		}
	}
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == intstr.FromInt32(0) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if externallyAccessible(svc) && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.InternalTrafficPolicy == nil && spec.Type != corev1.ServiceTypeExternalName {
		spec.InternalTrafficPolicy = new(corev1.ServiceInternalTrafficPolicyCluster)
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		spec.AllocateLoadBalancerNodePorts = new(true)
	}

	// clusterIP is the first of clusterIPs; clients may set either.
	switch {
	case spec.ClusterIP != "" && len(spec.ClusterIPs) == 0:
		spec.ClusterIPs = []string{spec.ClusterIP}
	case spec.ClusterIP == "" && len(spec.ClusterIPs) > 0:
		spec.ClusterIP = spec.ClusterIPs[0]
	}
	if spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if spec.IPFamilyPolicy == nil {
		policy := corev1.IPFamilyPolicySingleStack
		// Headless services without a selector get no IP, so Kubernetes
		// lets their endpoints be of any family.
		if isHeadless(svc) && len(spec.Selector) == 0 || len(spec.ClusterIPs) > 1 || len(spec.IPFamilies) > 1 {
			policy = corev1.IPFamilyPolicyRequireDualStack
		}
		spec.IPFamilyPolicy = &policy
	}
	if len(spec.IPFamilies) == 0 {
		for _, ip := range spec.ClusterIPs {
			if ip != corev1.ClusterIPNone && ip != "" {
				spec.IPFamilies = append(spec.IPFamilies, ipFamily(ip))
			}
		}
		if len(spec.IPFamilies) == 0 {
			spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}
	}
}

func ipFamily(ip string) corev1.IPFamily {
	if strings.Contains(ip, ":") {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

func isHeadless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == corev1.ClusterIPNone || len(svc.Spec.ClusterIPs) > 0 && svc.Spec.ClusterIPs[0] == corev1.ClusterIPNone
}

// externallyAccessible services are reachable from outside the cluster, so
// their external traffic policy matters.
func externallyAccessible(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeClusterIP:
		return len(svc.Spec.ExternalIPs) > 0
	}
	return false
}

// maxClientIPAffinitySeconds caps sessionAffinityConfig.clientIP.timeoutSeconds
// at a day.
const maxClientIPAffinitySeconds = 86400

var (
	serviceTypes = []corev1.ServiceType{
		corev1.ServiceTypeClusterIP, corev1.ServiceTypeExternalName, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort,
	}
	ipFamilyPolicies = []corev1.IPFamilyPolicy{
		corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack, corev1.IPFamilyPolicySingleStack,
	}
)

// validateService checks a service's name (a DNS-1123 label), ports,
// selector, type, session affinity, IPs and traffic policies.
func validateService(svc *corev1.Service) field.ErrorList {
	specPath := field.NewPath("spec")
	spec := &svc.Spec
	errs := validateObjectMeta(&svc.ObjectMeta, true, nameIsDNSLabel)

	headless := isHeadless(svc)
	if len(spec.Ports) == 0 && !headless && spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(specPath.Child("ports"), ""))
	}
	switch spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		if headless {
			errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), corev1.ClusterIPNone,
				fmt.Sprintf("may not be set to 'None' for %s services", spec.Type)))
		}
	case corev1.ServiceTypeExternalName:
		if len(spec.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if len(spec.IPFamilies) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		if spec.IPFamilyPolicy != nil {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
		// The CNAME may end in a dot to say it is fully qualified.
		if cname := strings.TrimSuffix(spec.ExternalName, "."); cname != "" {
			errs = append(errs, validateName(cname, nameIsDNSSubdomain, specPath.Child("externalName"))...)
		} else {
			errs = append(errs, field.Required(specPath.Child("externalName"), ""))
		}
	}

	portsPath := specPath.Child("ports")
	names := sets.New[string]()
	ports, nodePorts := sets.New[string](), sets.New[string]()
	for i, p := range spec.Ports {
		pp := portsPath.Index(i)
		errs = append(errs, validateServicePort(&p, len(spec.Ports) > 1, names, pp)...)
		if spec.Type == corev1.ServiceTypeClusterIP && p.NodePort != 0 {
			errs = append(errs, field.Forbidden(pp.Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
		}
		if p.NodePort != 0 {
			key := fmt.Sprintf("%s/%d", p.Protocol, p.NodePort)
			if nodePorts.Has(key) {
				errs = append(errs, field.Duplicate(pp.Child("nodePort"), p.NodePort))
			}
			nodePorts.Insert(key)
		}
		key := fmt.Sprintf("%s/%d", p.Protocol, p.Port)
		if ports.Has(key) {
			errs = append(errs, field.Duplicate(pp, corev1.ServicePort{Port: p.Port, Protocol: p.Protocol}))
		}
		ports.Insert(key)
	}

	if spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabels(spec.Selector, specPath.Child("selector"))...)
	}
	errs = append(errs, validateOneOf(specPath.Child("sessionAffinity"), spec.SessionAffinity,
		corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone)...)
	errs = append(errs, validateSessionAffinityConfig(spec, specPath.Child("sessionAffinityConfig"))...)
	errs = append(errs, validateClusterIPs(svc, specPath)...)
	for i, ip := range spec.ExternalIPs {
		errs = append(errs, validation.IsValidIP(specPath.Child("externalIPs").Index(i), ip)...)
	}
	errs = append(errs, validateOneOf(specPath.Child("type"), spec.Type, serviceTypes...)...)

	if len(spec.LoadBalancerSourceRanges) > 0 {
		rp := specPath.Child("LoadBalancerSourceRanges")
		if spec.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Forbidden(rp, "may only be used when `type` is 'LoadBalancer'"))
		}
		for i, cidr := range spec.LoadBalancerSourceRanges {
			errs = append(errs, validation.IsValidCIDR(rp.Index(i), strings.TrimSpace(cidr))...)
		}
	}
	if spec.AllocateLoadBalancerNodePorts != nil && spec.Type != corev1.ServiceTypeLoadBalancer {
		errs = append(errs, field.Forbidden(specPath.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		errs = append(errs, field.Required(specPath.Child("allocateLoadBalancerNodePorts"), ""))
	}
	if spec.LoadBalancerClass != nil {
		if spec.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Forbidden(specPath.Child("loadBalancerClass"), "may only be used when `type` is 'LoadBalancer'"))
		} else {
			errs = append(errs, validateQualifiedName(*spec.LoadBalancerClass, specPath.Child("loadBalancerClass"))...)
		}
	}
	errs = append(errs, validateTrafficPolicies(svc, specPath)...)
	return errs
}

func validateServicePort(p *corev1.ServicePort, requireName bool, names sets.Set[string], path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if requireName && p.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), ""))
	} else if p.Name != "" {
		errs = append(errs, validateName(p.Name, nameIsDNSLabel, path.Child("name"))...)
		if names.Has(p.Name) {
			errs = append(errs, field.Duplicate(path.Child("name"), p.Name))
		}
		names.Insert(p.Name)
	}
	for _, msg := range validation.IsValidPortNum(int(p.Port)) {
		errs = append(errs, field.Invalid(path.Child("port"), p.Port, msg))
	}
	errs = append(errs, validateOneOf(path.Child("protocol"), p.Protocol, portProtocols...)...)
	errs = append(errs, validatePortNumOrName(p.TargetPort, path.Child("targetPort"))...)
	if p.AppProtocol != nil {
		errs = append(errs, validateQualifiedName(*p.AppProtocol, path.Child("appProtocol"))...)
	}
	return errs
}

func validateSessionAffinityConfig(spec *corev1.ServiceSpec, path *field.Path) field.ErrorList {
	switch spec.SessionAffinity {
	case corev1.ServiceAffinityNone:
		if spec.SessionAffinityConfig != nil {
			return field.ErrorList{field.Forbidden(path, fmt.Sprintf("must not be set when session affinity is %s", corev1.ServiceAffinityNone))}
		}
	case corev1.ServiceAffinityClientIP:
		when := fmt.Sprintf("when session affinity type is %s", corev1.ServiceAffinityClientIP)
		c := spec.SessionAffinityConfig
		switch {
		case c == nil:
			return field.ErrorList{field.Required(path, when)}
		case c.ClientIP == nil:
			return field.ErrorList{field.Required(path.Child("clientIP"), when)}
		case c.ClientIP.TimeoutSeconds == nil:
			return field.ErrorList{field.Required(path.Child("clientIP", "timeoutSeconds"), when)}
		case *c.ClientIP.TimeoutSeconds <= 0 || *c.ClientIP.TimeoutSeconds > maxClientIPAffinitySeconds:
			return field.ErrorList{field.Invalid(path.Child("clientIP", "timeoutSeconds"), *c.ClientIP.TimeoutSeconds,
				fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds))}
		}
	}
	return nil
}

// validateClusterIPs checks clusterIP, clusterIPs and the IP family fields
// agree: "None" or valid IPs, the first of clusterIPs equal to clusterIP,
// one IP per family.
func validateClusterIPs(svc *corev1.Service, specPath *field.Path) field.ErrorList {
	spec := &svc.Spec
	var errs field.ErrorList
	ipsPath := specPath.Child("clusterIPs")
	if len(spec.ClusterIPs) > 0 && spec.ClusterIP != spec.ClusterIPs[0] {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "first value must match `clusterIP`"))
	}
	if len(spec.ClusterIPs) > 2 {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may only hold up to 2 values"))
	}
	for i, ip := range spec.ClusterIPs {
		if ip == corev1.ClusterIPNone {
			if i > 0 || len(spec.ClusterIPs) > 1 {
				errs = append(errs, field.Invalid(ipsPath.Index(i), ip, "'None' must be the first and only value"))
			}
			continue
		}
		if ipErrs := validation.IsValidIP(ipsPath.Index(i), ip); len(ipErrs) > 0 {
			errs = append(errs, ipErrs...)
			continue
		}
		if i < len(spec.IPFamilies) && ipFamily(ip) != spec.IPFamilies[i] {
			errs = append(errs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an %s value as indicated by `ipFamilies[%d]`", spec.IPFamilies[i], i)))
		}
	}
	if len(spec.ClusterIPs) == 2 && net.ParseIP(spec.ClusterIPs[0]) != nil && ipFamily(spec.ClusterIPs[0]) == ipFamily(spec.ClusterIPs[1]) {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may specify no more than one IP for each IP family"))
	}
	if spec.IPFamilyPolicy != nil {
		errs = append(errs, validateOneOf(specPath.Child("ipFamilyPolicy"), *spec.IPFamilyPolicy, ipFamilyPolicies...)...)
		if *spec.IPFamilyPolicy == corev1.IPFamilyPolicySingleStack && len(spec.ClusterIPs) > 1 {
			errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "this service can only have one clusterIP when `ipFamilyPolicy` is 'SingleStack'"))
		}
	}
	famPath := specPath.Child("ipFamilies")
	if len(spec.IPFamilies) > 2 {
		errs = append(errs, field.Invalid(famPath, spec.IPFamilies, "may specify no more than one IP for each IP family"))
	}
	seen := sets.New[corev1.IPFamily]()
	for i, f := range spec.IPFamilies {
		errs = append(errs, validateOneOf(famPath.Index(i), f, corev1.IPv4Protocol, corev1.IPv6Protocol)...)
		if seen.Has(f) {
			errs = append(errs, field.Duplicate(famPath.Index(i), f))
		}
		seen.Insert(f)
	}
	return errs
}

func validateTrafficPolicies(svc *corev1.Service, specPath *field.Path) field.ErrorList {
	spec := &svc.Spec
	var errs field.ErrorList
	etp := specPath.Child("externalTrafficPolicy")
	if !externallyAccessible(svc) {
		if spec.ExternalTrafficPolicy != "" {
			errs = append(errs, field.Invalid(etp, spec.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
		}
	} else {
		errs = append(errs, validateOneOf(etp, spec.ExternalTrafficPolicy,
			corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal)...)
	}
	hcp := specPath.Child("healthCheckNodePort")
	needsHealthCheck := spec.Type == corev1.ServiceTypeLoadBalancer && spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	switch {
	case !needsHealthCheck && spec.HealthCheckNodePort != 0:
		errs = append(errs, field.Invalid(hcp, spec.HealthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
	case spec.HealthCheckNodePort != 0:
		for _, msg := range validation.IsValidPortNum(int(spec.HealthCheckNodePort)) {
			errs = append(errs, field.Invalid(hcp, spec.HealthCheckNodePort, msg))
		}
	}
	itp := specPath.Child("internalTrafficPolicy")
	switch {
	case spec.InternalTrafficPolicy == nil && spec.Type != corev1.ServiceTypeExternalName:
		errs = append(errs, field.Required(itp, ""))
	case spec.InternalTrafficPolicy != nil:
		errs = append(errs, validateOneOf(itp, *spec.InternalTrafficPolicy,
			corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal)...)
	}
	if td := spec.TrafficDistribution; td != nil {
		errs = append(errs, validateOneOf(specPath.Child("trafficDistribution"), *td,
			corev1.ServiceTrafficDistributionPreferClose, corev1.ServiceTrafficDistributionPreferSameZone, corev1.ServiceTrafficDistributionPreferSameNode)...)
	}
	return errs
}

// validateServiceUpdate keeps an allocated cluster IP: it may not change
// once set, except when the service becomes or stops being ExternalName. A
// client that leaves clusterIP out keeps the old one; the API server copies
// it over, as Kubernetes' service storage does.
func validateServiceUpdate(svc, old *corev1.Service) field.ErrorList {
	errs := validateObjectMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta)
	if svc.Spec.Type == corev1.ServiceTypeExternalName || old.Spec.Type == corev1.ServiceTypeExternalName {
		return errs
	}
	if isHeadless(svc) && isHeadless(old) || len(svc.Spec.ClusterIPs) == 0 {
		return errs
	}
	ipsPath := field.NewPath("spec", "clusterIPs")
	n := min(len(svc.Spec.ClusterIPs), len(old.Spec.ClusterIPs))
	for i := range n {
		if svc.Spec.ClusterIPs[i] != old.Spec.ClusterIPs[i] {
			errs = append(errs, field.Invalid(ipsPath.Index(i), svc.Spec.ClusterIPs, "may not change once set"))
		}
	}
	if len(svc.Spec.ClusterIPs) < len(old.Spec.ClusterIPs) &&
		(svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
		errs = append(errs, field.Invalid(ipsPath.Index(0), svc.Spec.ClusterIPs,
			"`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP"))
	}
	if len(old.Spec.IPFamilies) > 0 && len(svc.Spec.IPFamilies) > 0 && svc.Spec.IPFamilies[0] != old.Spec.IPFamilies[0] {
		errs = append(errs, field.Invalid(field.NewPath("spec", "ipFamilies").Index(0), svc.Spec.IPFamilies, "may not change once set"))
	}
	if old.Spec.LoadBalancerClass != nil && old.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		svc.Spec.Type == corev1.ServiceTypeLoadBalancer && !equalPtr(svc.Spec.LoadBalancerClass, old.Spec.LoadBalancerClass) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "loadBalancerClass"), svc.Spec.LoadBalancerClass, "may not change once set"))
	}
	return errs
}

func equalPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// serviceExternalIP is the EXTERNAL-IP column: external IPs and load
// balancer ingress points, <pending> for a load balancer still waiting for
// one, the CNAME of an ExternalName service.
func serviceExternalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		return orNone(strings.Join(svc.Spec.ExternalIPs, ","))
	case corev1.ServiceTypeLoadBalancer:
		ingress := sets.New[string]()
		for _, in := range svc.Status.LoadBalancer.Ingress {
			switch {
			case in.IP != "":
				ingress.Insert(in.IP)
			case in.Hostname != "":
				ingress.Insert(in.Hostname)
			}
		}
		all := append(sets.List(ingress), svc.Spec.ExternalIPs...)
		if len(all) == 0 {
			return "<pending>"
		}
		return strings.Join(all, ",")
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

// servicePorts renders ports as "80/TCP" or, with a node port, "80:30001/TCP".
func servicePorts(ports []corev1.ServicePort) string {
	pieces := make([]string, 0, len(ports))
	for _, p := range ports {
		if p.NodePort > 0 {
			pieces = append(pieces, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol))
		} else {
			pieces = append(pieces, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
		}
	}
	return strings.Join(pieces, ",")
}
