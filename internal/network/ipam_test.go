package network

import (
	"errors"
	"net"
	"os"
	"sync"
	"testing"
)

func mustCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAllocationSkipsNetworkGatewayAndBroadcast(t *testing.T) {
	a := newIPAM(t.TempDir(), mustCIDR(t, "10.0.0.0/29"))
	if err := a.init(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		ip, fresh, err := a.allocate(id)
		if err != nil {
			t.Fatal(err)
		}
		if !fresh {
			t.Errorf("%s: first allocation not fresh", id)
		}
		switch ip.String() {
		case "10.0.0.0", "10.0.0.1", "10.0.0.7":
			t.Errorf("%s got reserved address %s", id, ip)
		}
		if seen[ip.String()] {
			t.Errorf("%s got %s twice", id, ip)
		}
		seen[ip.String()] = true
	}
	_, _, err := a.allocate("f")
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("sixth allocation in a /29: got %v, want ErrExhausted", err)
	}
}

func TestAllocationIsStableAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cidr := mustCIDR(t, "10.0.0.0/24")
	a := newIPAM(dir, cidr)
	if err := a.init(); err != nil {
		t.Fatal(err)
	}
	first, _, err := a.allocate("a")
	if err != nil {
		t.Fatal(err)
	}
	again, fresh, err := a.allocate("a")
	if err != nil || fresh || !again.Equal(first) {
		t.Fatalf("second allocation: %s fresh=%v err=%v, want %s", again, fresh, err, first)
	}
	b := newIPAM(dir, cidr)
	if err := b.init(); err != nil {
		t.Fatal(err)
	}
	if got, err := b.get("a"); err != nil || !got.Equal(first) {
		t.Fatalf("after restart: %s %v, want %s", got, err, first)
	}
}

func TestReleasedAddressIsReusedOnlyAfterTheRest(t *testing.T) {
	a := newIPAM(t.TempDir(), mustCIDR(t, "10.0.0.0/29"))
	if err := a.init(); err != nil {
		t.Fatal(err)
	}
	ipA, _, _ := a.allocate("a")
	if err := a.release("a"); err != nil {
		t.Fatal(err)
	}
	ipB, _, _ := a.allocate("b")
	if ipB.Equal(ipA) {
		t.Fatalf("released %s handed out again at once", ipA)
	}
	if err := a.release("a"); err != nil {
		t.Fatalf("releasing twice: %v", err)
	}
	if _, err := a.get("a"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("released id: %v, want ErrNotExist", err)
	}
}

func TestStateOutsideThePodCIDRIsRefused(t *testing.T) {
	dir := t.TempDir()
	a := newIPAM(dir, mustCIDR(t, "10.0.0.0/24"))
	if err := a.init(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.allocate("a"); err != nil {
		t.Fatal(err)
	}
	if err := newIPAM(dir, mustCIDR(t, "10.0.1.0/24")).init(); err == nil {
		t.Fatal("a changed pod CIDR with allocations outside it was accepted")
	}
}

func TestConcurrentAllocationsAreDistinct(t *testing.T) {
	dir, cidr := t.TempDir(), mustCIDR(t, "10.0.0.0/24")
	// Two allocators on one state stand for two processes: only the flock
	// keeps them apart.
	allocs := []*ipam{newIPAM(dir, cidr), newIPAM(dir, cidr)}
	for _, a := range allocs {
		if err := a.init(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	ips := make([]net.IP, 40)
	errs := make([]error, len(ips))
	for i := range ips {
		wg.Go(func() {
			ips[i], _, errs[i] = allocs[i%2].allocate(string(rune('a'+i%26)) + string(rune('a'+i/26)))
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, ip := range ips {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[ip.String()] {
			t.Fatalf("%s allocated twice", ip)
		}
		seen[ip.String()] = true
	}
}

func TestVethNameFitsTheKernelLimit(t *testing.T) {
	for _, id := range []string{"a", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"} {
		if name := vethName(id); len(name) > 15 || name != vethName(id) {
			t.Errorf("vethName(%q) = %q", id, name)
		}
	}
	if vethName("a") == vethName("b") {
		t.Error("different ids share a veth name")
	}
}

func TestInvalidSandboxIDsAreRefused(t *testing.T) {
	for _, id := range []string{"", ".", "..", "a/b", "../x", "a b", string(make([]byte, 200))} {
		if validID(id) == nil {
			t.Errorf("validID(%q) accepted", id)
		}
	}
	if err := validID("4f2c-sandbox_1.x"); err != nil {
		t.Error(err)
	}
}

func TestConfigValidation(t *testing.T) {
	base := func() Config {
		return Config{StateDir: "/s", NetnsDir: "/n", Bridge: "br", PodCIDR: mustCIDR(t, "10.42.0.0/24"), ClusterCIDR: mustCIDR(t, "10.42.0.0/16")}
	}
	for name, c := range map[string]struct {
		mod func(*Config)
		ok  bool
	}{
		"valid":                       {func(*Config) {}, true},
		"nil cluster CIDR":            {func(c *Config) { c.ClusterCIDR = nil }, true},
		"pod CIDR outside cluster":    {func(c *Config) { c.PodCIDR = mustCIDR(t, "10.43.0.0/24") }, false},
		"pod CIDR too small":          {func(c *Config) { c.PodCIDR = mustCIDR(t, "10.42.0.0/31") }, false},
		"IPv6 pod CIDR":               {func(c *Config) { c.PodCIDR = mustCIDR(t, "fd00::/64") }, false},
		"service CIDR overlaps pods":  {func(c *Config) { c.ServiceCIDR = mustCIDR(t, "10.42.128.0/20") }, false},
		"service CIDR apart":          {func(c *Config) { c.ServiceCIDR = mustCIDR(t, "10.43.0.0/16") }, true},
		"bridge name too long":        {func(c *Config) { c.Bridge = "a-very-long-bridge" }, false},
		"no state dir":                {func(c *Config) { c.StateDir = "" }, false},
		"host bits in pod CIDR":       {func(c *Config) { c.PodCIDR = &net.IPNet{IP: net.IPv4(10, 42, 0, 5).To4(), Mask: net.CIDRMask(24, 32)} }, false},
		"MTU below the IPv4 minimum":  {func(c *Config) { c.MTU = 100 }, false},
		"pod CIDR equal to cluster's": {func(c *Config) { c.PodCIDR = mustCIDR(t, "10.42.0.0/16") }, true},
	} {
		cfg := base()
		c.mod(&cfg)
		if err := cfg.validate(); (err == nil) != c.ok {
			t.Errorf("%s: validate() = %v, want ok=%v", name, err, c.ok)
		}
	}
}
