// Package cli is skiff-runtime's command line, compatible with runc's for
// the commands tools use: `skiff-runtime --root DIR create --bundle B
// [--pid-file F] ID`, start, state, kill, delete, run, spec and list.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/runtime"
)

// Main runs the command line and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("skiff-runtime", flag.ContinueOnError)
	global.SetOutput(stderr)
	root := global.String("root", runtime.DefaultRoot, "directory for container state")
	global.String("log", "", "log file (accepted for runc compatibility)")
	global.String("log-format", "text", "log format (accepted for runc compatibility)")
	global.Bool("debug", false, "debug output (accepted for runc compatibility)")
	global.Bool("systemd-cgroup", false, "accepted for runc compatibility; cgroupfs is used")
	if err := global.Parse(args); err != nil {
		return 2
	}
	rest := global.Args()
	if len(rest) == 0 {
		fmt.Fprintln(stderr, "usage: skiff-runtime [--root DIR] create|start|state|kill|delete|run|exec|ps|events|spec|list ...")
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	rt := &runtime.Runtime{Root: *root, Binary: filepath.Join(filepath.Dir(self), "skiff-init")}
	c := &command{rt: rt, stdout: stdout, stderr: stderr}
	run, ok := map[string]func([]string) error{
		"create": c.create, "start": c.start, "state": c.state, "kill": c.kill,
		"delete": c.delete, "run": c.run, "spec": c.spec, "list": c.list,
		"exec": c.exec, "ps": c.ps, "events": c.events, "stats": c.events,
	}[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "skiff-runtime: unknown command %q\n", rest[0])
		return 2
	}
	if err := run(rest[1:]); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			return int(ec)
		}
		fmt.Fprintf(stderr, "skiff-runtime %s: %v\n", rest[0], err)
		return 1
	}
	return 0
}

// exitCode passes the container's exit code through `run`.
type exitCode int

func (e exitCode) Error() string { return "exit code " + strconv.Itoa(int(e)) }

type command struct {
	rt     *runtime.Runtime
	stdout io.Writer
	stderr io.Writer
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// oneID parses flags and requires exactly one container id.
func oneID(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() != 1 {
		return "", fmt.Errorf("expected one container id, got %d arguments", fs.NArg())
	}
	return fs.Arg(0), nil
}

type createFlags struct {
	bundle, pidFile, consoleSocket *string
}

func addCreateFlags(fs *flag.FlagSet) createFlags {
	f := createFlags{bundle: fs.String("bundle", ".", "bundle directory"), pidFile: fs.String("pid-file", "", "file to write the pid to"),
		consoleSocket: fs.String("console-socket", "", "unix socket receiving the terminal's master fd")}
	fs.StringVar(f.bundle, "b", ".", "bundle directory")
	fs.Bool("no-pivot", false, "accepted for runc compatibility")
	fs.Bool("no-new-keyring", false, "accepted for runc compatibility")
	return f
}

func (c *command) create(args []string) error {
	fs := newFlags("create")
	f := addCreateFlags(fs)
	id, err := oneID(fs, args)
	if err != nil {
		return err
	}
	return c.rt.Create(context.Background(), id, *f.bundle, runtime.CreateOptions{PidFile: *f.pidFile,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ConsoleSocket: *f.consoleSocket})
}

func (c *command) start(args []string) error {
	id, err := oneID(newFlags("start"), args)
	if err != nil {
		return err
	}
	return c.rt.Start(id)
}

func (c *command) state(args []string) error {
	id, err := oneID(newFlags("state"), args)
	if err != nil {
		return err
	}
	st, err := c.rt.State(id)
	if err != nil {
		return err
	}
	data, _ := json.MarshalIndent(st, "", "  ")
	fmt.Fprintln(c.stdout, string(data))
	return nil
}

func (c *command) kill(args []string) error {
	fs := newFlags("kill")
	all := fs.Bool("all", false, "signal every process of the container")
	fs.BoolVar(all, "a", false, "signal every process of the container")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return errors.New("usage: kill [--all] ID [SIGNAL]")
	}
	sig := unix.SIGTERM
	if fs.NArg() == 2 {
		s, err := parseSignal(fs.Arg(1))
		if err != nil {
			return err
		}
		sig = s
	}
	return c.rt.Kill(fs.Arg(0), sig, *all)
}

func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func (c *command) delete(args []string) error {
	fs := newFlags("delete")
	force := fs.Bool("force", false, "kill a running container first")
	fs.BoolVar(force, "f", false, "kill a running container first")
	id, err := oneID(fs, args)
	if err != nil {
		return err
	}
	return c.rt.Delete(id, *force)
}

// run creates, starts and waits for a container, passing its exit code
// through, then deletes it (unless --detach).
func (c *command) run(args []string) error {
	fs := newFlags("run")
	f := addCreateFlags(fs)
	detach := fs.Bool("detach", false, "return after start")
	fs.BoolVar(detach, "d", false, "return after start")
	keep := fs.Bool("keep", false, "keep the container's state after it exits")
	id, err := oneID(fs, args)
	if err != nil {
		return err
	}
	ctx := context.Background()
	opts := runtime.CreateOptions{PidFile: *f.pidFile, ConsoleSocket: *f.consoleSocket,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if *detach {
		if err := c.rt.Create(ctx, id, *f.bundle, opts); err != nil {
			return err
		}
		if err := c.rt.Start(id); err != nil {
			c.rt.Delete(id, true)
			return err
		}
		return nil
	}
	stop := forwardSignals(c.rt, id)
	exit, err := c.rt.Run(ctx, id, *f.bundle, opts, *keep)
	stop()
	if err != nil {
		return err
	}
	if exit.Code != 0 {
		return exitCode(exit.Code)
	}
	return nil
}

// forwardSignals passes the signals a runtime is asked to stop with on to
// the container until stop is called. Setting up the handler starts a
// thread (0.3 ms), so it runs beside create; a signal that comes before
// the container exists waits for it. The handler stays until the process
// exits: taking it down (signal.Stop) waits for the signal loop to go idle.
func forwardSignals(rt *runtime.Runtime, id string) (stop func()) {
	done := make(chan struct{})
	go func() {
		sigs := make(chan os.Signal, 8)
		signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
		for {
			select {
			case s := <-sigs:
				for rt.Kill(id, s.(unix.Signal), false) != nil {
					select {
					case <-done:
						return
					case <-time.After(time.Millisecond):
					}
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

func (c *command) spec(args []string) error {
	fs := newFlags("spec")
	bundle := fs.String("bundle", ".", "bundle directory")
	fs.StringVar(bundle, "b", ".", "bundle directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	path := filepath.Join(*bundle, "config.json")
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s already exists; remove it first", path)
	}
	data, _ := json.MarshalIndent(runtime.DefaultSpec(), "", "\t")
	return os.WriteFile(path, data, 0o644)
}

func (c *command) list(args []string) error {
	fs := newFlags("list")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	quiet := fs.Bool("quiet", false, "ids only")
	fs.BoolVar(quiet, "q", false, "ids only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	states, err := c.rt.List()
	if err != nil {
		return err
	}
	switch {
	case *quiet:
		for _, s := range states {
			fmt.Fprintln(c.stdout, s.ID)
		}
	case *format == "json":
		if states == nil {
			states = []*runtime.State{}
		}
		data, _ := json.Marshal(states)
		fmt.Fprintln(c.stdout, string(data))
	default:
		w := tabwriter.NewWriter(c.stdout, 12, 1, 3, ' ', 0)
		fmt.Fprintln(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
		for _, s := range states {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\troot\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano))
		}
		w.Flush()
	}
	return nil
}
