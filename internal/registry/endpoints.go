package registry

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func endpoints() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "endpoints"},
		Kind:                 "Endpoints",
		SingularName:         "endpoints",
		Namespaced:           true,
		ShortNames:           []string{"ep"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.Endpoints{} },
		NewList:              func() runtime.Object { return &corev1.EndpointsList{} },
		Status:               false,
		Default: func(obj runtime.Object) {
			ep := obj.(*corev1.Endpoints)
			for i := range ep.Subsets {
				for j := range ep.Subsets[i].Ports {
					if p := &ep.Subsets[i].Ports[j]; p.Protocol == "" {
						p.Protocol = corev1.ProtocolTCP
					}
				}
			}
		},
		Validate: func(obj runtime.Object) field.ErrorList { return validateEndpoints(obj.(*corev1.Endpoints)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateObjectMetaUpdate(&obj.(*corev1.Endpoints).ObjectMeta, &old.(*corev1.Endpoints).ObjectMeta)
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				column("Endpoints", "string", corev1.Endpoints{}.SwaggerDoc()["subsets"]),
				ageColumn(),
			},
			Cells: func(obj runtime.Object) []any {
				ep := obj.(*corev1.Endpoints)
				return []any{formatEndpoints(ep), age(ep.CreationTimestamp)}
			},
		},
	}
}

// validateEndpoints checks each subset has addresses with valid IPs, and
// named, valid ports.
func validateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	errs := validateObjectMeta(&ep.ObjectMeta, true, nameIsDNSSubdomain)
	for i, ss := range ep.Subsets {
		p := field.NewPath("subsets").Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(p, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j, a := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(&a, p.Child("addresses").Index(j))...)
		}
		for j, a := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(&a, p.Child("notReadyAddresses").Index(j))...)
		}
		names := sets.New[string]()
		for j, port := range ss.Ports {
			pp := p.Child("ports").Index(j)
			if len(ss.Ports) > 1 && port.Name == "" {
				errs = append(errs, field.Required(pp.Child("name"), ""))
			} else if port.Name != "" {
				errs = append(errs, validateName(port.Name, nameIsDNSLabel, pp.Child("name"))...)
				if names.Has(port.Name) {
					errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
				}
				names.Insert(port.Name)
			}
			for _, msg := range validation.IsValidPortNum(int(port.Port)) {
				errs = append(errs, field.Invalid(pp.Child("port"), port.Port, msg))
			}
			errs = append(errs, validateOneOf(pp.Child("protocol"), port.Protocol, portProtocols...)...)
			if port.AppProtocol != nil {
				errs = append(errs, validateQualifiedName(*port.AppProtocol, pp.Child("appProtocol"))...)
			}
		}
	}
	return errs
}

func validateEndpointAddress(a *corev1.EndpointAddress, path *field.Path) field.ErrorList {
	errs := validation.IsValidIP(path.Child("ip"), a.IP)
	if a.Hostname != "" {
		errs = append(errs, validateName(a.Hostname, nameIsDNSLabel, path.Child("hostname"))...)
	}
	if a.NodeName != nil {
		errs = append(errs, validateName(*a.NodeName, nameIsDNSSubdomain, path.Child("nodeName"))...)
	}
	if ip := net.ParseIP(a.IP); ip != nil && (ip.IsUnspecified() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast()) {
		errs = append(errs, field.Invalid(path.Child("ip"), a.IP, "may not be unspecified, loopback or link-local"))
	}
	return errs
}

// formatEndpoints is the ENDPOINTS column: up to three ip:port pairs, then
// how many more there are.
func formatEndpoints(ep *corev1.Endpoints) string {
	if len(ep.Subsets) == 0 {
		return "<none>"
	}
	const max = 3
	var list []string
	count := 0
	add := func(s string) {
		count++
		if len(list) < max {
			list = append(list, s)
		}
	}
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			// Headless services may have no ports.
			for _, a := range ss.Addresses {
				add(a.IP)
			}
			continue
		}
		for _, port := range ss.Ports {
			for _, a := range ss.Addresses {
				add(net.JoinHostPort(a.IP, strconv.Itoa(int(port.Port))))
			}
		}
	}
	s := strings.Join(list, ",")
	if count > max {
		return fmt.Sprintf("%s + %d more...", s, count-max)
	}
	return s
}
