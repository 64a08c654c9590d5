package scheduler

import (
	"testing"
	"time"
)

// A pod that fits nowhere waits 1 s, then twice as long each time, up to
// 10 s, before another change of the cluster tries it again.
func TestWaitingPodsBackOff(t *testing.T) {
	s := &Scheduler{waiting: map[string]waitingPod{}}
	for _, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
		before := time.Now()
		s.markWaiting("default/p")
		got := s.waiting["default/p"].retryAt.Sub(before)
		if got < want*time.Second || got > want*time.Second+time.Second {
			t.Errorf("attempt %d: retry after %v, want %v", s.waiting["default/p"].attempts, got, want*time.Second)
		}
	}
}
