package registry

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func testEndpointSlice() *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  testMeta("web-abcde"),
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.42.0.5"}},
			{Addresses: []string{"10.42.0.6", "10.42.0.7", "10.42.0.8"}},
		},
		Ports: []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(80))}, {Port: new(int32(443))}},
	}
}

func TestEndpointSliceDefaultsPorts(t *testing.T) {
	s := testEndpointSlice()
	endpointslices().Default(s)
	for i, p := range s.Ports {
		if p.Protocol == nil || *p.Protocol != corev1.ProtocolTCP || p.Name == nil {
			t.Errorf("port %d = %+v, want protocol TCP and a name", i, p)
		}
	}
	if errs := createErrors(endpointslices(), testEndpointSlice()); len(errs) > 0 {
		t.Errorf("valid slice rejected: %v", errs)
	}
}

func TestEndpointSliceValidation(t *testing.T) {
	badType := testEndpointSlice()
	badType.AddressType = "IPv5"
	wrongFamily := testEndpointSlice()
	wrongFamily.Endpoints[0].Addresses = []string{"fd00::5"}
	dupPorts := testEndpointSlice()
	dupPorts.Ports[1].Name = new("http")

	runCheckCases(t, []checkCase{
		{"address type", endpointslices(), badType, "addressType", field.ErrorTypeNotSupported, `"FQDN", "IPv4", "IPv6"`},
		{"address family", endpointslices(), wrongFamily, "endpoints[0].addresses[0]", field.ErrorTypeInvalid, "must be a valid IPv4 address"},
		{"port names unique", endpointslices(), dupPorts, "ports[1].name", field.ErrorTypeDuplicate, ""},
	})
}

func TestEndpointSliceTableCells(t *testing.T) {
	s := testEndpointSlice()
	cells := endpointslices().Table.Cells(s)
	if cells[0] != "IPv4" || cells[1] != "80,443" || cells[2] != "10.42.0.5,10.42.0.6,10.42.0.7 + 1 more..." {
		t.Errorf("AddressType, Ports, Endpoints = %v", cells[:3])
	}
	if got := endpointslices().Table.Cells(&discoveryv1.EndpointSlice{})[2]; got != "<unset>" {
		t.Errorf("Endpoints of an empty slice = %v, want <unset>", got)
	}
}
