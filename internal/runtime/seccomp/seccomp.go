// Package seccomp compiles an OCI runtime-spec seccomp filter to BPF. It
// runs in skiff-runtime, so that the processes behind each container only
// install the finished program and need not link the compiler. Its
// syscall tables (ztable_*_gen.go, generated) are sorted arrays that
// cost nothing at start-up.
//
// The program checks the architecture of the call and goes to that
// architecture's block: the machine's own, and the one that runs beside it
// (i386 on x86_64, arm on arm64) when the spec lists it; calls through any
// other ABI, x32 included, fail with ENOSYS. A block tries the spec's rules
// in order, one check per syscall of a rule: the first rule whose syscall
// and argument conditions (all of them) match decides; otherwise the
// default action does. Every check that follows one which loaded an
// argument loads the syscall number again, so a condition that fails can
// never leave a stray value for the next block to compare.
package seccomp

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// action translates an OCI action to a seccomp return value; errno is the
// errnoRet to return.
func action(a specs.LinuxSeccompAction, errno *uint) (uint32, error) {
	e := uint32(unix.EPERM)
	if errno != nil {
		e = uint32(*errno)
	}
	switch a {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | e&unix.SECCOMP_RET_DATA, nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActTrace:
		// No tracer is attached: behave as the kernel does, ENOSYS.
		return unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS), nil
	}
	return 0, fmt.Errorf("seccomp action %q is not supported", a)
}

// Compile turns the spec's filter into a BPF program (nil when the spec
// has none) for this machine's architecture and, when the spec lists it,
// the one that runs beside it (i386 on x86_64, arm on arm64), each with
// its own syscall numbers. Calls through any other ABI (x32 included)
// fail with ENOSYS.
func Compile(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if s == nil {
		return nil, nil
	}
	arches := filterArches(s.Architectures)
	if len(arches) == 0 {
		return nil, errors.New("seccomp: filters are not supported on this architecture yet")
	}
	def, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	enosys := unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	var p program
	p.emit(bpf.LoadAbsolute{Off: offArch, Size: 4})
	// Each architecture's block follows the check that leads to it; the
	// next check comes after the block.
	for n, a := range arches {
		next := "foreign"
		if n+1 < len(arches) {
			next = fmt.Sprintf("arch-%d", n+1)
		}
		p.far(next)
		p.jump(bpf.JumpEqual, a.audit, "", next)
		if err := p.rules(s, a, n, def); err != nil {
			return nil, err
		}
		if n+1 < len(arches) {
			p.label(next)
		}
	}
	p.label("foreign")
	p.emit(bpf.RetConstant{Val: enosys})
	insts, err := p.resolve()
	if err != nil {
		return nil, err
	}
	if len(insts) > 4096 {
		return nil, fmt.Errorf("seccomp filter of %d instructions is longer than the kernel's 4096", len(insts))
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return filter, nil
}

// rules emits one architecture's block (n numbers its labels): the
// spec's rules in order with that architecture's syscall numbers, then
// the default action.
func (p *program) rules(s *specs.LinuxSeccomp, a archTable, n int, def uint32) error {
	p.emit(bpf.LoadAbsolute{Off: offNr, Size: 4})
	if a.audit == unix.AUDIT_ARCH_X86_64 {
		// x32 calls carry bit 30 in their number.
		p.jump(bpf.JumpGreaterOrEqual, x32Bit, "foreign", "")
	}
	nrLoaded := true
	for i, rule := range s.Syscalls {
		act, err := action(rule.Action, rule.ErrnoRet)
		if err != nil {
			return err
		}
		for j, name := range rule.Names {
			nr, ok := a.nr(name)
			if !ok {
				continue // a syscall this architecture lacks is skipped, as runc does
			}
			next := fmt.Sprintf("next-%d-%d-%d", n, i, j)
			if !nrLoaded {
				p.emit(bpf.LoadAbsolute{Off: offNr, Size: 4})
				nrLoaded = true
			}
			p.jump(bpf.JumpEqual, nr, "", next)
			for _, arg := range rule.Args {
				if err := p.condition(arg, next); err != nil {
					return err
				}
				nrLoaded = false
			}
			p.emit(bpf.RetConstant{Val: act})
			p.label(next)
		}
	}
	p.emit(bpf.RetConstant{Val: def})
	return nil
}

// condition emits the check of one argument, falling through when it
// holds and jumping to fail when not. A 64-bit argument is compared as its
// high then its low half (little-endian seccomp_data).
func (p *program) condition(a specs.LinuxSeccompArg, fail string) error {
	if a.Index > 5 {
		return fmt.Errorf("seccomp argument index %d is out of range", a.Index)
	}
	lo := uint32(offArgs + 8*a.Index)
	hi := lo + 4
	vHi, vLo := uint32(a.Value>>32), uint32(a.Value)
	pass := p.newLabel()
	loadHi := func() { p.emit(bpf.LoadAbsolute{Off: hi, Size: 4}) }
	loadLo := func() { p.emit(bpf.LoadAbsolute{Off: lo, Size: 4}) }
	switch a.Op {
	case specs.OpEqualTo:
		loadHi()
		p.jump(bpf.JumpEqual, vHi, "", fail)
		loadLo()
		p.jump(bpf.JumpEqual, vLo, "", fail)
	case specs.OpNotEqual:
		loadHi()
		p.jump(bpf.JumpEqual, vHi, "", pass)
		loadLo()
		p.jump(bpf.JumpEqual, vLo, fail, "")
	case specs.OpMaskedEqual:
		// (arg & value) == valueTwo
		mHi, mLo := uint32(a.Value>>32), uint32(a.Value)
		wHi, wLo := uint32(a.ValueTwo>>32), uint32(a.ValueTwo)
		loadHi()
		p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mHi})
		p.jump(bpf.JumpEqual, wHi, "", fail)
		loadLo()
		p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mLo})
		p.jump(bpf.JumpEqual, wLo, "", fail)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		loadHi()
		p.jump(bpf.JumpGreaterThan, vHi, pass, "")
		p.jump(bpf.JumpEqual, vHi, "", fail)
		loadLo()
		cond := bpf.JumpGreaterThan
		if a.Op == specs.OpGreaterEqual {
			cond = bpf.JumpGreaterOrEqual
		}
		p.jump(cond, vLo, "", fail)
	case specs.OpLessThan, specs.OpLessEqual:
		loadHi()
		p.jump(bpf.JumpGreaterThan, vHi, fail, "")
		p.jump(bpf.JumpEqual, vHi, "", pass)
		loadLo()
		cond := bpf.JumpGreaterOrEqual // lo < v fails when lo >= v
		if a.Op == specs.OpLessEqual {
			cond = bpf.JumpGreaterThan
		}
		p.jump(cond, vLo, fail, "")
	default:
		return fmt.Errorf("seccomp operator %q is not supported", a.Op)
	}
	p.label(pass)
	return nil
}

// program is a BPF program with labelled forward jumps.
type program struct {
	insts  []instruction
	labels map[string]int
	n      int
	// farLabels may be too far for a conditional jump's 8-bit skip: a
	// jump to one goes through an unconditional jump right after it.
	farLabels map[string]bool
}

func (p *program) far(label string) {
	if p.farLabels == nil {
		p.farLabels = map[string]bool{}
	}
	p.farLabels[label] = true
}

type instruction struct {
	in          bpf.Instruction
	cond        bpf.JumpTest
	val         uint32
	onTrue      string // "" falls through
	onFalse     string
	conditional bool
}

func (p *program) emit(in bpf.Instruction) { p.insts = append(p.insts, instruction{in: in}) }

func (p *program) jump(cond bpf.JumpTest, val uint32, onTrue, onFalse string) {
	p.insts = append(p.insts, instruction{cond: cond, val: val, onTrue: onTrue, onFalse: onFalse, conditional: true})
}

func (p *program) newLabel() string {
	p.n++
	return fmt.Sprintf("l%d", p.n)
}

func (p *program) label(name string) {
	if p.labels == nil {
		p.labels = map[string]int{}
	}
	p.labels[name] = len(p.insts)
}

// resolve turns the labels into skips; a jump to a far label goes through
// a trampoline, an unconditional jump, right after it.
func (p *program) resolve() ([]bpf.Instruction, error) {
	farSide := func(in instruction) string {
		switch {
		case !in.conditional:
			return ""
		case p.farLabels[in.onTrue]:
			return in.onTrue
		case p.farLabels[in.onFalse]:
			return in.onFalse
		}
		return ""
	}
	var out []bpf.Instruction
	pos := make([]int, len(p.insts)+1) // instruction index → output index
	// First pass: lay out, counting trampolines.
	for i, in := range p.insts {
		pos[i] = len(out)
		out = append(out, nil)
		if farSide(in) != "" {
			out = append(out, nil) // room for the trampoline
		}
	}
	pos[len(p.insts)] = len(out)
	target := func(name string, from int) (int, error) {
		idx, ok := p.labels[name]
		if !ok {
			return 0, fmt.Errorf("seccomp: unknown label %s", name)
		}
		return pos[idx] - from - 1, nil
	}
	for i, in := range p.insts {
		at := pos[i]
		if !in.conditional {
			out[at] = in.in
			continue
		}
		far := farSide(in)
		skip := func(name string) (uint8, error) {
			if name == "" || name == far {
				return 0, nil // falls through, or goes by the trampoline
			}
			d, err := target(name, at)
			if err != nil {
				return 0, err
			}
			if far != "" {
				d-- // the trampoline sits in between
			}
			if d < 0 || d > 255 {
				return 0, fmt.Errorf("seccomp: jump of %d instructions (to %s from %d)", d, name, at)
			}
			return uint8(d), nil
		}
		t, err := skip(in.onTrue)
		if err != nil {
			return nil, err
		}
		f, err := skip(in.onFalse)
		if err != nil {
			return nil, err
		}
		if far != "" {
			// The trampoline follows: the far side goes to it (skip 0),
			// the other side skips over it.
			if in.onTrue == far {
				t, f = 0, f+1
			} else {
				f, t = 0, t+1
			}
			d, err := target(far, at+1)
			if err != nil {
				return nil, err
			}
			out[at+1] = bpf.Jump{Skip: uint32(d)}
		}
		out[at] = bpf.JumpIf{Cond: in.cond, Val: in.val, SkipTrue: t, SkipFalse: f}
	}
	return out, nil
}
