package nsinit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The runtime hands Config and ExecConfig to an init in a compact binary
// form rather than JSON. The init is a fresh process each time, and
// encoding/json spends about 0.6 ms of reflection on its first decode into
// the spec's types: a tenth of a whole container start. Only the parts of
// the spec an init uses travel (see encodeSpec); the rest stays with the
// runtime.
//
// The encoding is a magic byte naming the message, then the fields in a
// fixed order: unsigned and signed integers as varints, booleans as one
// byte, strings and lists as a length then their contents, optional values
// behind a presence byte.

const (
	wireConfig     byte = 0xC1
	wireExecConfig byte = 0xE1
	wireShimConfig byte = 0x51
)

// EncodeShimConfig encodes a shim's configuration.
func EncodeShimConfig(c *ShimConfig) []byte {
	var w wireWriter
	w.byte(wireShimConfig)
	w.string(c.StateDir)
	w.uint(uint64(c.Cloneflags))
	w.string(c.MemoryCgroup)
	w.bool(c.CgroupV2)
	w.string(c.PidNamespace)
	w.string(c.CloneIntoCgroup)
	w.string(c.LogPath)
	w.bool(c.Terminal)
	w.bool(c.OpenStdin)
	w.bool(c.StdinOnce)
	return w.b
}

// DecodeShimConfig decodes what EncodeShimConfig made.
func DecodeShimConfig(data []byte) (*ShimConfig, error) {
	r := wireReader{b: data}
	if r.byte() != wireShimConfig {
		return nil, errors.New("not a shim configuration (a skiff-init of another version?)")
	}
	c := &ShimConfig{StateDir: r.string(), Cloneflags: uintptr(r.uint()), MemoryCgroup: r.string(), CgroupV2: r.bool(),
		PidNamespace: r.string(), CloneIntoCgroup: r.string(), LogPath: r.string(), Terminal: r.bool(),
		OpenStdin: r.bool(), StdinOnce: r.bool()}
	return c, r.finish()
}

// EncodeConfig encodes a container init's configuration.
func EncodeConfig(c *Config) []byte {
	var w wireWriter
	w.byte(wireConfig)
	w.string(c.Rootfs)
	w.string(c.ExecFIFO)
	w.string(c.ConsoleSocket)
	w.int(int64(c.ConsoleFD))
	w.stringMap(c.CgroupPaths)
	w.filter(c.Seccomp)
	w.spec(c.Spec)
	return w.b
}

// DecodeConfig decodes what EncodeConfig made.
func DecodeConfig(data []byte) (*Config, error) {
	r := wireReader{b: data}
	if r.byte() != wireConfig {
		return nil, errors.New("not a container init configuration (a skiff-init of another version?)")
	}
	c := &Config{Rootfs: r.string(), ExecFIFO: r.string(), ConsoleSocket: r.string(), ConsoleFD: int(r.int()),
		CgroupPaths: r.stringMap(), Seccomp: r.filter(), Spec: r.spec()}
	return c, r.finish()
}

// EncodeExecConfig encodes the configuration of an exec'd process's init.
func EncodeExecConfig(c *ExecConfig) []byte {
	var w wireWriter
	w.byte(wireExecConfig)
	w.int(int64(c.ContainerPid))
	w.int(int64(c.ConsoleFD))
	w.filter(c.Seccomp)
	w.present(c.Process != nil)
	if c.Process != nil {
		w.process(c.Process)
	}
	return w.b
}

// DecodeExecConfig decodes what EncodeExecConfig made.
func DecodeExecConfig(data []byte) (*ExecConfig, error) {
	r := wireReader{b: data}
	if r.byte() != wireExecConfig {
		return nil, errors.New("not an exec configuration (a skiff-init of another version?)")
	}
	c := &ExecConfig{ContainerPid: int(r.int()), ConsoleFD: int(r.int()), Seccomp: r.filter()}
	if r.present() {
		c.Process = r.process()
	}
	return c, r.finish()
}

type wireWriter struct{ b []byte }

func (w *wireWriter) byte(v byte)     { w.b = append(w.b, v) }
func (w *wireWriter) uint(v uint64)   { w.b = binary.AppendUvarint(w.b, v) }
func (w *wireWriter) int(v int64)     { w.b = binary.AppendVarint(w.b, v) }
func (w *wireWriter) present(ok bool) { w.bool(ok) }

func (w *wireWriter) bool(v bool) {
	if v {
		w.byte(1)
	} else {
		w.byte(0)
	}
}

func (w *wireWriter) string(s string) {
	w.uint(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *wireWriter) strings(ss []string) {
	w.uint(uint64(len(ss)))
	for _, s := range ss {
		w.string(s)
	}
}

func (w *wireWriter) stringMap(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the same input encodes the same
	w.uint(uint64(len(keys)))
	for _, k := range keys {
		w.string(k)
		w.string(m[k])
	}
}

func (w *wireWriter) filter(f []unix.SockFilter) {
	w.present(f != nil)
	w.uint(uint64(len(f)))
	for _, ins := range f {
		w.uint(uint64(ins.Code))
		w.uint(uint64(ins.Jt))
		w.uint(uint64(ins.Jf))
		w.uint(uint64(ins.K))
	}
}

// optUint writes an optional unsigned value.
func optUint[T ~uint32 | ~uint64](w *wireWriter, v *T) {
	w.present(v != nil)
	if v != nil {
		w.uint(uint64(*v))
	}
}

// spec writes the parts of the spec an init uses.
func (w *wireWriter) spec(s *specs.Spec) {
	w.present(s != nil)
	if s == nil {
		return
	}
	w.string(s.Hostname)
	w.string(s.Domainname)
	w.present(s.Root != nil)
	if s.Root != nil {
		w.string(s.Root.Path)
		w.bool(s.Root.Readonly)
	}
	w.present(s.Process != nil)
	if s.Process != nil {
		w.process(s.Process)
	}
	w.uint(uint64(len(s.Mounts)))
	for _, m := range s.Mounts {
		w.string(m.Destination)
		w.string(m.Type)
		w.string(m.Source)
		w.strings(m.Options)
	}
	w.present(s.Linux != nil)
	if l := s.Linux; l != nil {
		w.uint(uint64(len(l.Namespaces)))
		for _, ns := range l.Namespaces {
			w.string(string(ns.Type))
			w.string(ns.Path)
		}
		w.stringMap(l.Sysctl)
		w.strings(l.MaskedPaths)
		w.strings(l.ReadonlyPaths)
		w.string(l.RootfsPropagation)
		w.uint(uint64(len(l.Devices)))
		for _, d := range l.Devices {
			w.string(d.Path)
			w.string(d.Type)
			w.int(d.Major)
			w.int(d.Minor)
			w.present(d.FileMode != nil)
			if d.FileMode != nil {
				w.uint(uint64(*d.FileMode))
			}
			optUint(w, d.UID)
			optUint(w, d.GID)
		}
	}
}

func (w *wireWriter) process(p *specs.Process) {
	w.bool(p.Terminal)
	w.uint(uint64(p.User.UID))
	w.uint(uint64(p.User.GID))
	optUint(w, p.User.Umask)
	w.uint(uint64(len(p.User.AdditionalGids)))
	for _, g := range p.User.AdditionalGids {
		w.uint(uint64(g))
	}
	w.strings(p.Args)
	w.strings(p.Env)
	w.string(p.Cwd)
	w.present(p.Capabilities != nil)
	if c := p.Capabilities; c != nil {
		for _, set := range [][]string{c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient} {
			w.strings(set)
		}
	}
	w.uint(uint64(len(p.Rlimits)))
	for _, rl := range p.Rlimits {
		w.string(rl.Type)
		w.uint(rl.Hard)
		w.uint(rl.Soft)
	}
	w.bool(p.NoNewPrivileges)
	w.present(p.OOMScoreAdj != nil)
	if p.OOMScoreAdj != nil {
		w.int(int64(*p.OOMScoreAdj))
	}
}

// wireReader reads what wireWriter wrote. The first error sticks: later
// reads return zero values, and finish reports it.
type wireReader struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (r *wireReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *wireReader) finish() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes left over", len(r.b))
	}
	if r.err != nil {
		return fmt.Errorf("decode configuration: %w", r.err)
	}
	return nil
}

func (r *wireReader) byte() byte {
	if len(r.b) == 0 {
		r.fail(errTruncated)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *wireReader) bool() bool {
	switch r.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail(errors.New("bad boolean"))
	return false
}

func (r *wireReader) present() bool { return r.bool() }

func (r *wireReader) uint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) int() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) uint32() uint32 {
	v := r.uint()
	if v > 1<<32-1 {
		r.fail(errors.New("value out of range"))
	}
	return uint32(v)
}

// count reads a length, which each element of at least min bytes must fit
// in what is left: garbage cannot make a huge allocation.
func (r *wireReader) count(min int) int {
	n := r.uint()
	if n > uint64(len(r.b)/min) {
		r.fail(errTruncated)
		return 0
	}
	return int(n)
}

func (r *wireReader) string() string {
	n := r.count(1)
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *wireReader) strings() []string {
	n := r.count(1)
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.string()
	}
	return ss
}

func (r *wireReader) stringMap() map[string]string {
	n := r.count(2)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := r.string()
		m[k] = r.string()
	}
	return m
}

func (r *wireReader) filter() []unix.SockFilter {
	if !r.present() {
		r.uint() // the length, 0
		return nil
	}
	n := r.count(4)
	f := make([]unix.SockFilter, n)
	for i := range f {
		code, jt, jf, k := r.uint(), r.uint(), r.uint(), r.uint32()
		if code > 0xffff || jt > 0xff || jf > 0xff {
			r.fail(errors.New("bad BPF instruction"))
		}
		f[i] = unix.SockFilter{Code: uint16(code), Jt: uint8(jt), Jf: uint8(jf), K: k}
	}
	return f
}

func optUint32(r *wireReader) *uint32 {
	if !r.present() {
		return nil
	}
	v := r.uint32()
	return &v
}

func (r *wireReader) spec() *specs.Spec {
	if !r.present() {
		return nil
	}
	s := &specs.Spec{Hostname: r.string(), Domainname: r.string()}
	if r.present() {
		s.Root = &specs.Root{Path: r.string(), Readonly: r.bool()}
	}
	if r.present() {
		s.Process = r.process()
	}
	if n := r.count(4); n > 0 {
		s.Mounts = make([]specs.Mount, n)
		for i := range s.Mounts {
			s.Mounts[i] = specs.Mount{Destination: r.string(), Type: r.string(), Source: r.string(), Options: r.strings()}
		}
	}
	if !r.present() {
		return s
	}
	l := &specs.Linux{}
	s.Linux = l
	if n := r.count(2); n > 0 {
		l.Namespaces = make([]specs.LinuxNamespace, n)
		for i := range l.Namespaces {
			l.Namespaces[i] = specs.LinuxNamespace{Type: specs.LinuxNamespaceType(r.string()), Path: r.string()}
		}
	}
	l.Sysctl = r.stringMap()
	l.MaskedPaths = r.strings()
	l.ReadonlyPaths = r.strings()
	l.RootfsPropagation = r.string()
	if n := r.count(7); n > 0 {
		l.Devices = make([]specs.LinuxDevice, n)
		for i := range l.Devices {
			d := specs.LinuxDevice{Path: r.string(), Type: r.string(), Major: r.int(), Minor: r.int()}
			if r.present() {
				mode := os.FileMode(r.uint32())
				d.FileMode = &mode
			}
			d.UID, d.GID = optUint32(r), optUint32(r)
			l.Devices[i] = d
		}
	}
	return s
}

func (r *wireReader) process() *specs.Process {
	p := &specs.Process{Terminal: r.bool()}
	p.User.UID, p.User.GID = r.uint32(), r.uint32()
	p.User.Umask = optUint32(r)
	if n := r.count(1); n > 0 {
		p.User.AdditionalGids = make([]uint32, n)
		for i := range p.User.AdditionalGids {
			p.User.AdditionalGids[i] = r.uint32()
		}
	}
	p.Args, p.Env, p.Cwd = r.strings(), r.strings(), r.string()
	if r.present() {
		p.Capabilities = &specs.LinuxCapabilities{Bounding: r.strings(), Effective: r.strings(),
			Inheritable: r.strings(), Permitted: r.strings(), Ambient: r.strings()}
	}
	if n := r.count(3); n > 0 {
		p.Rlimits = make([]specs.POSIXRlimit, n)
		for i := range p.Rlimits {
			p.Rlimits[i] = specs.POSIXRlimit{Type: r.string(), Hard: r.uint(), Soft: r.uint()}
		}
	}
	p.NoNewPrivileges = r.bool()
	if r.present() {
		v := int(r.int())
		p.OOMScoreAdj = &v
	}
	return p
}
