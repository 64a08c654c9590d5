package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-sh/skiff/internal/runtime"
)

// binary is skiff-runtime, built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "skiff-runtime-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "skiff-runtime")
	_, file, _, _ := goruntime.Caller(0)
	// skiff-runtime finds skiff-init beside itself.
	for _, name := range []string{"skiff-runtime", "skiff-init"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", name, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	// The tests' cgroups are gone; remove their common parent too.
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/skiff-test")
	parents = append(parents, "/sys/fs/cgroup/skiff-test")
	for _, p := range parents {
		os.Remove(p)
	}
	os.Exit(code)
}

// requireRoot skips tests that need root; CI runs as root, so they run there.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, cgroups and mounts); CI runs as root, so it runs there")
	}
}

// env is one test's runtime root and bundles.
type env struct {
	t    *testing.T
	root string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	requireRoot(t)
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatal("busybox-static is required (make deps installs it)")
	}
	e := &env{t: t, root: t.TempDir()}
	t.Cleanup(func() {
		// Whatever a test left running goes, with its cgroup.
		out, _ := exec.Command(binary, "--root", e.root, "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			exec.Command(binary, "--root", e.root, "delete", "--force", id).Run()
		}
	})
	return e
}

// bundle makes a bundle with a busybox rootfs and the default spec, which
// edit may change.
func (e *env) bundle(edit func(*specs.Spec)) string {
	e.t.Helper()
	dir := e.t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755); err != nil {
		e.t.Fatal(err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, applet := range strings.Fields(string(out)) {
		os.Symlink("busybox", filepath.Join(rootfs, "bin", applet))
	}
	os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"), 0o644)
	spec := runtime.DefaultSpec()
	spec.Process.Terminal = false
	spec.Root.Readonly = false
	// Each test gets its own cgroup.
	spec.Linux.CgroupsPath = fmt.Sprintf("/skiff-test/%s-%d", strings.ReplaceAll(e.t.Name(), "/", "-"), time.Now().UnixNano())
	if edit != nil {
		edit(spec)
	}
	data, _ = json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs skiff-runtime with args.
func (e *env) run(args ...string) result {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{"--root", e.root}, args...)...)
	// Files, not pipes: a created container keeps its stdio open, and a
	// pipe would make Run wait for the container to end.
	dir := e.t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		e.t.Fatal(err)
	}
	errf, _ := os.Create(filepath.Join(dir, "stderr"))
	cmd.Stdout, cmd.Stderr = out, errf
	err = cmd.Run()
	out.Close()
	errf.Close()
	stdout, _ := os.ReadFile(out.Name())
	stderr, _ := os.ReadFile(errf.Name())
	r := result{stdout: string(stdout), stderr: string(stderr)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("skiff-runtime %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// sh returns a spec edit that runs a shell script as the process.
func sh(script string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", script} }
}

func (e *env) state(id string) runtime.State {
	e.t.Helper()
	var st runtime.State
	if err := json.Unmarshal([]byte(e.must("state", id)), &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) waitStatus(id, status string) runtime.State {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := e.state(id)
		if string(st.Status) == status {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s is %s, want %s", id, st.Status, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
