package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/skiff-sh/skiff/internal/runtime"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// exec runs a new process in a running container, as `runc exec` does:
// either from --process FILE or from the arguments after the id.
func (c *command) exec(args []string) error {
	fs := newFlags("exec")
	procFile := fs.String("process", "", "process.json with the process's settings")
	fs.StringVar(procFile, "p", "", "process.json with the process's settings")
	tty := fs.Bool("tty", false, "allocate a terminal")
	fs.BoolVar(tty, "t", false, "allocate a terminal")
	detach := fs.Bool("detach", false, "do not wait for the process")
	fs.BoolVar(detach, "d", false, "do not wait for the process")
	pidFile := fs.String("pid-file", "", "file to write the process's pid to")
	cwd := fs.String("cwd", "", "working directory")
	user := fs.String("user", "", "uid[:gid]")
	fs.StringVar(user, "u", "", "uid[:gid]")
	var env, caps stringList
	fs.Var(&env, "env", "KEY=VALUE (repeatable)")
	fs.Var(&env, "e", "KEY=VALUE (repeatable)")
	fs.Var(&caps, "cap", "capability to add (repeatable)")
	noNewPrivs := fs.Bool("no-new-privs", false, "set no_new_privs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return errors.New("usage: exec [flags] ID [COMMAND [ARG...]]")
	}
	id := fs.Arg(0)
	proc, err := c.execProcess(id, *procFile, fs.Args()[1:])
	if err != nil {
		return err
	}
	if *tty {
		proc.Terminal = true
	}
	if *cwd != "" {
		proc.Cwd = *cwd
	}
	proc.Env = append(proc.Env, env...)
	if *user != "" {
		uid, gid, _ := strings.Cut(*user, ":")
		u, err := strconv.ParseUint(uid, 10, 32)
		if err != nil {
			return fmt.Errorf("--user %q: %w", *user, err)
		}
		proc.User.UID = uint32(u)
		if gid != "" {
			g, err := strconv.ParseUint(gid, 10, 32)
			if err != nil {
				return fmt.Errorf("--user %q: %w", *user, err)
			}
			proc.User.GID = uint32(g)
		}
	}
	if len(caps) > 0 && proc.Capabilities != nil {
		pc := proc.Capabilities
		pc.Bounding = append(pc.Bounding, caps...)
		pc.Effective = append(pc.Effective, caps...)
		pc.Permitted = append(pc.Permitted, caps...)
	}
	if *noNewPrivs {
		proc.NoNewPrivileges = true
	}
	opts := runtime.ExecOptions{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Detach: *detach, PidFile: *pidFile}
	var wg sync.WaitGroup
	if proc.Terminal {
		opts.Stdin, opts.Stdout, opts.Stderr = nil, nil, nil
		opts.Console = func(master *os.File) { wg.Add(1); go func() { defer wg.Done(); proxyTerminal(master) }() }
	}
	code, err := c.rt.Exec(context.Background(), id, proc, opts)
	if err != nil {
		return err
	}
	wg.Wait()
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

// execProcess builds the process from a process.json, or from the
// container's own process settings with new arguments.
func (c *command) execProcess(id, file string, args []string) (*specs.Process, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var p specs.Process
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return &p, nil
	}
	if len(args) == 0 {
		return nil, errors.New("exec needs a command or --process")
	}
	st, err := c.rt.State(id)
	if err != nil {
		return nil, err
	}
	spec, err := runtime.LoadSpec(st.Bundle)
	if err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Args = args
	p.Terminal = false
	return &p, nil
}

// proxyTerminal copies between our stdio and the process's terminal, with
// our terminal raw and its size passed on, until the process closes it.
func proxyTerminal(master *os.File) {
	defer master.Close()
	in := int(os.Stdin.Fd())
	if term.IsTerminal(in) {
		if old, err := term.MakeRaw(in); err == nil {
			defer term.Restore(in, old)
		}
		resize := func() {
			if ws, err := unix.IoctlGetWinsize(in, unix.TIOCGWINSZ); err == nil {
				unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
			}
		}
		resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				resize()
			}
		}()
	}
	go io.Copy(master, os.Stdin)
	// Reading the master ends with EIO once the process side is closed.
	io.Copy(os.Stdout, master)
}

func (c *command) ps(args []string) error {
	fs := newFlags("ps")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	id, err := oneID(fs, args)
	if err != nil {
		return err
	}
	pids, err := c.rt.Processes(id)
	if err != nil {
		return err
	}
	if *format == "json" {
		if pids == nil {
			pids = []int{}
		}
		data, _ := json.Marshal(pids)
		fmt.Fprintln(c.stdout, string(data))
		return nil
	}
	fmt.Fprintln(c.stdout, "PID\tCMD")
	for _, p := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		fmt.Fprintf(c.stdout, "%d\t%s\n", p, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return nil
}

// events prints the container's statistics once (--stats), as runc does.
func (c *command) events(args []string) error {
	fs := newFlags("events")
	fs.Bool("stats", false, "print statistics once")
	id, err := oneID(fs, args)
	if err != nil {
		return err
	}
	st, err := c.rt.Stats(id)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(map[string]any{"type": "stats", "id": id, "data": st})
	fmt.Fprintln(c.stdout, string(data))
	return nil
}
