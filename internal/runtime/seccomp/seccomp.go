// Package seccomp compiles an OCI runtime-spec seccomp filter to BPF. It
// runs in skiff-runtime, so that the processes behind each container only
// install the finished program and need not link the compiler (whose
// syscall tables take a quarter of a millisecond to initialise).
package seccomp

import (
	"fmt"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// action translates an OCI action; errno is the errnoRet to return.
func action(a specs.LinuxSeccompAction, errno *uint) (seccomp.Action, error) {
	e := uint(unix.EPERM)
	if errno != nil {
		e = *errno
	}
	switch a {
	case specs.ActAllow:
		return seccomp.ActionAllow, nil
	case specs.ActErrno:
		return seccomp.Action(uint32(seccomp.ActionErrno) | uint32(e&0xffff)), nil
	case specs.ActKill, specs.ActKillThread:
		return seccomp.ActionKillThread, nil
	case specs.ActKillProcess:
		return seccomp.ActionKillProcess, nil
	case specs.ActTrap:
		return seccomp.ActionTrap, nil
	case specs.ActLog:
		return seccomp.ActionLog, nil
	case specs.ActTrace:
		// No tracer is attached: behave as the kernel does, ENOSYS.
		return seccomp.Action(uint32(seccomp.ActionErrno) | uint32(unix.ENOSYS)), nil
	}
	return 0, fmt.Errorf("seccomp action %q is not supported", a)
}

var operators = map[specs.LinuxSeccompOperator]seccomp.Operation{
	specs.OpEqualTo: seccomp.Equal, specs.OpNotEqual: seccomp.NotEqual,
	specs.OpGreaterThan: seccomp.GreaterThan, specs.OpLessThan: seccomp.LessThan,
	specs.OpGreaterEqual: seccomp.GreaterOrEqual, specs.OpLessEqual: seccomp.LessOrEqual,
}

// Compile turns the spec's filter into a BPF program for this machine's
// architecture (nil when the spec has none). Calls made through another
// architecture's ABI fail with ENOSYS: the spec's architectures list is not
// honoured beyond the native one.
func Compile(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if s == nil {
		return nil, nil
	}
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	def, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	// The library accepts only plain actions as the default; an errno
	// default is patched in after assembly.
	placeholder := def
	if uint32(def)&unix.SECCOMP_RET_ACTION_FULL == uint32(seccomp.ActionErrno) {
		placeholder = seccomp.ActionErrno
	}
	policy := seccomp.Policy{DefaultAction: placeholder}
	for _, rule := range s.Syscalls {
		act, err := action(rule.Action, rule.ErrnoRet)
		if err != nil {
			return nil, err
		}
		g := seccomp.SyscallGroup{Action: act}
		for _, name := range rule.Names {
			// Syscalls this architecture lacks are skipped, as runc does.
			if _, ok := info.SyscallNames[name]; !ok {
				continue
			}
			if len(rule.Args) == 0 {
				g.Names = append(g.Names, name)
				continue
			}
			var conds seccomp.ArgumentConditions
			for _, a := range rule.Args {
				if a.Op == specs.OpMaskedEqual {
					// (arg & value) == valueTwo; with valueTwo 0 that is
					// "none of the mask's bits set" (Docker's clone rule).
					if a.ValueTwo != 0 {
						return nil, fmt.Errorf("seccomp SCMP_CMP_MASKED_EQ with a non-zero value is not supported")
					}
					conds = append(conds, seccomp.Condition{Argument: uint32(a.Index), Operation: seccomp.BitsNotSet, Value: a.Value})
					continue
				}
				op, ok := operators[a.Op]
				if !ok {
					return nil, fmt.Errorf("seccomp operator %q is not supported", a.Op)
				}
				conds = append(conds, seccomp.Condition{Argument: uint32(a.Index), Operation: op, Value: a.Value})
			}
			g.NamesWithCondtions = append(g.NamesWithCondtions, seccomp.NameWithConditions{Name: name, Conditions: conds})
		}
		if len(g.Names)+len(g.NamesWithCondtions) > 0 {
			policy.Syscalls = append(policy.Syscalls, g)
		}
	}
	if len(policy.Syscalls) == 0 {
		// Nothing but the default: a group that never matches keeps the
		// library's validation happy.
		policy.Syscalls = []seccomp.SyscallGroup{{Names: []string{"getpid"}, Action: def}}
	}
	insts, err := policy.Assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	if placeholder != def {
		for i, in := range insts {
			if r, ok := in.(bpf.RetConstant); ok && r.Val == uint32(placeholder) {
				insts[i] = bpf.RetConstant{Val: uint32(def)}
			}
		}
	}
	// Calls from another architecture's ABI (32-bit int 0x80 on x86_64)
	// would otherwise take the default action and skip every rule: they
	// fail with ENOSYS instead.
	insts = append([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4}, // seccomp_data.arch
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: uint32(seccomp.ActionErrno) | uint32(unix.ENOSYS)},
	}, insts...)
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
