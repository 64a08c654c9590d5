package registry

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Size limits Kubernetes puts on one EndpointSlice.
const (
	maxSliceEndpoints      = 1000
	maxEndpointAddresses   = 100
	maxSlicePorts          = 20000
	maxEndpointTopology    = 16
	maxEndpointZoneHints   = 8
	maxEndpointNodeHints   = 8
	endpointCellListLength = 3
)

var (
	sliceAddressTypes = []discoveryv1.AddressType{discoveryv1.AddressTypeFQDN, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}
	sliceProtocols    = []corev1.Protocol{corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP}
)

func endpointslices() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
		Kind:                 "EndpointSlice",
		SingularName:         "endpointslice",
		Namespaced:           true,
		ShortNames:           nil,
		Categories:           nil,
		New:                  func() runtime.Object { return &discoveryv1.EndpointSlice{} },
		NewList:              func() runtime.Object { return &discoveryv1.EndpointSliceList{} },
		Status:               false,
		Default:              func(obj runtime.Object) { defaultEndpointSlice(obj.(*discoveryv1.EndpointSlice)) },
		Validate: func(obj runtime.Object) field.ErrorList {
			return validateEndpointSlice(obj.(*discoveryv1.EndpointSlice))
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			s, o := obj.(*discoveryv1.EndpointSlice), old.(*discoveryv1.EndpointSlice)
			errs := validateObjectMetaUpdate(&s.ObjectMeta, &o.ObjectMeta)
			return append(errs, apimachineryvalidation.ValidateImmutableField(s.AddressType, o.AddressType, field.NewPath("addressType"))...)
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				column("AddressType", "string", "Type of the addresses in this slice."),
				column("Ports", "string", "Ports exposed by the endpoints."),
				column("Endpoints", "string", "Addresses of the endpoints."),
				ageColumn(),
			},
			Cells: func(obj runtime.Object) []any {
				s := obj.(*discoveryv1.EndpointSlice)
				return []any{string(s.AddressType), slicePortsCell(s.Ports), sliceEndpointsCell(s.Endpoints), age(s.CreationTimestamp)}
			},
		},
	}
}

// defaultEndpointSlice applies discovery/v1 defaulting: ports are unnamed
// and TCP unless they say otherwise.
func defaultEndpointSlice(s *discoveryv1.EndpointSlice) {
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Name == nil {
			p.Name = new("")
		}
		if p.Protocol == nil {
			p.Protocol = new(corev1.ProtocolTCP)
		}
	}
}

// validateEndpointSlice checks an EndpointSlice on create and update.
func validateEndpointSlice(s *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateObjectMeta(&s.ObjectMeta, true, nameIsDNSSubdomain)
	switch typePath := field.NewPath("addressType"); {
	case s.AddressType == "":
		errs = append(errs, field.Required(typePath, ""))
	case !slices.Contains(sliceAddressTypes, s.AddressType):
		errs = append(errs, field.NotSupported(typePath, s.AddressType, sliceAddressTypes))
	}
	errs = append(errs, validateSliceEndpoints(s.Endpoints, s.AddressType, field.NewPath("endpoints"))...)
	errs = append(errs, validateSlicePorts(s.Ports, field.NewPath("ports"))...)
	return errs
}

// validateSliceEndpoints checks each endpoint's addresses against the
// slice's address type, and its hostname, node name, topology and hints.
func validateSliceEndpoints(endpoints []discoveryv1.Endpoint, addrType discoveryv1.AddressType, path *field.Path) field.ErrorList {
	if len(endpoints) > maxSliceEndpoints {
		return field.ErrorList{field.TooMany(path, len(endpoints), maxSliceEndpoints)}
	}
	var errs field.ErrorList
	for i, ep := range endpoints {
		epPath := path.Index(i)
		addrPath := epPath.Child("addresses")
		switch {
		case len(ep.Addresses) == 0:
			errs = append(errs, field.Required(addrPath, "must contain at least 1 address"))
		case len(ep.Addresses) > maxEndpointAddresses:
			errs = append(errs, field.TooMany(addrPath, len(ep.Addresses), maxEndpointAddresses))
		}
		for j, addr := range ep.Addresses {
			errs = append(errs, validateSliceAddress(addr, addrType, addrPath.Index(j))...)
		}
		if ep.NodeName != nil {
			for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(*ep.NodeName, false) {
				errs = append(errs, field.Invalid(epPath.Child("nodeName"), *ep.NodeName, msg))
			}
		}
		if ep.Hostname != nil {
			for _, msg := range utilvalidation.IsDNS1123Label(*ep.Hostname) {
				errs = append(errs, field.Invalid(epPath.Child("hostname"), *ep.Hostname, msg))
			}
		}
		topoPath := epPath.Child("deprecatedTopology")
		if len(ep.DeprecatedTopology) > maxEndpointTopology {
			errs = append(errs, field.TooMany(topoPath, len(ep.DeprecatedTopology), maxEndpointTopology))
		}
		errs = append(errs, metav1validation.ValidateLabels(ep.DeprecatedTopology, topoPath)...)
		if h := ep.Hints; h != nil {
			hintsPath := epPath.Child("hints")
			if len(h.ForZones) > maxEndpointZoneHints {
				errs = append(errs, field.TooMany(hintsPath.Child("forZones"), len(h.ForZones), maxEndpointZoneHints))
			}
			if len(h.ForNodes) > maxEndpointNodeHints {
				errs = append(errs, field.TooMany(hintsPath.Child("forNodes"), len(h.ForNodes), maxEndpointNodeHints))
			}
		}
	}
	return errs
}

// validateSliceAddress checks one address. Unknown address types are
// reported once on addressType, not on every address.
func validateSliceAddress(addr string, addrType discoveryv1.AddressType, path *field.Path) field.ErrorList {
	switch addrType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		if errs := utilvalidation.IsValidIP(path, addr); len(errs) > 0 {
			return errs
		}
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return nil
		}
		ip = ip.Unmap()
		switch {
		case addrType == discoveryv1.AddressTypeIPv4 && !ip.Is4():
			return field.ErrorList{field.Invalid(path, addr, "must be a valid IPv4 address")}
		case addrType == discoveryv1.AddressTypeIPv6 && !ip.Is6():
			return field.ErrorList{field.Invalid(path, addr, "must be a valid IPv6 address")}
		case ip.IsUnspecified():
			return field.ErrorList{field.Invalid(path, addr, "may not be unspecified ("+addr+")")}
		case ip.IsLoopback():
			return field.ErrorList{field.Invalid(path, addr, "may not be in the loopback range (127.0.0.0/8, ::1/128)")}
		case ip.IsLinkLocalUnicast():
			return field.ErrorList{field.Invalid(path, addr, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")}
		case ip.IsLinkLocalMulticast():
			return field.ErrorList{field.Invalid(path, addr, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")}
		}
	case discoveryv1.AddressTypeFQDN:
		return utilvalidation.IsFullyQualifiedDomainName(path, addr)
	}
	return nil
}

// validateSlicePorts checks port names (unique DNS labels, or empty),
// protocols and application protocols.
func validateSlicePorts(ports []discoveryv1.EndpointPort, path *field.Path) field.ErrorList {
	if len(ports) > maxSlicePorts {
		return field.ErrorList{field.TooMany(path, len(ports), maxSlicePorts)}
	}
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, p := range ports {
		portPath := path.Index(i)
		var name string
		if p.Name != nil {
			name = *p.Name
		}
		if name != "" {
			for _, msg := range utilvalidation.IsDNS1123Label(name) {
				errs = append(errs, field.Invalid(portPath.Child("name"), name, msg))
			}
		}
		if seen[name] {
			errs = append(errs, field.Duplicate(portPath.Child("name"), name))
		}
		seen[name] = true
		switch protoPath := portPath.Child("protocol"); {
		case p.Protocol == nil:
			errs = append(errs, field.Required(protoPath, ""))
		case !slices.Contains(sliceProtocols, *p.Protocol):
			errs = append(errs, field.NotSupported(protoPath, *p.Protocol, sliceProtocols))
		}
		if p.AppProtocol != nil {
			for _, msg := range content.IsQualifiedName(*p.AppProtocol) {
				errs = append(errs, field.Invalid(portPath.Child("appProtocol"), *p.AppProtocol, msg))
			}
		}
	}
	return errs
}

// slicePortsCell lists up to three ports, by number, else name, else "*".
func slicePortsCell(ports []discoveryv1.EndpointPort) string {
	items := make([]string, 0, len(ports))
	for _, p := range ports {
		switch {
		case p.Port != nil:
			items = append(items, strconv.Itoa(int(*p.Port)))
		case p.Name != nil:
			items = append(items, *p.Name)
		default:
			items = append(items, "*")
		}
	}
	return shortList(items)
}

// sliceEndpointsCell lists up to three addresses across all endpoints.
func sliceEndpointsCell(endpoints []discoveryv1.Endpoint) string {
	var items []string
	for _, ep := range endpoints {
		items = append(items, ep.Addresses...)
	}
	return shortList(items)
}

// shortList joins the first three items and counts the rest, as kubectl
// does: "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...", or <unset> when empty.
func shortList(items []string) string {
	switch {
	case len(items) == 0:
		return "<unset>"
	case len(items) > endpointCellListLength:
		return fmt.Sprintf("%s + %d more...", strings.Join(items[:endpointCellListLength], ","), len(items)-endpointCellListLength)
	}
	return strings.Join(items, ",")
}
