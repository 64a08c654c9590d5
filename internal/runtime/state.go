package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/runtime/nsinit"
)

// Status values, as the OCI runtime spec names them.
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusStopped  = "stopped"
)

// record is what the runtime keeps about a container in <root>/<id>/state.json.
type record struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Pid         int               `json:"pid"`
	ShimPid     int               `json:"shimPid"`   // the init's parent: its shim, or the process in Run
	StartTime   uint64            `json:"startTime"` // of Pid, to tell pid reuse apart
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	CgroupPaths map[string]string `json:"cgroupPaths"`
	CgroupPath  string            `json:"cgroupPath"`
	Rootfs      string            `json:"rootfs"`
	// Seccomp and Capabilities are given to processes exec'd later, as
	// they were when the container was created.
	Seccomp      []unix.SockFilter        `json:"seccomp,omitempty"`
	Capabilities *specs.LinuxCapabilities `json:"capabilities,omitempty"`
}

// State is a container's state as `state` prints it: the OCI fields plus
// how it exited.
type State struct {
	specs.State
	Created time.Time    `json:"created"`
	Exit    *nsinit.Exit `json:"exit,omitempty"`
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

func (r *Runtime) readRecord(id string) (*record, error) {
	data, err := os.ReadFile(filepath.Join(r.dir(id), "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("container %q: corrupt state: %w", id, err)
	}
	return &rec, nil
}

func (r *Runtime) writeRecord(rec *record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := filepath.Join(r.dir(rec.ID), ".state.json")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(r.dir(rec.ID), "state.json"))
}

func (r *Runtime) readExit(id string) *nsinit.Exit {
	data, err := os.ReadFile(filepath.Join(r.dir(id), "exit.json"))
	if err != nil {
		return nil
	}
	var e nsinit.Exit
	if json.Unmarshal(data, &e) != nil {
		return nil
	}
	return &e
}

// status derives the state from the process and the exec fifo: a live init
// still holding the fifo is created; a live one past it is running.
func (r *Runtime) status(rec *record) (string, *nsinit.Exit) {
	if e := r.readExit(rec.ID); e != nil {
		return StatusStopped, e
	}
	if !alive(rec.Pid, rec.StartTime) {
		// The shim records the exit right after reaping the init: give it
		// a moment so that a stopped container always reports how it ended.
		for range 200 {
			if gone(rec.ShimPid) {
				break
			}
			if e := r.readExit(rec.ID); e != nil {
				return StatusStopped, e
			}
			time.Sleep(time.Millisecond)
		}
		return StatusStopped, r.readExit(rec.ID)
	}
	if _, err := os.Stat(filepath.Join(r.dir(rec.ID), execFifo)); err == nil {
		return StatusCreated, nil
	}
	return StatusRunning, nil
}

// alive reports whether pid runs and is the same process (start time).
func alive(pid int, start uint64) bool {
	if pid <= 0 || unix.Kill(pid, 0) != nil {
		return false
	}
	st, err := processStartTime(pid)
	if err != nil {
		return false
	}
	if st != start {
		return false
	}
	// A zombie is not running.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && statField(string(data), 3) != "Z"
}
