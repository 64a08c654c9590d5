package runtime_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSpecWritesADefaultConfigOnce(t *testing.T) {
	dir := t.TempDir()
	run := func() ([]byte, error) {
		cmd := exec.Command(binary, "spec", "--bundle", dir)
		return cmd.CombinedOutput()
	}
	if out, err := run(); err != nil {
		t.Fatalf("spec: %v %s", err, out)
	}
	var spec specs.Spec
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(data, &spec); err != nil || spec.Process == nil || spec.Root.Path != "rootfs" || len(spec.Linux.Namespaces) < 5 {
		t.Fatalf("default spec: %v %+v", err, spec)
	}
	if out, err := run(); err == nil || !strings.Contains(string(out), "already exists") {
		t.Errorf("a second spec overwrote config.json: %s", out)
	}
}

func TestListKillAllAndStats(t *testing.T) {
	e := newEnv(t)
	e.must("create", "-b", e.bundle(sh("sleep 100 & sleep 100 & sleep 100")), "many")
	e.must("start", "many")
	e.waitStatus("many", "running")
	time.Sleep(100 * time.Millisecond)
	var list []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(e.must("list", "--format", "json")), &list); err != nil || len(list) != 1 || list[0].ID != "many" || list[0].Status != "running" {
		t.Fatalf("list: %+v %v", list, err)
	}
	var ev struct {
		Type string `json:"type"`
		Data struct {
			Pids        uint64 `json:"pids"`
			MemoryUsage uint64 `json:"memoryUsageBytes"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(e.must("events", "--stats", "many")), &ev); err != nil || ev.Type != "stats" || ev.Data.Pids < 3 || ev.Data.MemoryUsage == 0 {
		t.Errorf("events --stats: %+v %v", ev, err)
	}
	e.must("kill", "--all", "many", "KILL")
	st := e.waitStatus("many", "stopped")
	var pids []int
	json.Unmarshal([]byte(e.must("ps", "--format", "json", "many")), &pids)
	if len(pids) != 0 {
		t.Errorf("processes left after kill --all: %v (exit %+v)", pids, st.Exit)
	}
	e.must("delete", "many")
}
