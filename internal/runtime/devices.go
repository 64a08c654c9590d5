package runtime

import (
	_ "github.com/opencontainers/cgroups/devices" // registers the device-cgroup setters (v1 files, v2 eBPF)
	devices "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// allowedDevices are the devices every container may use, whatever its
// spec denies, as runc allows them: the nodes the runtime creates in /dev
// and the pseudo-terminals.
var allowedDevices = []*devices.Rule{
	{Type: devices.CharDevice, Major: 1, Minor: 3, Permissions: "rwm", Allow: true},                  // null
	{Type: devices.CharDevice, Major: 1, Minor: 5, Permissions: "rwm", Allow: true},                  // zero
	{Type: devices.CharDevice, Major: 1, Minor: 7, Permissions: "rwm", Allow: true},                  // full
	{Type: devices.CharDevice, Major: 1, Minor: 8, Permissions: "rwm", Allow: true},                  // random
	{Type: devices.CharDevice, Major: 1, Minor: 9, Permissions: "rwm", Allow: true},                  // urandom
	{Type: devices.CharDevice, Major: 5, Minor: 0, Permissions: "rwm", Allow: true},                  // tty
	{Type: devices.CharDevice, Major: 5, Minor: 1, Permissions: "rwm", Allow: true},                  // console
	{Type: devices.CharDevice, Major: 5, Minor: 2, Permissions: "rwm", Allow: true},                  // ptmx
	{Type: devices.CharDevice, Major: 136, Minor: devices.Wildcard, Permissions: "rwm", Allow: true}, // pts
	{Type: devices.CharDevice, Major: 10, Minor: 200, Permissions: "rwm", Allow: true},               // tun
}

// deviceRules translates the spec's device cgroup rules, in order, then
// adds the always-allowed devices and the spec's own device nodes.
func deviceRules(spec *specs.Spec) []*devices.Rule {
	var rules []*devices.Rule
	l := spec.Linux
	if l == nil {
		return append(rules, allowedDevices...)
	}
	if l.Resources != nil {
		for _, d := range l.Resources.Devices {
			t := devices.WildcardDevice
			if d.Type != "" {
				t = devices.Type(d.Type[0])
			}
			r := &devices.Rule{Type: t, Major: devices.Wildcard, Minor: devices.Wildcard, Permissions: devices.Permissions(d.Access), Allow: d.Allow}
			if d.Major != nil {
				r.Major = *d.Major
			}
			if d.Minor != nil {
				r.Minor = *d.Minor
			}
			if r.Permissions == "" {
				r.Permissions = "rwm"
			}
			rules = append(rules, r)
		}
	}
	rules = append(rules, allowedDevices...)
	for _, d := range l.Devices {
		t := devices.Type(d.Type[0])
		if d.Type == "u" {
			t = devices.CharDevice
		}
		rules = append(rules, &devices.Rule{Type: t, Major: d.Major, Minor: d.Minor, Permissions: "rwm", Allow: true})
	}
	return rules
}
