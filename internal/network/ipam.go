package network

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrExhausted is returned by Setup when the pod CIDR has no free address.
var ErrExhausted = errors.New("no free address in the pod CIDR")

// ipam hands out addresses of the pod CIDR, one per sandbox, as files
// StateDir/pods/<id>.json. Allocation takes a mutex, for goroutines, and an
// flock on StateDir/lock, for other processes on the same state. Addresses
// are handed out round robin from the last one, so a released address is not
// reused at once while peers may still hold it in ARP or conntrack entries.
type ipam struct {
	dir  string
	cidr *net.IPNet
	mu   sync.Mutex
}

// record is a pod's allocation as stored.
type record struct {
	IP string `json:"ip"`
}

func newIPAM(dir string, cidr *net.IPNet) *ipam {
	return &ipam{dir: dir, cidr: cidr}
}

func (a *ipam) podsDir() string { return filepath.Join(a.dir, "pods") }

func (a *ipam) path(id string) string { return filepath.Join(a.podsDir(), id+".json") }

// init makes the state directory and checks that what a previous run
// allocated still fits the pod CIDR.
func (a *ipam) init() error {
	if err := os.MkdirAll(a.podsDir(), 0o700); err != nil {
		return fmt.Errorf("ipam: %w", err)
	}
	ids, err := a.ids()
	if err != nil {
		return err
	}
	for _, id := range ids {
		ip, err := a.get(id)
		if err != nil {
			return err
		}
		if !a.cidr.Contains(ip) {
			return fmt.Errorf("ipam: pod %s has %s, outside pod CIDR %s: the node's range changed; reset the node", id, ip, a.cidr)
		}
	}
	return nil
}

// allocate returns id's address, allocating one if it has none; fresh says
// whether it did.
func (a *ipam) allocate(id string) (ip net.IP, fresh bool, err error) {
	err = a.locked(func() error {
		got, gerr := a.get(id)
		if gerr == nil || !errors.Is(gerr, os.ErrNotExist) {
			ip = got
			return gerr
		}
		used := map[uint32]bool{}
		ids, err := a.ids()
		if err != nil {
			return err
		}
		for _, other := range ids {
			ip, err := a.get(other)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			used[toUint(ip)] = true
		}
		base := toUint(a.cidr.IP)
		ones, _ := a.cidr.Mask.Size()
		size := uint32(1) << (32 - ones)
		// Offsets 0, 1 and size-1 are the network, the gateway and the broadcast.
		first, last := base+2, base+size-2
		next := first
		if prev, err := os.ReadFile(filepath.Join(a.dir, "last")); err == nil {
			if p := net.ParseIP(strings.TrimSpace(string(prev))); p != nil && a.cidr.Contains(p) {
				if u := toUint(p); u >= first && u < last {
					next = u + 1
				}
			}
		}
		for range last - first + 1 {
			if !used[next] {
				ip = fromUint(next)
				if err := writeFileAtomic(a.path(id), mustJSON(record{IP: ip.String()})); err != nil {
					return err
				}
				// Only a hint for the next allocation: losing it costs nothing.
				writeFileAtomic(filepath.Join(a.dir, "last"), []byte(ip.String()+"\n"))
				fresh = true
				return nil
			}
			if next++; next > last {
				next = first
			}
		}
		return fmt.Errorf("%w %s (%d in use)", ErrExhausted, a.cidr, len(used))
	})
	if err != nil {
		return nil, false, fmt.Errorf("ipam: allocate for %s: %w", id, err)
	}
	return ip, fresh, nil
}

// release frees id's address; releasing an unknown id is no error.
func (a *ipam) release(id string) error {
	return a.locked(func() error {
		if err := os.Remove(a.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("ipam: release %s: %w", id, err)
		}
		return nil
	})
}

// get reads id's address; the error wraps os.ErrNotExist when it has none.
// Records are replaced by rename, so reading needs no lock.
func (a *ipam) get(id string) (net.IP, error) {
	data, err := os.ReadFile(a.path(id))
	if err != nil {
		return nil, fmt.Errorf("ipam: pod %s: %w", id, err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("ipam: pod %s: %w", id, err)
	}
	ip := net.ParseIP(r.IP).To4()
	if ip == nil {
		return nil, fmt.Errorf("ipam: pod %s: bad address %q", id, r.IP)
	}
	return ip, nil
}

// ids lists the sandboxes that have an address.
func (a *ipam) ids() ([]string, error) {
	entries, err := os.ReadDir(a.podsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipam: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(id, ".") {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (a *ipam) locked(fn func() error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(a.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("ipam: lock: %w", err)
	}
	defer f.Close() // closing releases the flock
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("ipam: lock: %w", err)
	}
	return fn()
}

// writeFileAtomic replaces path with data so that a reader or a crash sees
// the old content or the new, never a part.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

func toUint(ip net.IP) uint32 { return binary.BigEndian.Uint32(ip.To4()) }

func fromUint(u uint32) net.IP {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, u)
	return ip
}

// nthAddr is the nth address of cidr.
func nthAddr(cidr *net.IPNet, n uint32) net.IP { return fromUint(toUint(cidr.IP) + n) }
