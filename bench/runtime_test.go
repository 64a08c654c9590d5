package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	skiffruntime "github.com/skiff-sh/skiff/internal/runtime"
)

// cycleBundle makes a bundle whose process is /bin/true in a busybox rootfs.
// ociVersion 1.0.2 because crun 1.8 refuses newer versions.
func cycleBundle(b *testing.B) string {
	dir := b.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		b.Fatal("needs busybox-static: ", err)
	}
	os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755)
	os.Symlink("busybox", filepath.Join(rootfs, "bin", "true"))
	spec := skiffruntime.DefaultSpec()
	spec.Version = "1.0.2"
	spec.Process.Terminal = false
	spec.Process.Args = []string{"/bin/true"}
	spec.Linux.CgroupsPath = "/skiff-bench/cycle"
	data, _ = json.Marshal(spec)
	os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644)
	return dir
}

func runtimeBinary(b *testing.B) string {
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(filepath.Dir(file), "..", "bin", "skiff-runtime")
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("%s missing: run make build first", bin)
	}
	return bin
}

// loopScript runs one runtime's `run` n times inside a single shell and
// prints the nanoseconds taken. crun runs in a private mount namespace where
// the hybrid cgroup2 mount looks empty, because crun 1.8 refuses this
// host's layout otherwise; the host is not touched.
const loopScript = `n=$1; shift
s=$(date +%s%N)
i=0; while [ $i -lt $n ]; do "$@" run -b "$BUNDLE" "c$i" >/dev/null 2>&1 || exit 1; i=$((i+1)); done
echo $(( $(date +%s%N) - s ))`

func timeCycles(b *testing.B, name, bundle string, n int) time.Duration {
	var cmd *exec.Cmd
	root := filepath.Join(b.TempDir(), name)
	switch name {
	case "skiff":
		cmd = exec.Command("sh", "-c", loopScript, "loop", fmt.Sprint(n), runtimeBinary(b), "--root", root)
	case "runc":
		cmd = exec.Command("sh", "-c", loopScript, "loop", fmt.Sprint(n), "runc", "--root", root)
	case "crun":
		empty := filepath.Join(b.TempDir(), "empty")
		os.WriteFile(empty, nil, 0o644)
		inner := fmt.Sprintf("mount --bind %s /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; exec sh -c '%s' loop %d crun --root %s", empty, loopScript, n, root)
		cmd = exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", inner)
	}
	cmd.Env = append(os.Environ(), "BUNDLE="+bundle)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%s: %v: %s", name, err, out)
	}
	var ns int64
	fmt.Sscan(strings.TrimSpace(string(out)), &ns)
	return time.Duration(ns / int64(n))
}

// BenchmarkContainerCycle compares create+start+wait+delete of /bin/true
// (each runtime's `run`) for skiff-runtime, runc and crun, interleaved in
// rounds so that all three see the same machine noise.
func BenchmarkContainerCycle(b *testing.B) {
	for _, bin := range []string{"runc", "crun", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Fatalf("%s not installed (apt-get install runc crun)", bin)
		}
	}
	bundle := cycleBundle(b)
	times := map[string][]time.Duration{}
	for range b.N {
		for _, name := range []string{"skiff", "runc", "crun"} {
			times[name] = append(times[name], timeCycles(b, name, bundle, 20))
		}
	}
	s, r, c := median(times["skiff"]), median(times["runc"]), median(times["crun"])
	b.ReportMetric(ms(s), "ms-skiff")
	b.ReportMetric(ms(r), "ms-runc")
	b.ReportMetric(ms(c), "ms-crun")
	b.ReportMetric(float64(s)/float64(r), "skiff/runc")
	b.ReportMetric(float64(s)/float64(c), "skiff/crun")
	b.ReportMetric(0, "ns/op")
	for _, p := range []string{"/sys/fs/cgroup/skiff-bench"} {
		os.Remove(p)
	}
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/skiff-bench")
	for _, p := range parents {
		os.Remove(p)
	}
}
