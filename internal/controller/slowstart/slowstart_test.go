package slowstart

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestBatchesDoubleAndStopAfterTheFirstFailingOne(t *testing.T) {
	for _, tc := range []struct {
		name      string
		count     int
		failFrom  int // calls with i >= failFrom fail; -1: none
		wantTried int
		wantErr   bool
	}{
		{"all succeed", 10, -1, 10, false},
		{"none to do", 0, -1, 0, false},
		{"the first fails", 10, 0, 1, true},
		// Batches 1, 2, 4: index 3 is in the third batch (3..6).
		{"a failure in the third batch stops after it", 20, 3, 7, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var called []int
			tried, err := Run(tc.count, 1, func(i int) error {
				mu.Lock()
				called = append(called, i)
				mu.Unlock()
				if tc.failFrom >= 0 && i >= tc.failFrom {
					return errors.New("quota")
				}
				return nil
			})
			if tried != tc.wantTried || (err != nil) != tc.wantErr {
				t.Errorf("Run = %d, %v; want %d tried, error %v", tried, err, tc.wantTried, tc.wantErr)
			}
			slices.Sort(called)
			for i, c := range called {
				if c != i {
					t.Fatalf("called %v, want 0..%d each once", called, tried-1)
				}
			}
			if len(called) != tried {
				t.Errorf("called %d times, reported %d", len(called), tried)
			}
		})
	}
}
